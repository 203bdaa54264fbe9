"""Zalo Official Account (Open API v3): the webhook verifies, parses and dedupes events.

The web process never calls Zalo: answers are queued in the outbox and delivered by the worker
(bot/channels/zalo_oa/outbound.py); tokens live in bot/channels/zalo_oa/tokens.py.

Platform facts relied on (PLATFORMS.md, Zalo OA section, and the code cited there):
- Signature: `X-ZEvent-Signature: mac=<hex>`, hex = SHA-256 (a plain hash, not an HMAC) of
  app_id + raw body + timestamp + OA secret key, app_id and timestamp read from the body
  (chatwoot `app/jobs/webhooks/zalo_events_job.rb`, `validate_signature`).
- Event names: `user_send_text|image|link|audio|video|sticker|location|file|gif`,
  `user_received_message`, `user_seen_message` (same file); `oa_send_*` are echoes of the OA's own
  messages, where the user is `recipient.id` (chatwoot `app/jobs/webhooks/zalo_oa_events_job.rb`);
  `follow`/`unfollow` name the user in `follower.id` (e.g. trilk/pvi-ott-platform-server
  `routes/zalobot.js`; `sender.id` is read as a fallback). The image URL is
  `message.attachments[].payload.url` (chatwoot `app/services/zalo_oa/incoming_message_service.rb`).
- Ids are strings longer than 2^53: the body is parsed with `parse_int=str`, so even an id sent as
  a bare JSON number keeps its exact digits, and the signature uses the timestamp's own digits.
- Answer within about 2 s: nothing here waits on Zalo or on a download.

Buttons: the sender shows a reply's buttons as a numbered list in the text and remembers it per
user (`zalo.buttons.<user_id>` in storage.settings), so a member typing just "1" presses the
first, on any Zalo version. Under the text the same choices go as `oa.query.hide` query buttons
(bot/channels/zalo_oa/buttons.py has the sources and limits): a tap comes back as a
`user_send_text` whose text is our PREFIX + the button's payload, handled here as that payload
without a database read. No source consulted documents a `user_click_button` event; it is still
read as a payload should Zalo send one.

A reply counts as a free "reply" only when it quotes the member's message id (Zalo OA help
centre, "Các loại tin của Zalo Official Account", zalooa.freshdesk.com article 64000261136), so
the id of each member's latest message is kept too (`zalo.quote.<user_id>`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from flask import Blueprint, Flask, abort, current_app, jsonify, request

from bot.channels import numbered
from bot.channels.inbound import START, dict_of, text_of
from bot.channels.port import Choice, Memory
from bot.channels.zalo_oa.buttons import PAYLOAD_LIMIT, tapped
from bot.config import Config
from bot.dispatcher import Dispatcher, Incoming, IncomingPhoto
from bot.inbound_guard import BadBody, guarded, safe_loads

log = logging.getLogger(__name__)

CHANNEL = "zalo"
SIGNATURE_HEADER = "X-ZEvent-Signature"
MAX_BODY = 1024 * 1024  # Zalo events are a few kB; anything larger is not one
FOLLOW, UNFOLLOW = "follow", "unfollow"
TEXT_EVENT, IMAGE_EVENT, BUTTON_EVENT = "user_send_text", "user_send_image", "user_click_button"
# Stickers, voice, files, locations... reach the conversation as an empty message, so the member
# is told what it can take (text or a photo) instead of hearing nothing.
OTHER_MESSAGE = re.compile(r"^user_send_[a-z_]+$")
# A follow is a first contact: "/start" greets a newcomer (consent) and shows a member the menu,
# where an empty message would be answered "I did not understand".
GREETING = START
EXTERNAL_ID_LIMIT = 128  # storage.models.Identity.external_id
EVENT_ID_LIMIT = 191  # storage.models.InboundEvent.event_id

bp = Blueprint("zalo", __name__)


# --- reading events ---------------------------------------------------------------------------


BUTTONS = numbered.ButtonMemory("zalo.buttons.")  # written by the sender after a reply
shown_buttons = BUTTONS.shown


def parse_body(raw: bytes) -> dict[str, Any] | None:
    """The event as a dict whose numbers stay strings (ids beyond 2^53), or None."""
    try:
        value = safe_loads(raw, parse_int=str)
    except BadBody:
        return None
    return value if isinstance(value, dict) else None


def _digest(value: str) -> str:
    """A stable fingerprint for keys and sources that would outgrow their column."""
    return hashlib.sha256(value.encode()).hexdigest()


def expected_signature(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """`mac=` + SHA-256 of app_id + raw body + timestamp + OA secret key, as Zalo signs."""
    digest = hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret_key.encode())
    return f"mac={digest.hexdigest()}"


def signature_hex(header: str) -> bytes:
    """The hex digest a signature header carries, with or without the `mac=` prefix.

    Integrators (chatwoot's Zalo OA channel, ChatbotX) show `mac=<hex>`; Zalo's Java SDK's MAC
    helper returns bare hex. Both are accepted, and compared in constant time either way.
    """
    value = header.strip().lower()
    value = value.removeprefix("mac=")
    return value.encode("utf-8", "replace")


def signature_ok(config: Config, body: bytes, event: dict[str, Any], header: str) -> bool:
    """The event names our app and carries our OA's signature; both compared in constant time."""
    app_id, secret = config.zalo_app_id, config.zalo_oa_secret_key
    if not app_id or not secret:
        return False
    same_app = hmac.compare_digest(text_of(event.get("app_id")).encode(), app_id.encode())
    expected = expected_signature(app_id, body, text_of(event.get("timestamp")), secret)
    given = signature_hex(header)
    # Both comparisons always run, so the time taken says nothing about which one failed.
    return hmac.compare_digest(expected.removeprefix("mac=").encode(), given) & same_app


# The signed timestamp, read from the raw bytes: digits only, as a string or a bare number.
_RAW_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*"?([0-9]{1,20})"?')


def verify_raw(config: Config, raw: bytes, header: str) -> str | None:
    """The MAC checked over the raw bytes before any parsing; returns the signed timestamp.

    The timestamp the MAC covers is taken from the bytes by a bounded pattern (digits only),
    so nothing of an unsigned body reaches a parser. A body with several "timestamp" keys is
    tried with each of the first few; the parsed event must then carry the one that matched.
    """
    app_id, secret = config.zalo_app_id, config.zalo_oa_secret_key
    if not app_id or not secret:
        return None
    given = signature_hex(header)
    found = None
    for match in _RAW_TIMESTAMP.findall(raw)[:4]:
        timestamp = match.decode("ascii")
        expected = expected_signature(app_id, raw, timestamp, secret).removeprefix("mac=").encode()
        if hmac.compare_digest(expected, given) and found is None:
            found = timestamp
    return found


def fresh(timestamp: str, max_age_seconds: int, now_ms: int) -> bool:
    """Whether an event's time (ms since the epoch) is within the window around now."""
    return abs(now_ms - int(timestamp)) <= max_age_seconds * 1000


def user_of(event: dict[str, Any]) -> str | None:
    """The member an event is about: the follower, the sender, or an echo's recipient."""
    name = text_of(event.get("event_name"))
    if name in (FOLLOW, UNFOLLOW):
        candidates = [dict_of(event.get("follower")).get("id"),
                      dict_of(event.get("sender")).get("id")]
    elif name.startswith("oa_"):
        candidates = [dict_of(event.get("recipient")).get("id")]
    else:
        candidates = [dict_of(event.get("sender")).get("id")]
    user = next((text_of(c) for c in candidates if text_of(c)), "")
    return user if 0 < len(user) <= EXTERNAL_ID_LIMIT else None


def event_id(event: dict[str, Any]) -> str:
    """`message.msg_id` exactly; events without one: event name + user + timestamp."""
    msg_id = text_of(dict_of(event.get("message")).get("msg_id"))
    if msg_id:
        return msg_id if len(msg_id) <= EVENT_ID_LIMIT else f"sha256:{_digest(msg_id)}"
    name = text_of(event.get("event_name"))
    timestamp = text_of(event.get("timestamp"))
    if not timestamp:
        canonical = json.dumps(event, sort_keys=True, ensure_ascii=False)
        return f"{name[:40]}:sha256:{_digest(canonical)}"
    key = f"{name}:{user_of(event) or ''}:{timestamp}"
    return key if len(key) <= EVENT_ID_LIMIT else f"{name[:40]}:sha256:{_digest(key)}"


def quote_key(user_id: str) -> str:
    """Where the id of a user's latest message is kept, for replies to quote."""
    return numbered.settings_key("zalo.quote.", user_id)


def image_attachments(message: dict[str, Any]) -> list[tuple[str, int]]:
    """(URL, declared size or 0) of each picture in a user_send_image message."""
    found = []
    attachments = message.get("attachments")
    for item in attachments if isinstance(attachments, list) else []:
        item = dict_of(item)
        payload = dict_of(item.get("payload"))
        url = text_of(payload.get("url"))
        if text_of(item.get("type")) not in ("", "image") or not url.startswith(("https://",
                                                                                "http://")):
            continue
        size = text_of(payload.get("size"))
        found.append((url, int(size) if size.isdigit() else 0))
    return found


def to_incoming(event: dict[str, Any], choices: Sequence[Mapping[str, str]] | None = None,
                max_photo_bytes: int = 5 * 1024 * 1024) -> Incoming | None:
    """The part of an event a conversation uses; None for events that need no answer."""
    name = text_of(event.get("event_name"))
    user = user_of(event)
    if user is None or name.startswith("oa_"):
        return None
    message = dict_of(event.get("message"))
    base: dict[str, Any] = {"channel": CHANNEL, "external_id": user, "event_id": event_id(event)}
    if name == FOLLOW:
        return Incoming(**base, text=GREETING)
    if name == TEXT_EVENT:
        text = text_of(message.get("text"))
        payload = tapped(text)
        if payload is not None:
            return Incoming(**base, payload=payload)
        choice = numbered.pressed(text, choices or [])
        if choice is not None:
            return Incoming(**base, text="", payload=choice["payload"][:PAYLOAD_LIMIT])
        return Incoming(**base, text=text)
    if name == BUTTON_EVENT:
        payload = text_of(message.get("payload")) or text_of(message.get("text"))
        return Incoming(**base, payload=payload[:PAYLOAD_LIMIT]) if payload else None
    if name == IMAGE_EVENT:
        photos, oversize = [], 0
        for url, size in image_attachments(message):
            if size > max_photo_bytes:
                oversize += 1
            else:
                photos.append(IncomingPhoto(data=None, source=f"{CHANNEL}:{url}", size=size))
        return Incoming(**base, text=text_of(message.get("text")), photos=tuple(photos),
                        oversize_photos=oversize)
    if OTHER_MESSAGE.match(name):
        return Incoming(**base, text="")
    return None  # seen/received receipts, link clicks, shop and call events: nothing to answer


# --- handling -----------------------------------------------------------------------------------


def _choices_for(dispatcher: Dispatcher, event: dict[str, Any]) -> list[Choice]:
    """Look the shown choices up only when the member typed nothing but a number."""
    if event.get("event_name") != TEXT_EVENT:
        return []
    return BUTTONS.typed(dispatcher.db, user_of(event), dict_of(event.get("message")).get("text"))


def with_context(event: dict[str, Any], incoming: Incoming) -> Incoming:
    """The member's message id, which the reply must quote: kept with the message itself, so
    a retried (duplicate) event changes nothing."""
    message = dict_of(event.get("message"))
    msg_id = text_of(message.get("msg_id"))
    quote = msg_id if msg_id and OTHER_MESSAGE.match(text_of(event.get("event_name"))) else None
    if quote is None:
        return incoming
    return replace(incoming, memories=(Memory(quote_key(incoming.external_id), quote),))


def handle_event(dispatcher: Dispatcher, event: dict[str, Any]) -> None:
    """Route one verified event through the dispatcher: dispatch, note as seen, or unreachable."""
    name = text_of(event.get("event_name"))
    if not name:
        log.warning("dropping a Zalo event without an event_name")
        return
    if name == UNFOLLOW:
        user = user_of(event)
        if user is not None:
            dispatcher.note_unreachable(CHANNEL, user, event_id(event),
                                        "the member unfollowed the Zalo Official Account")
            return
    try:
        incoming = to_incoming(event, _choices_for(dispatcher, event),
                               dispatcher.config.max_photo_bytes)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Answering an error would only make Zalo resend the same broken event.
        log.warning("dropping a Zalo event that does not parse (%s)", type(exc).__name__)
        return
    if incoming is None:
        dispatcher.note_seen(CHANNEL, event_id(event))
        return
    dispatcher.dispatch(with_context(event, incoming))


@bp.post("/webhooks/zalo")
@guarded(CHANNEL)
def webhook() -> Any:
    """Verify app and signature before acting on anything, then dedupe, handle, queue."""
    config: Config = current_app.extensions["duan8.config"]
    if not config.channel_enabled(CHANNEL):
        abort(404)
    if (request.content_length or 0) > MAX_BODY:
        abort(413)
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not config.zalo_app_id or not config.zalo_oa_secret_key:
        log.error("Zalo webhook refused: ZALO_APP_ID and ZALO_OA_SECRET_KEY must be set")
        abort(403)
    if not 0 < len(signature_hex(header)) <= 128:
        abort(403)
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        abort(413)
    timestamp = verify_raw(config, raw, header)
    if timestamp is None:
        abort(403)
    if not fresh(timestamp, config.zalo_max_event_age, int(time.time() * 1000)):
        # A signed event from long ago (or far ahead) is a replay, not a delivery.
        log.warning("Zalo event refused: its timestamp is outside the replay window")
        abort(403)
    event = parse_body(raw)
    if event is None or text_of(event.get("timestamp")) != timestamp \
            or not hmac.compare_digest(text_of(event.get("app_id")).encode(),
                                       (config.zalo_app_id or "").encode()):
        log.warning("dropping a signed Zalo body that is not one of our app's events")
        return jsonify(ok=True)
    handle_event(current_app.extensions["duan8.dispatcher"], event)
    return jsonify(ok=True)


def init_app(app: Flask) -> None:
    """Register the webhook; it answers 404 while the channel has no token."""
    app.register_blueprint(bp)
