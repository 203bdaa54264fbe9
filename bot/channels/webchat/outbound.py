"""Delivery for web chat: the page reads delivered rows, so delivering is marking them sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.channels.base import SendResult
from bot.channels.port import OutboundMessage
from bot.ratelimit import UNLIMITED


class WebChatSender:
    name = "webchat"
    limits = UNLIMITED

    def is_group(self, external_id: str) -> bool:
        return False

    def may_send(self, message: OutboundMessage, now: datetime) -> bool:
        return True  # no messaging window on this channel

    def is_paced(self, payload: dict[str, Any]) -> bool:
        return False

    async def send(self, message: OutboundMessage) -> SendResult:
        """Nothing to call: the browser polls for rows in the `sent` state."""
        return SendResult(ok=True, platform_message_id=str(message.id))
