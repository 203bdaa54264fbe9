"""Zalo Bot Platform's outbound side, in the worker's event loop: the Bot API client, sending and
members' photos.

Every call is `POST {ZALO_BOT_API_URL}/bot{TOKEN}/{method}` with a JSON body, answered
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": ..., "description": ...}` (Zalo Bot
Platform docs, bot.zaloplatforms.com/docs; python-zalo-bot, a python-telegram-bot fork, speaks
the same). There is no official SDK for asyncio we trust, and the API is five methods, so
httpx.AsyncClient is used directly.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import httpx

from bot.channels.base import SendResult, split_text
from bot.channels.download import MediaHosts, download_capped
from bot.channels.numbered import with_choices
from bot.channels.port import PRIORITY_REPLY, ChannelPort, Database, OutboundMessage
from bot.channels.tls import client_tls
from bot.channels.zalo_bot.inbound import BUTTONS, CHANNEL
from bot.config import Config
from bot.ratelimit import Limits

log = logging.getLogger(__name__)

remember_buttons = BUTTONS.remember

TEXT_LIMIT = 2000  # sendMessage: "from 1 to 2000 characters" (Zalo Bot Platform docs)
DEFAULT_RETRY_AFTER = 30.0  # 429 "Quota exceeded" carries no documented wait
UNREACHABLE_HINTS = ("blocked", "not found")
# Zalo publishes no send rate for bots, only the 429 "Quota exceeded" error. These values stay
# under Telegram's published 30/s overall and keep one message a second per chat, so a member
# reads replies in order and a broadcast never bursts into an unknown quota.
ZALO_BOT = Limits(per_second=20.0, per_chat_per_second=1.0)


class ZaloBotError(Exception):
    """A Bot API call that did not succeed; `code` is None for network failures."""

    def __init__(self, code: int | None, description: str,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{code or 'network'}: {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


class ZaloBotApi:
    """The Bot API methods duan8 uses, over one pooled HTTP client."""

    def __init__(self, config: Config, *, client: httpx.AsyncClient | None = None) -> None:
        """One pool for all calls; tests pass their own client to shorten timeouts."""
        self.root = f"{config.zalo_bot_api_url}/bot{config.zalo_bot_token}"
        self.media_hosts = MediaHosts(config.media_hosts.get("zalo_bot", ()),
                                      config.zalo_bot_api_url)
        self.client = client or httpx.AsyncClient(
            verify=client_tls(), timeout=httpx.Timeout(15.0, connect=5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def call(self, method: str, params: dict[str, Any] | None = None, *,
                   timeout: float | None = None) -> Any:
        """One method call; returns `result` or raises ZaloBotError."""
        try:
            response = await self.client.post(
                f"{self.root}/{method}", json=params or {},
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.HTTPError as exc:  # timeouts, refused or dropped connections
            raise ZaloBotError(None, f"{type(exc).__name__}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("ok") is True:
            return body.get("result")
        raise _error(response, body)

    async def fetch(self, url: str, max_bytes: int) -> bytes:
        """Download a file, refusing it as soon as it grows past `max_bytes`."""
        return await download_capped(self.client, url, max_bytes, self.media_hosts)

    async def aclose(self) -> None:
        """Close pooled connections when the worker stops."""
        await self.client.aclose()


def _error(response: httpx.Response, body: Any) -> ZaloBotError:
    """Read an error answer; the body's error_code wins over the HTTP status."""
    if not isinstance(body, dict):
        return ZaloBotError(response.status_code, f"HTTP {response.status_code} without JSON")
    code = body.get("error_code")
    code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    retry_after: float | None = None
    parameters = body.get("parameters")
    if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
        retry_after = float(parameters["retry_after"])
    elif response.headers.get("retry-after", "").isdigit():
        retry_after = float(response.headers["retry-after"])
    description = str(body.get("description") or body.get("message") or "no description")
    return ZaloBotError(code or response.status_code, description, retry_after)


def failure(err: ZaloBotError) -> SendResult:
    """A Bot API error in the sender's terms: wait, give up on the person, retry, or drop."""
    text = f"Zalo Bot {err.code or 'network'}: {err.description}"
    if err.code == 429:
        return SendResult(ok=False, error=f"rate limited: {text}",
                          retry_after=max(err.retry_after or DEFAULT_RETRY_AFTER, 1.0))
    if err.code == 403 or any(h in err.description.lower() for h in UNREACHABLE_HINTS):
        return SendResult(ok=False, unreachable=True, error=f"unreachable on Zalo: {text}")
    if err.code is None or err.code >= 500 or err.code == 408:
        return SendResult(ok=False, error=f"network: {text}")
    if err.code == 401:
        # A wrong or revoked token is the deployment's fault, not the message's: keep it.
        log.error("Zalo Bot refused the token (ZALO_BOT_TOKEN): %s", err.description)
        return SendResult(ok=False, error=text)
    return SendResult(ok=False, final=True, error=f"refused by Zalo: {text}")


class ZaloBotSender:
    """Renders outbox payloads as sendMessage calls, buttons as a numbered list."""

    name = CHANNEL
    limits = ZALO_BOT

    def __init__(self, api: ZaloBotApi, db: Database, *,
                 max_photo_bytes: int = 5 * 1024 * 1024) -> None:
        self.api = api
        self.db = db
        self.port = ChannelPort(db)
        self.max_photo_bytes = max_photo_bytes

    def is_group(self, external_id: str) -> bool:
        """Never: only private chats get a conversation, so no group pacing applies."""
        return False

    def may_send(self, message: OutboundMessage, now: datetime) -> bool:
        """Always: the Bot Platform documents no messaging window (the OA API has one)."""
        return True

    def is_paced(self, payload: dict[str, Any]) -> bool:
        """Every real message counts against the per-chat pace; acks send nothing."""
        return payload.get("kind") != "ack"

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one row in parts of at most 2,000 characters, choices after the last."""
        payload = message.payload
        if payload.get("kind") == "ack":
            return SendResult(ok=True)  # no button spinners to stop on this platform
        text, choices = with_choices(str(payload.get("text") or ""), payload.get("buttons") or [])
        if not text.strip():
            return SendResult(ok=True, error="nothing to send")  # Zalo refuses empty texts
        sent_id = None
        try:
            for part in split_text(text, TEXT_LIMIT):
                result = await self.api.call("sendMessage",
                                             {"chat_id": message.external_id, "text": part})
                if isinstance(result, dict) and result.get("message_id") is not None:
                    sent_id = str(result["message_id"])
        except ZaloBotError as err:
            return failure(err)
        if choices or message.priority <= PRIORITY_REPLY:
            # A reply decides what "1" means next; a broadcast without buttons leaves it be.
            await asyncio.to_thread(self._remember, message.external_id, choices)
        return SendResult(ok=True, platform_message_id=sent_id)

    def _remember(self, external_id: str, choices: list[dict[str, str]]) -> None:
        """Keep what a typed number presses next, for the webhook and poller to read."""
        try:
            remember_buttons(self.port, external_id, choices)
        except Exception:
            # The message is already delivered; failing here would make the sender send it
            # again. The member can still type the label instead of its number.
            log.exception("could not remember the choices shown in Zalo chat %s", external_id)

    async def fetch_media(self, url: str) -> bytes:
        """Download a photo a member sent, from the URL its event carried."""
        return await self.api.fetch(url, self.max_photo_bytes)
