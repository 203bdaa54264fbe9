"""Zalo OA's reply window and free-reply quota, both configuration because sources disagree.

Zalo's help centre ("Các loại tin của Zalo Official Account", cited in PLATFORMS.md) gives a reply
(tin phản hồi) as free for 8 messages within 48 h of the member's last message, the count starting
again at each new member message; so do integrators' help pages (Harasocial,
https://support.harasocial.com/support/solutions/articles/42000095670: "tối đa 8 tin nhắn trong
48 tiếng, mỗi hội thoại ... Đến khi khách hàng trả lời lại tin nhắn, hệ thống sẽ tải lại 8 tin";
CloudPro, https://docs.cloudpro.vn/faqs: "8 tin nhắn miễn phí - gửi trong vòng 48 giờ"). Other
third parties speak of 7 days, or of no count for followers within 24 h. Hence
ZALO_CS_WINDOW_HOURS (default 48) and ZALO_CS_QUOTA (default 8; 0 turns the count off).

The count is of Zalo messages, not outbox rows: a row may be a split text or text and photos
(zalo_media.message_count), an acknowledgement is none. Rows recorded as sent come from the
database, in one query on the outbox's identity index (storage.outbox.sent_since); rows this
process sent but the shared sender has not recorded yet (it records a whole batch at once) are
kept in memory, so two broadcasts to one member in one batch are both counted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.channels.zalo import CHANNEL
from bot.channels.zalo_media import message_count
from storage import outbox
from storage.db import Database
from storage.outbox import OutboundMessage

log = logging.getLogger(__name__)

WINDOW_ENV = "ZALO_CS_WINDOW_HOURS"
DEFAULT_WINDOW_HOURS = 48.0
QUOTA_ENV = "ZALO_CS_QUOTA"
DEFAULT_QUOTA = 8
MAX_QUOTA = 1000
# Long enough for any batch to be recorded (the sender's lease is a minute); short enough that
# memory stays small on a worker that runs for months.
UNRECORDED_TTL = timedelta(minutes=10)


def cs_window(environ: Mapping[str, str] | None = None) -> timedelta:
    """The consultation window, from ZALO_CS_WINDOW_HOURS or 48 hours."""
    raw = (os.environ if environ is None else environ).get(WINDOW_ENV, "").strip()
    if not raw:
        return timedelta(hours=DEFAULT_WINDOW_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= 24 * 30:
        log.warning("%s=%r is not a number of hours between 0 and 720; using %g",
                    WINDOW_ENV, raw, DEFAULT_WINDOW_HOURS)
        hours = DEFAULT_WINDOW_HOURS
    return timedelta(hours=hours)


def cs_quota(environ: Mapping[str, str] | None = None) -> int | None:
    """Free messages per member message, from ZALO_CS_QUOTA or 8; None when 0 turns it off."""
    raw = (os.environ if environ is None else environ).get(QUOTA_ENV, "").strip()
    if not raw:
        return DEFAULT_QUOTA
    if raw.isdigit() and int(raw) <= MAX_QUOTA:
        return int(raw) or None
    log.warning("%s=%r is not a whole number from 0 (no limit) to %d; using %d",
                QUOTA_ENV, raw, MAX_QUOTA, DEFAULT_QUOTA)
    return DEFAULT_QUOTA


class ReplyQuota:
    """How many free messages a member still has, counted since their last message."""

    def __init__(self, db: Database, limit: int | None) -> None:
        self.db = db
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
        with self.db.sessions() as session:
            rows = outbox.sent_since(session, identity_id, CHANNEL, since,
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
