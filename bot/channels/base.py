"""What every channel's sending side provides to the shared sender."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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
