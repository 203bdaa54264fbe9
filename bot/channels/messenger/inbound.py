"""Facebook Messenger: the webhook verifies, parses and dedupes events into Incoming.

The web process never calls the Graph API: every answer is queued in the outbox and delivered by
the worker (bot/channels/messenger/outbound.py). Platform facts relied on are in
the shared PLATFORMS.md notes (Messenger section) and Meta's webhook reference:
https://developers.facebook.com/docs/messenger-platform/webhooks
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request

from bot.channels.inbound import START, START_PARAM_LIMIT, dict_of, text_of
from bot.config import Config
from bot.dispatcher import Dispatcher, Incoming, IncomingPhoto
from bot.inbound_guard import BadBody, guarded, safe_loads

log = logging.getLogger(__name__)

CHANNEL = "facebook"
GET_STARTED = "GET_STARTED"  # the Get Started button's payload, set by `duan8 facebook setup`
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_PAYLOAD = 1000  # Send API: a quick reply's payload is at most 1,000 characters
bp = Blueprint("facebook", __name__)


def signature_ok(secret: str | None, body: bytes, header: str) -> bool:
    """HMAC-SHA256 of the raw body with the app secret, compared in constant time.

    Meta signs every event notification with `X-Hub-Signature-256: sha256=<hex>` (PLATFORMS.md;
    https://developers.facebook.com/docs/messenger-platform/webhooks#validate-payloads).
    """
    if not secret:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # compare_digest takes the same time wherever the two differ.
    return hmac.compare_digest(expected.encode(), header.encode("utf-8", "replace"))


def _digest(value: str) -> str:
    """A short stable fingerprint: payloads may be 1,000 characters, event keys are capped."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def _photos(mid: str, attachments: list[Any]) -> tuple[IncomingPhoto, ...]:
    """Image attachments as photos to fetch later; other kinds are left to the text."""
    photos: list[IncomingPhoto] = []
    for item in attachments:
        attachment = dict_of(item)
        payload = dict_of(attachment.get("payload"))
        url = text_of(payload.get("url"))
        # A sticker (the thumbs-up too) arrives as an image carrying a sticker_id: not a photo.
        if attachment.get("type") == "image" and url and "sticker_id" not in payload:
            # The size is unknown until the download, which enforces the cap (fetch_media).
            photos.append(IncomingPhoto(data=None, source=f"{CHANNEL}:{url}", size=0))
    return tuple(photos)


def _message(psid: str, message: dict[str, Any]) -> Incoming | None:
    """A text, a quick-reply press or attachments; echoes of the Page's own sends are None."""
    mid = text_of(message.get("mid"))
    if message.get("is_echo") or not mid:
        return None
    quick = dict_of(message.get("quick_reply"))
    payload = text_of(quick.get("payload"))[:MAX_PAYLOAD]
    if payload:
        # A quick reply is a button press: its title is only what the member saw.
        return Incoming(channel=CHANNEL, external_id=psid, event_id=mid, payload=payload)
    attachments = message.get("attachments")
    photos = _photos(mid, attachments if isinstance(attachments, list) else [])
    # Audio, files, stickers, locations: text "" lets the conversation answer politely.
    return Incoming(channel=CHANNEL, external_id=psid, event_id=mid,
                    text=text_of(message.get("text")), photos=photos)


def _postback(psid: str, timestamp: str, postback: dict[str, Any]) -> Incoming | None:
    """Get Started (with an m.me ref, the invite code) or a persistent-menu "cmd:…" press.

    Postbacks and referrals are keyed by sender, time and payload: the brief's contract, and
    stable over Meta's retries whether or not a `mid` is present.
    https://developers.facebook.com/docs/messenger-platform/reference/webhook-events/messaging_postbacks
    """
    payload = text_of(postback.get("payload"))[:MAX_PAYLOAD]
    if not payload:
        return None
    event_id = f"pb:{psid}:{timestamp}:{_digest(payload)}"
    if payload == GET_STARTED:
        ref = text_of(dict_of(postback.get("referral")).get("ref")).strip()
        return Incoming(channel=CHANNEL, external_id=psid, event_id=event_id, text=START,
                        start_param=ref[:START_PARAM_LIMIT] or None)
    return Incoming(channel=CHANNEL, external_id=psid, event_id=event_id, payload=payload)


def _referral(psid: str, timestamp: str, referral: dict[str, Any]) -> Incoming | None:
    """An m.me link with `?ref=` opened in an existing thread: like a Telegram deep link.

    https://developers.facebook.com/docs/messenger-platform/reference/webhook-events/messaging_referrals
    """
    ref = text_of(referral.get("ref")).strip()
    if not ref:
        return None
    return Incoming(channel=CHANNEL, external_id=psid,
                    event_id=f"ref:{psid}:{timestamp}:{_digest(ref)}", text=START,
                    start_param=ref[:START_PARAM_LIMIT])


def events(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every messaging event of a batch: one POST carries many entries, each many events."""
    entries = body.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        messaging = dict_of(entry).get("messaging")
        for event in messaging if isinstance(messaging, list) else []:
            if isinstance(event, dict):
                yield event


def handle_event(dispatcher: Dispatcher, event: dict[str, Any]) -> None:
    """Route one messaging event: a conversation turn, a receipt to note, or nothing."""
    psid = text_of(dict_of(event.get("sender")).get("id"))
    if not psid:
        return  # user_ref senders (checkbox plugin) have no PSID to answer yet
    timestamp = str(event.get("timestamp") or "")
    incoming: Incoming | None = None
    if isinstance(event.get("message"), dict):
        incoming = _message(psid, event["message"])
    elif isinstance(event.get("postback"), dict):
        incoming = _postback(psid, timestamp, event["postback"])
    elif isinstance(event.get("referral"), dict):
        incoming = _referral(psid, timestamp, event["referral"])
    elif isinstance(event.get("delivery"), dict) or isinstance(event.get("read"), dict):
        kind = "delivery" if "delivery" in event else "read"
        watermark = dict_of(event[kind]).get("watermark") or timestamp
        dispatcher.note_seen(CHANNEL, f"{kind}:{psid}:{watermark}")
        return
    if incoming is None:
        log.debug("no conversation for a Messenger event with keys %s", sorted(event))
        return
    dispatcher.dispatch(incoming)


@bp.get("/webhooks/facebook")
def verify() -> Any:
    """Meta's subscription check: echo hub.challenge when our verify token is presented."""
    config: Config = current_app.extensions["duan8.config"]
    if not config.channel_enabled(CHANNEL):
        abort(404)
    expected = (config.fb_verify_token or "").encode()
    given = request.args.get("hub.verify_token", "").encode()
    mode_ok = request.args.get("hub.mode") == "subscribe"
    if not (expected and hmac.compare_digest(given, expected) and mode_ok):
        abort(403)
    return Response(request.args.get("hub.challenge", ""), mimetype="text/plain")


@bp.post("/webhooks/facebook")
@guarded(CHANNEL)
def webhook() -> Any:
    """Check the signature on the raw bytes, then dedupe, handle and queue every event."""
    config: Config = current_app.extensions["duan8.config"]
    if not config.channel_enabled(CHANNEL):
        abort(404)
    body = request.get_data(cache=False)
    if not config.fb_app_secret:
        log.error("FB_APP_SECRET is not set: Messenger events cannot be verified and are refused")
    if not signature_ok(config.fb_app_secret, body, request.headers.get(SIGNATURE_HEADER, "")):
        abort(403)
    try:
        data = safe_loads(body)
    except BadBody:
        data = None
    if not isinstance(data, dict):
        # Meta resends what is not answered 2xx: a body we cannot use is dropped.
        log.warning("dropping a signed Messenger body that is not an event batch")
        return jsonify(ok=False, error="not a Messenger event batch")
    if data.get("object") != "page":
        return jsonify(ok=True)  # another product's events (e.g. Instagram): nothing to do here
    dispatcher: Dispatcher = current_app.extensions["duan8.dispatcher"]
    # A database outage answers 5xx: Meta retries the batch and dedupe skips what was handled.
    # An event we cannot read is dropped alone; the rest of the batch goes on.
    for event in events(data):
        try:
            handle_event(dispatcher, event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("dropping a Messenger event that does not parse (%s)",
                        type(exc).__name__)
    return jsonify(ok=True)


def init_app(app: Flask) -> None:
    """Register the webhook; it answers 404 while the channel has no page token."""
    app.register_blueprint(bp)
