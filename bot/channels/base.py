"""What every channel's sending side provides to the shared sender."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from storage.outbox import OutboundMessage


@dataclass(frozen=True)
class SendResult:
    """How one delivery went; `retry_after` asks the sender to wait before trying again."""

    ok: bool
    platform_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    unreachable: bool = False


class Sender(Protocol):
    """A channel's delivery: turn a neutral message into the platform's call."""

    name: str

    async def send(self, message: OutboundMessage) -> SendResult: ...


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
