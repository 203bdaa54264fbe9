"""Telegram: webhook and polling turn Updates into Incoming; the sender renders Replies.

The web process only verifies, parses, dedupes and writes. python-telegram-bot's Application is
not used: inside sync Flask views under gunicorn its queue is never processed (PTB issue #3711).
Its types parse updates, and its async `Bot` runs in the worker's event loop.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app, request
from telegram import Update

from bot.channels.inbound import hand_over, read_start, require_secret
from bot.channels.telegram.shape import valid_update
from bot.config import Config
from bot.dispatcher import Dispatcher, Incoming, IncomingPhoto
from bot.inbound_guard import guarded

log = logging.getLogger(__name__)

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
bp = Blueprint("telegram", __name__)


def chat_key(chat_id: int) -> str:
    """Identities are keyed by chat id: a private chat's id is the user's id."""
    return str(chat_id)


def to_incoming(update: Update, max_photo_bytes: int) -> Incoming | None:
    """The part of an Update a conversation uses; None for updates that need no answer."""
    event_id = str(update.update_id)
    if update.callback_query is not None:
        query = update.callback_query
        chat = query.message.chat if query.message is not None else None
        if chat is not None and chat.type != "private":
            return None
        user = query.from_user
        return Incoming(
            channel=CHANNEL, external_id=chat_key(chat.id if chat else user.id),
            event_id=event_id, text="", payload=(query.data or "")[:200], ack=query.id,
            locale=user.language_code,
        )
    edited = update.edited_message
    message = update.message or edited
    if message is None or message.chat.type != "private":
        return None  # groups, channels, member updates: no conversation there
    sender = message.from_user
    text, start_param = read_start(message.text) if message.text else (message.caption or "", None)
    photos: list[IncomingPhoto] = []
    oversize = 0
    if message.photo:
        largest = max(message.photo, key=lambda size: (size.file_size or 0, size.width))
        if (largest.file_size or 0) > max_photo_bytes:
            oversize = 1
        else:
            photos.append(IncomingPhoto(data=None, source=f"telegram:{largest.file_id}",
                                        size=largest.file_size or 0))
    elif message.document and (message.document.mime_type or "").startswith("image/"):
        doc = message.document
        if (doc.file_size or 0) > max_photo_bytes:
            oversize = 1
        else:
            photos.append(IncomingPhoto(data=None, source=f"telegram:{doc.file_id}",
                                        size=doc.file_size or 0))
    return Incoming(
        channel=CHANNEL, external_id=chat_key(message.chat.id), event_id=event_id, text=text,
        photos=tuple(photos), oversize_photos=oversize, start_param=start_param,
        locale=sender.language_code if sender else None, edited=edited is not None,
    )


def blocked_chat(update: Update) -> str | None:
    """The chat of a member who blocked the bot (a my_chat_member update to "kicked")."""
    change = update.my_chat_member
    if change is not None and change.new_chat_member.status == "kicked":
        return chat_key(change.chat.id)
    return None


def handle_update(dispatcher: Dispatcher, data: dict[str, Any]) -> None:
    """Route one raw update through the dispatcher; used by the webhook and the poller."""
    try:
        # python-telegram-bot's types take any JSON: the shape is checked here, field by
        # field, before the update is read (a text that is a list, a date of 10^20...).
        valid_update(data)
        update = Update.de_json(data, None)
        blocked = blocked_chat(update)
        incoming = None if blocked else to_incoming(update, dispatcher.config.max_photo_bytes)
    except Exception as exc:
        # Answering an error would make Telegram resend the same broken update for hours.
        log.warning("dropping an update that does not parse (%s)", type(exc).__name__)
        return
    if blocked is not None:
        dispatcher.note_unreachable(CHANNEL, blocked, str(update.update_id),
                                    "the member blocked the bot")
        return
    if incoming is None:
        dispatcher.note_seen(CHANNEL, str(update.update_id))
        return
    dispatcher.dispatch(incoming)


@bp.post("/webhooks/telegram")
@guarded(CHANNEL)
def webhook() -> Any:
    """Verify the secret before reading the body, then dedupe, handle and queue the reply."""
    config: Config = current_app.extensions["duan8.config"]
    require_secret(bool(config.telegram_bot_token), config.telegram_webhook_secret, SECRET_HEADER)
    data = request.get_json(silent=True)
    usable = isinstance(data, dict) and isinstance(data.get("update_id"), int)
    return hand_over(data if usable else None, handle_update, what="Telegram update")


def init_app(app: Flask) -> None:
    """Register the webhook; it answers 404 while the channel has no token."""
    app.register_blueprint(bp)
