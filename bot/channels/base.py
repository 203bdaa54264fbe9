"""What every channel's sending side provides to the shared sender."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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


async def download_capped(client: httpx.AsyncClient, url: str, max_bytes: int) -> bytes:
    """Download a member's photo, refusing it as soon as it grows past the size limit."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("not an http(s) URL")
    chunks: list[bytes] = []
    total = 0
    async with client.stream("GET", url, follow_redirects=True,
                             timeout=httpx.Timeout(30.0, connect=5.0)) as response:
        response.raise_for_status()
        declared = int(response.headers.get("content-length") or 0)
        if declared > max_bytes:
            raise ValueError(f"photo of {declared} bytes is over the {max_bytes} limit")
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > max_bytes:
                raise ValueError(f"photo is over the {max_bytes} byte limit")
            chunks.append(chunk)
    return b"".join(chunks)


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
