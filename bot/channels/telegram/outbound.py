"""Telegram's outbound side, in the worker's event loop: Bot API sends and members' photos."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import EMPTY_ERROR, SendResult, split_text, text_to_send
from bot.channels.media_out import MediaOut, MediaRefused, OutgoingFile, media_ids
from bot.channels.port import Database, OutboundMessage
from bot.channels.telegram.aiohttp_request import AiohttpRequest
from bot.channels.telegram.inbound import CHANNEL
from bot.channels.tls import client_tls
from bot.config import Config
from bot.ratelimit import TELEGRAM

log = logging.getLogger(__name__)

# Texts go out as a JSON body built by send_text_body and posted through the bot's request
# object (BaseRequest.post) rather than send_message: send_message builds a whole Message (a
# hundred attributes, the echoed keyboard) from every answer only for us to read its id, and
# python-telegram-bot encodes every parameter of every call; together about a third of a bulk
# send's CPU (BENCHMARKS.md). Answers and errors are still read by the library.
# python-telegram-bot 22 is moving RetryAfter.retry_after from seconds to a timedelta and warns
# on every 429 until a process opts in through an environment variable; _failure reads either
# type, so that one notice is quiet instead of the package setting a variable at import.
warnings.filterwarnings("ignore", message=r".*attribute `retry_after` will be of type",
                        category=PTBDeprecationWarning)

TEXT_LIMIT = 4096  # Bot API: a message's text after entity parsing
BUTTONS_PER_ROW = 2
UNREACHABLE_HINTS = ("blocked by the user", "chat not found", "user is deactivated",
                     "bot can't initiate conversation", "bot was kicked")


def make_bot(config: Config, *, pool: int = 64) -> Bot:
    """A Bot whose every call goes to TELEGRAM_API_URL, so tests and self-hosted servers work."""
    root = config.telegram_api_url
    # Sends go through aiohttp (see aiohttp_request.py for the measurements); the one
    # long-poll keeps python-telegram-bot's default client.
    request = AiohttpRequest(connection_pool_size=pool, read_timeout=15.0, write_timeout=15.0,
                             connect_timeout=5.0, pool_timeout=10.0)
    poll_request = HTTPXRequest(connection_pool_size=2, read_timeout=40.0,
                                httpx_kwargs={"verify": client_tls()})
    return Bot(str(config.telegram_bot_token), base_url=f"{root}/bot",
               base_file_url=f"{root}/file/bot", request=request,
               get_updates_request=poll_request)


def keyboard(buttons: list[dict[str, str]]) -> InlineKeyboardMarkup | None:
    """Inline buttons, two to a row; callback data is capped at 64 bytes by Telegram."""
    if not buttons:
        return None
    keys = [InlineKeyboardButton(b["label"][:64], callback_data=b["payload"].encode()[:64]
                                 .decode(errors="ignore")) for b in buttons]
    width = 1 if any(len(b["label"]) > 18 for b in buttons) else BUTTONS_PER_ROW
    return InlineKeyboardMarkup([keys[i:i + width] for i in range(0, len(keys), width)])


@functools.lru_cache(maxsize=512)
def _wire_keyboard(buttons: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    """A keyboard's JSON, built once: a broadcast repeats one set of buttons to thousands of
    chats, and building the objects for each cost about a tenth of a send. Shared: never mutate."""
    markup = keyboard([{"label": label, "payload": payload} for label, payload in buttons])
    return markup.to_dict() if markup is not None else None


def wire_keyboard(buttons: list[dict[str, str]]) -> dict[str, Any] | None:
    """The `reply_markup` value for a payload's buttons, or None without buttons."""
    return _wire_keyboard(tuple((b["label"], b["payload"]) for b in buttons)) if buttons else None


@functools.lru_cache(maxsize=256)
def _body_tail(text: str, buttons: tuple[tuple[str, str], ...]) -> bytes:
    """Everything of a sendMessage body after the chat id, encoded once per text and keyboard."""
    params: dict[str, Any] = {"text": text}
    if buttons and (markup := _wire_keyboard(buttons)):
        params["reply_markup"] = markup
    return b"," + json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()[1:]


def send_text_body(chat_id: int, text: str, buttons: list[dict[str, str]]) -> bytes:
    """The JSON body of a sendMessage call, the same as python-telegram-bot would send."""
    tail = _body_tail(text, tuple((b["label"], b["payload"]) for b in buttons))
    return b'{"chat_id":' + str(chat_id).encode() + tail


def _failure(exc: TelegramError) -> SendResult:
    """Telegram's errors in the sender's terms."""
    if isinstance(exc, RetryAfter):
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return SendResult(ok=False, error=f"rate limited: retry after {seconds:g} s",
                          retry_after=max(seconds, 1.0))
    message = str(exc)
    if isinstance(exc, Forbidden) or any(h in message.lower() for h in UNREACHABLE_HINTS):
        return SendResult(ok=False, unreachable=True, error=f"unreachable on Telegram: {message}")
    if isinstance(exc, BadRequest):
        return SendResult(ok=False, final=True, error=f"refused by Telegram: {message}")
    if isinstance(exc, TimedOut | NetworkError):
        return SendResult(ok=False, error=f"network: {message}")
    return SendResult(ok=False, error=f"Telegram error: {message}")


# Bot API, "Sending files": photos of up to 10 MB, other files up to 50 MB by upload.
FILE_LIMITS = {"image": 10 * 1000 * 1000, "video": 50 * 1000 * 1000, "file": 50 * 1000 * 1000}
# The method and its file field for each kind of content file (core.telegram.org/bots/api).
FILE_METHODS = {"image": ("sendPhoto", "photo"), "video": ("sendVideo", "video"),
                "file": ("sendDocument", "document")}


def media_out(db: Database, media_dir: Path | None) -> MediaOut:
    """Telegram's uploaded files: a file_id is good for as long as the bot exists."""
    return MediaOut(db, media_dir, key_prefix="telegram.file.", limits=FILE_LIMITS)


def _file_id(message: Message, kind: str) -> str | None:
    """The file_id Telegram gave a file sent with a message (a photo's largest size)."""
    if kind == "image":
        return message.photo[-1].file_id if message.photo else None
    if kind == "video":
        return message.video.file_id if message.video else None
    return message.document.file_id if message.document else None


class TelegramSender:
    """Renders outbox payloads as Bot API calls."""

    name = CHANNEL
    limits = TELEGRAM

    def __init__(self, bot: Bot, media: MediaOut | None = None) -> None:
        self.bot = bot
        self.media = media  # without it, a payload's files are left out (tests of text alone)
        self._send_message_url = f"{bot.base_url}/sendMessage"

    def is_group(self, external_id: str) -> bool:
        return external_id.startswith("-")  # group and channel chat ids are negative

    def may_send(self, message: OutboundMessage, now: datetime) -> bool:
        return True  # no messaging window on this channel

    def is_paced(self, payload: dict[str, Any]) -> bool:
        return payload.get("kind") != "ack"

    async def send(self, message: OutboundMessage) -> SendResult:
        payload = message.payload
        try:
            if payload.get("kind") == "ack":
                await self.bot.answer_callback_query(payload["id"])
                return SendResult(ok=True)
            if self.media is not None and media_ids(payload):
                return await self._send_with_files(message)
            text = text_to_send(str(payload.get("text") or ""),
                                has_extras=bool(payload.get("buttons")))
            if text is None:
                return SendResult(ok=False, final=True, error=EMPTY_ERROR)
            parts = split_text(text, TEXT_LIMIT)
            sent = None
            chat_id = int(message.external_id)
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                body = send_text_body(chat_id, part, payload.get("buttons") or [] if last else [])
                sent = await self._post(body)
            sent_id = str(sent["message_id"]) if isinstance(sent, dict) else None
            return SendResult(ok=True, platform_message_id=sent_id)
        except BadRequest as exc:
            if payload.get("kind") == "ack":
                # An answer to a press older than Telegram keeps: nothing left to stop.
                return SendResult(ok=True, error=str(exc))
            return _failure(exc)
        except TelegramError as exc:
            return _failure(exc)

    async def _send_with_files(self, message: OutboundMessage) -> SendResult:
        """The text first, then each file; the buttons under the last file, where the item
        ends. Every file is checked before anything goes."""
        assert self.media is not None
        payload = message.payload
        try:
            files = await self.media.files(payload)
        except MediaRefused as exc:
            return SendResult(ok=False, final=exc.final, error=str(exc))
        chat_id = int(message.external_id)
        sent_id: str | None = None
        text = str(payload.get("text") or "")
        for part in split_text(text, TEXT_LIMIT) if text.strip() else []:
            sent = await self._post(send_text_body(chat_id, part, []))
            sent_id = str(sent["message_id"]) if isinstance(sent, dict) else sent_id
        markup = keyboard(payload.get("buttons") or [])
        for index, file in enumerate(files):
            last = index == len(files) - 1
            sent_id = await self._send_file(chat_id, file, markup if last else None)
        return SendResult(ok=True, platform_message_id=sent_id)

    async def _send_file(self, chat_id: int, file: OutgoingFile,
                         markup: InlineKeyboardMarkup | None) -> str:
        """One file by the file_id Telegram gave it, or uploaded with this very message (the
        first of a broadcast; the others wait for its file_id)."""
        assert self.media is not None
        method, field = FILE_METHODS[file.kind]
        sent: list[Message] = []

        async def upload(outgoing: OutgoingFile) -> str:
            data = await asyncio.to_thread(outgoing.read)
            sent.append(await self._call(method, chat_id, field,
                                         InputFile(data, filename=outgoing.name), markup))
            file_id = _file_id(sent[0], outgoing.kind)
            if file_id is None:
                raise BadRequest(f"{method} answered without a file_id")
            return file_id

        file_id, uploaded = await self.media.platform_id(file, upload)
        if uploaded:
            return str(sent[0].message_id)
        try:
            return str((await self._call(method, chat_id, field, file_id, markup)).message_id)
        except BadRequest as exc:
            if "file" not in str(exc).lower():
                raise
            # The id is no longer good (another bot token?): upload once more.
            await self.media.forget(file.media_id, file_id)
            file_id, uploaded = await self.media.platform_id(file, upload)
            if uploaded:
                return str(sent[0].message_id)
            return str((await self._call(method, chat_id, field, file_id, markup)).message_id)

    async def _call(self, method: str, chat_id: int, field: str, value: str | InputFile,
                    markup: InlineKeyboardMarkup | None) -> Message:
        """sendPhoto, sendVideo or sendDocument through python-telegram-bot."""
        if method == "sendPhoto":
            return await self.bot.send_photo(chat_id, photo=value, reply_markup=markup)
        if method == "sendVideo":
            return await self.bot.send_video(chat_id, video=value, reply_markup=markup)
        return await self.bot.send_document(chat_id, document=value, reply_markup=markup)

    async def _post(self, body: bytes) -> Any:
        """sendMessage with a prepared body (make_bot's client), or its parameters (any other)."""
        request = self.bot.request
        if isinstance(request, AiohttpRequest):
            return await request.post_encoded(self._send_message_url, body)
        return await self.bot.do_api_request("sendMessage", api_kwargs=json.loads(body))

    async def fetch_media(self, file_id: str) -> bytes:
        """Download a photo the member sent (getFile, then the file URL)."""
        file = await self.bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())
