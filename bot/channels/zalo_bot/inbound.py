"""Zalo Bot Platform: the webhook and the poller turn events into Incoming.

The Bot Platform (bot.zaloplatforms.com, not the Official Account API in `zalo_oa`) is a
Telegram-like API, but its events differ: an event has an `event_name`
(`message.text.received`, `message.image.received`, `message.sticker.received`,
`message.unsupported.received`) and a `message` with string ids and no `update_id`, so repeats
are recognised by event name + `message.message_id`. Zalo's own docs show webhook bodies wrapped
in `{"ok": true, "result": {...}}`; OpenClaw's Zalo plugin notes they also arrive unwrapped, so
both are read. The image URL is `message.photo_url` in python-zalo-bot's `Message` and
`message.photo` in the docs' samples; OpenClaw's Zalo Bot extension also reads an
`attachments` list (`[{"type": "image", "payload": {"url"}}]`, or the url at the top of an
item), so all three places are read.

There are no inline buttons on this platform: the sender shows them as a numbered list and
remembers it (storage.settings, one row per chat), and a member typing just "1" presses the
first one, as in the console chat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, Flask, current_app, request

from bot.channels import numbered
from bot.channels.inbound import dict_of, hand_over, read_start, require_secret
from bot.channels.port import Choice
from bot.config import Config
from bot.dispatcher import Dispatcher, Incoming, IncomingPhoto
from bot.inbound_guard import guarded

log = logging.getLogger(__name__)

CHANNEL = "zalo_bot"
SECRET_HEADER = "X-Bot-Api-Secret-Token"
TEXT_EVENT = "message.text.received"
IMAGE_EVENT = "message.image.received"
# Stickers, voice and "unsupported" messages reach the conversation as an empty message, so the
# member is told what it can take instead of hearing nothing.
MESSAGE_EVENT = re.compile(r"^message\.[a-z_]+\.received$")
EXTERNAL_ID_LIMIT = 128  # storage.models.Identity.external_id

bp = Blueprint("zalo_bot", __name__)


BUTTONS = numbered.ButtonMemory("zalo_bot.buttons.")  # written by the sender after a reply


def unwrap(body: Any) -> dict[str, Any] | None:
    """The event itself, whether or not it came inside `{"ok": ..., "result": ...}`."""
    if not isinstance(body, dict):
        return None
    inner = body.get("result")
    if "event_name" not in body and isinstance(inner, dict):
        return inner
    return body


def event_id(update: dict[str, Any]) -> str:
    """Event name + message id; a message without an id is known by its content's digest."""
    name = str(update.get("event_name") or "")
    message = dict_of(update.get("message"))
    message_id = message.get("message_id")
    if isinstance(message_id, str | int) and str(message_id):
        return f"{name}:{message_id}"
    canonical = json.dumps(update, sort_keys=True, ensure_ascii=False, default=str)
    return f"{name}:sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


def photo_url(message: dict[str, Any]) -> str | None:
    """The picture's URL: `photo_url` (python-zalo-bot), `photo` (docs' samples) or the first
    image of `attachments` (OpenClaw's Zalo Bot extension)."""
    candidates: list[Any] = [message.get("photo_url"), message.get("photo")]
    attachments = message.get("attachments")
    if isinstance(attachments, list):
        for item in attachments[:10]:
            if not isinstance(item, dict) or item.get("type", "image") not in ("image", "photo"):
                continue
            payload = item.get("payload")
            candidates += [payload.get("url") if isinstance(payload, dict) else None,
                           item.get("url")]
    for value in candidates:
        if isinstance(value, dict):
            value = value.get("url")
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            return value
    return None


def chat_of(update: dict[str, Any]) -> tuple[str, str] | None:
    """(chat id, chat type) of a message event, or None when it has no usable chat."""
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = dict_of(message.get("chat"))
    sender = dict_of(message.get("from"))
    chat_id = chat.get("id") or sender.get("id")
    if not isinstance(chat_id, str | int) or not str(chat_id):
        return None
    return str(chat_id), str(chat.get("chat_type") or "PRIVATE").upper()


def to_incoming(update: dict[str, Any],
                buttons: Sequence[Mapping[str, str]] | None = None) -> Incoming | None:
    """The part of an event a conversation uses; None for events that need no answer."""
    name = str(update.get("event_name") or "")
    message = update.get("message")
    where = chat_of(update)
    if not MESSAGE_EVENT.match(name) or not isinstance(message, dict) or where is None:
        return None
    chat_id, chat_type = where
    sender = dict_of(message.get("from"))
    if chat_type != "PRIVATE" or sender.get("is_bot") is True or len(chat_id) > EXTERNAL_ID_LIMIT:
        return None  # groups and other bots: no conversation there
    base: dict[str, Any] = {"channel": CHANNEL, "external_id": chat_id,
                            "event_id": event_id(update)}
    if name == TEXT_EVENT:
        text = str(message.get("text") or "")
        choice = numbered.pressed(text, buttons or [])
        if choice is not None:
            return Incoming(**base, text=str(choice.get("label") or text),
                            payload=choice["payload"])
        text, start_param = read_start(text)
        return Incoming(**base, text=text, start_param=start_param)
    if name == IMAGE_EVENT:
        url = photo_url(message)
        photos = (IncomingPhoto(data=None, source=f"{CHANNEL}:{url}", size=0),) if url else ()
        return Incoming(**base, text=str(message.get("caption") or ""), photos=photos)
    return Incoming(**base, text="")


def _choices_for(dispatcher: Dispatcher, update: dict[str, Any]) -> list[Choice]:
    """Look up the shown choices only when the member typed nothing but a number."""
    where = chat_of(update)
    if update.get("event_name") != TEXT_EVENT or where is None:
        return []
    return BUTTONS.typed(dispatcher.db, where[0], dict_of(update.get("message")).get("text"))


def handle_update(dispatcher: Dispatcher, data: Any) -> None:
    """Route one raw event (wrapped or not) through the dispatcher; webhook and poller share it."""
    update = unwrap(data)
    if update is None or not isinstance(update.get("event_name"), str):
        # Answering an error would only make the platform resend the same broken body.
        log.warning("dropping a Zalo Bot body that is not an event")
        return
    try:
        incoming = to_incoming(update, _choices_for(dispatcher, update))
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        log.warning("dropping a Zalo Bot event that does not parse (%s)", type(exc).__name__)
        return
    if incoming is None:
        dispatcher.note_seen(CHANNEL, event_id(update))
        return
    dispatcher.dispatch(incoming)


@bp.post("/webhooks/zalo-bot")
@guarded(CHANNEL)
def webhook() -> Any:
    """Verify the secret before reading the body, then dedupe, handle and queue the reply."""
    config: Config = current_app.extensions["duan8.config"]
    require_secret(bool(config.zalo_bot_token), config.zalo_bot_webhook_secret, SECRET_HEADER)
    update = unwrap(request.get_json(silent=True))
    usable = update is not None and isinstance(update.get("event_name"), str)
    return hand_over(update if usable else None, handle_update, what="Zalo Bot event")


def init_app(app: Flask) -> None:
    """Register the webhook; it answers 404 while the channel has no token."""
    app.register_blueprint(bp)
