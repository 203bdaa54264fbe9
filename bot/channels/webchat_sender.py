"""Delivery for web chat: the page reads delivered rows, so delivering is marking them sent."""

from __future__ import annotations

from bot.channels.base import SendResult
from storage.outbox import OutboundMessage


class WebChatSender:
    name = "webchat"

    async def send(self, message: OutboundMessage) -> SendResult:
        """Nothing to call: the browser polls for rows in the `sent` state."""
        return SendResult(ok=True, platform_message_id=str(message.id))
