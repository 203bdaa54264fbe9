"""The worker: claims due outbox rows and hands each to its channel's sender."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from datetime import timedelta

from bot.channels.base import Sender, SendResult
from bot.channels.webchat_sender import WebChatSender
from bot.config import Config
from bot.dispatcher import Wakeup
from storage import outbox
from storage.db import Database
from storage.models import utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH = 100
IDLE_POLL_SECONDS = 0.5
MAX_ATTEMPTS = 8


def backoff(attempts: int) -> float:
    """Exponential backoff with jitter, capped at ten minutes."""
    return min(600.0, 2.0 ** attempts) * (0.5 + random.random() / 2)


class Worker:
    """One sender loop; rows are leased, so a killed worker's rows are retaken later."""

    def __init__(self, config: Config, db: Database, wakeup: Wakeup | None = None,
                 senders: list[Sender] | None = None) -> None:
        self.config = config
        self.db = db
        self.wakeup = wakeup or Wakeup()
        self.senders: dict[str, Sender] = {s.name: s for s in (senders or [WebChatSender()])}

    async def run(self, stop: threading.Event) -> None:
        log.info("worker delivering for %s", ", ".join(self.senders))
        while not stop.is_set():
            sent = await self.deliver_once()
            if sent == 0:
                await asyncio.to_thread(self.wakeup.wait, IDLE_POLL_SECONDS)

    async def deliver_once(self) -> int:
        """Claim one batch and deliver it; returns how many rows were handled."""
        claimed = await asyncio.to_thread(self._claim)
        for message in claimed:
            try:
                result = await self.senders[message.channel].send(message)
            except Exception as exc:  # a sender bug must not stop the other channels
                log.exception("sender %s failed on row %s", message.channel, message.id)
                result = SendResult(ok=False, error=f"internal error: {exc}")
            await asyncio.to_thread(self._record, message, result)
        return len(claimed)

    def _claim(self) -> list[outbox.OutboundMessage]:
        with self.db.transaction() as session:
            return outbox.claim_due(session, list(self.senders), now=utcnow(), limit=BATCH,
                                    lease=LEASE)

    def _record(self, message: outbox.OutboundMessage, result: SendResult) -> None:
        now = utcnow()
        with self.db.transaction() as session:
            if result.ok:
                outbox.mark_sent(session, message.id, now=now,
                                 platform_message_id=result.platform_message_id)
            elif result.unreachable:
                outbox.mark_final(session, message.id, status="unreachable",
                                  error=result.error or "unreachable")
            elif message.attempts >= MAX_ATTEMPTS:
                outbox.mark_final(session, message.id, status="failed",
                                  error=result.error or "failed")
            else:
                wait = result.retry_after or backoff(message.attempts)
                outbox.mark_retry(session, message.id, at=now + timedelta(seconds=wait),
                                  error=result.error or "retry")
