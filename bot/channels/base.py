"""What every channel's sending side provides to the shared sender."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from bot.channels.port import OutboundMessage
from bot.ratelimit import Limits


@dataclass(frozen=True)
class SendResult:
    """How one delivery went, in terms the sender can act on."""

    ok: bool
    platform_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None  # the platform asked us to slow down
    unreachable: bool = False  # blocked, deleted, never started the bot: do not retry
    final: bool = False  # the platform refused this message for good (e.g. bad request)
    outside_window: bool = False  # the platform's messaging window is closed for this person


class ChannelSender(Protocol):
    """A channel's delivery: turn a neutral message into the platform's call."""

    name: str
    limits: Limits

    def is_group(self, external_id: str) -> bool:
        """Group chats have a lower per-chat limit than private ones."""
        ...

    def is_paced(self, payload: dict[str, Any]) -> bool:
        """Whether this payload counts against the per-chat message limit."""
        ...

    def may_send(self, message: OutboundMessage, now: datetime) -> bool:
        """The platform's messaging-window rule: may this go to this person now?"""
        ...

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one outbox row."""
        ...


MAX_REDIRECTS = 3
DOWNLOAD_SECONDS = 30.0


@dataclass(frozen=True)
class MediaHosts:
    """Where a platform's picture URLs may point: host suffixes over HTTPS, and the platform's
    own configured API origin (which tests point at a fake on loopback)."""

    suffixes: tuple[str, ...]
    origin: str = ""

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if self.origin and f"{parts.scheme}://{parts.netloc}" == self.origin.rstrip("/"):
            return True
        host = (parts.hostname or "").lower().rstrip(".")
        return parts.scheme == "https" and parts.username is None and any(
            host == suffix.lstrip(".") or host.endswith("." + suffix.lstrip("."))
            for suffix in self.suffixes)


async def download_capped(client: httpx.AsyncClient, url: str, max_bytes: int,
                          hosts: MediaHosts) -> bytes:
    """Download a member's photo from the platform's hosts only, under a size and time cap.

    Redirects are followed by hand, a few at most, each to an allowed host; the whole download
    has DOWNLOAD_SECONDS, however slowly the bytes come.
    """
    async with asyncio.timeout(DOWNLOAD_SECONDS):
        for _hop in range(MAX_REDIRECTS + 1):
            if not hosts.allows(url):
                raise ValueError(f"not a media host of the platform: {urlsplit(url).netloc!r}")
            async with client.stream("GET", url, follow_redirects=False,
                                     timeout=httpx.Timeout(15.0, connect=5.0)) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                response.raise_for_status()
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise ValueError(f"photo of {declared} bytes is over the {max_bytes} limit")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise ValueError(f"photo is over the {max_bytes} byte limit")
                return bytes(data)
    raise ValueError("too many redirects")


EMPTY_FILLER = "…"
EMPTY_ERROR = "empty message: nothing to send"


def text_to_send(text: str, *, has_extras: bool) -> str | None:
    """A text a platform accepts, or None when there is nothing to send.

    Telegram answers 400 "message text is empty" to a blank text, Messenger (#100) "Param
    message[text] must be a non-empty UTF-8 encoded string": a blank text under buttons becomes
    "…", and a blank text alone is not sent at all.
    """
    if text.strip():
        return text
    return EMPTY_FILLER if has_extras else None


def split_text(text: str, limit: int) -> list[str]:
    """Split a long text at paragraph, line or word breaks; never cut a message short."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


@dataclass
class ChannelStart:
    """What a platform brings to the worker: its sender, photo fetchers and a poller if any."""

    sender: ChannelSender
    fetchers: dict[str, Callable[[str], Awaitable[bytes]]] = field(default_factory=dict)
    poller: Any = None  # an object with `async run(stop)`, for platforms polled for updates
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
