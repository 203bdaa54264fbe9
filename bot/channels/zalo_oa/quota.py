"""Zalo OA's reply policy: which messages Zalo delivers free, billed, or not at all.

Sources disagree, so every figure is a setting (bot/config.py), with defaults from the newest:
- Zalo's help centre ("Các loại tin của Zalo Official Account") and integrators' pages
  (Harasocial, CloudPro) still say 8 free replies within 48 h of the member's last message.
- Zalo's newer Official Account documentation ("Chính sách tin tư vấn", effective 01/01/2026,
  as integrators quote it) makes replies within 48 h free with no count, and after 48 h billed
  rather than blocked, up to 7 days after the member's last message; later, Zalo refuses
  (-230, -232).
Hence ZALO_CS_WINDOW_HOURS (48), ZALO_CS_QUOTA (0: no count; 8 for the older rule),
ZALO_BILLED_DAYS (7) and ZALO_USE_BILLED (off: the province decides to pay). A message outside
what the policy allows is left to the shared sender's window rule (another channel, or held
until the member writes). Zalo also returns a `quota` object with a send's answer; a reported
`remain` of 0 holds the member's next messages until they write again (outbound.py).

The count is of Zalo messages, not outbox rows: a row may be a split text or text and photos
(media.message_count), an acknowledgement is none. Rows recorded as sent come from the
database, in one query on the outbox's identity index (storage.outbox.sent_since); rows this
process sent but the shared sender has not recorded yet (it records a whole batch at once) are
kept in memory, so two broadcasts to one member in one batch are both counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.channels.port import ChannelPort, Database, OutboundMessage
from bot.channels.zalo_oa.inbound import CHANNEL
from bot.channels.zalo_oa.media import message_count
from bot.config import Config

log = logging.getLogger(__name__)

UNRECORDED_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class ZaloPolicy:
    """What Zalo is asked to deliver, by the time since the member's last message."""

    free_window: timedelta = timedelta(hours=48)
    free_quota: int | None = None
    billed_window: timedelta = timedelta(days=7)
    use_billed: bool = False

    @classmethod
    def of(cls, config: Config) -> ZaloPolicy:
        return cls(timedelta(hours=config.zalo_cs_window_hours), config.zalo_cs_quota,
                   timedelta(days=config.zalo_billed_days), config.zalo_use_billed)

    def billed_until(self) -> timedelta:
        """How long after the member's last message a message may still go (billed)."""
        return max(self.billed_window, self.free_window) if self.use_billed else self.free_window


class ReplyQuota:
    """How many free messages a member still has, counted since their last message."""

    def __init__(self, db: Database, limit: int | None) -> None:
        self.port = ChannelPort(db)
        self.limit = limit
        # identity id -> outbox id -> (when sent, Zalo messages): sent, not yet recorded.
        self._unrecorded: dict[int, dict[int, tuple[datetime, int]]] = {}

    def allows(self, message: OutboundMessage, now: datetime) -> bool:
        """Whether this row fits in what is left; a first row too big for a whole quota goes."""
        needed = message_count(message.payload)
        if self.limit is None or needed == 0 or message.last_inbound_at is None:
            return True
        used = self.used(message.identity_id, message.last_inbound_at, now)
        # A row larger than the whole quota would otherwise wait forever: it may start it.
        return used + needed <= self.limit or used == 0

    def used(self, identity_id: int, since: datetime, now: datetime) -> int:
        """Zalo messages sent to this identity after `since`, recorded or still in memory."""
        rows = self.port.sent_since(identity_id, CHANNEL, since,
                                    limit=2 * (self.limit or 0) + 20)
        counted = {row_id: message_count(payload) for row_id, payload in rows}
        mine = self._unrecorded.get(identity_id, {})
        for row_id, (sent_at, messages) in list(mine.items()):
            if now - sent_at > UNRECORDED_TTL:
                del mine[row_id]
            elif sent_at > since:
                counted.setdefault(row_id, messages)  # once recorded, the database's count wins
        if not mine:
            self._unrecorded.pop(identity_id, None)
        return sum(counted.values())

    def note(self, message: OutboundMessage, messages: int, now: datetime) -> None:
        """Remember what was just sent (even part of a row) until the sender records it."""
        if self.limit is None or messages <= 0:
            return
        self._unrecorded.setdefault(message.identity_id, {})[message.id] = (now, messages)
