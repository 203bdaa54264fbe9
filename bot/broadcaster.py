"""Due broadcasts, fanned out by the worker: one broadcast at a time per worker, in batches.

Any number of workers may run this loop: a broadcast is taken under a lease in the database
(`storage.broadcasts.claim_due`, SKIP LOCKED on PostgreSQL) that each batch renews, so a worker
killed mid fan-out leaves it to be taken again when the lease runs out, from the last batch it
committed. Quiet hours: rows are written due at the next allowed time, and while quiet hours
last, rows of running broadcasts not yet sent are moved to their end.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Config
from bot.dispatcher import Wakeup, render_reply
from handlers.content import item_reply
from messages_vi import LOCALES
from storage import broadcasts, outbox
from storage import content as library
from storage.db import Database
from storage.models import utcnow
from storage.proactive import Proactive
from storage.values import MessagePayload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BroadcasterSettings:
    batch: int = 2000
    lease: timedelta = timedelta(seconds=30)
    idle_seconds: float = 2.0
    quiet_check_seconds: float = 60.0
    statistics_every: int = 10  # batches between refreshes of the planner's statistics


class Broadcaster:
    def __init__(self, config: Config, db: Database, wakeup: Wakeup | None = None,
                 settings: BroadcasterSettings | None = None) -> None:
        self.config = config
        self.db = db
        self.wakeup = wakeup or Wakeup()
        self.settings = settings or BroadcasterSettings()
        self._quiet_checked: datetime | None = None

    async def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                worked = await asyncio.to_thread(self.step, stop.is_set)
            except Exception:
                log.exception("broadcast fan-out failed; it is taken again after its lease")
                worked = False
            if not worked:
                await asyncio.to_thread(stop.wait, self.settings.idle_seconds)

    def not_before(self, moment: datetime) -> datetime:
        """The moment itself, or the end of quiet hours when it falls inside them."""
        return self.config.quiet_hours.next_allowed(moment, self.config.tz)

    def step(self, stopping: Callable[[], bool] = lambda: False,
             progress: Callable[[int], None] | None = None) -> bool:
        """Fan out one due broadcast completely; False when none was due."""
        now = utcnow()
        self._hold_for_quiet_hours(now)
        with self.db.transaction() as session:
            job = broadcasts.claim_due(session, now=now, lease=self.settings.lease)
            if job is None:
                return False
            item = library.get_item(session, job.item_id, version_id=job.version_id)
        if item is None:
            log.error("broadcast %s: its content version is gone", job.id)
            return True
        payloads = {locale: render_reply(item_reply(item, locale, job.id), locale)
                    for locale in LOCALES}
        log.info("broadcast %s: fan-out from member %s", job.id, job.cursor)
        batches = 0
        while not stopping():
            now = utcnow()
            with self.db.transaction() as session:
                result = broadcasts.fan_out_batch(
                    session, job.id, payloads, now=now, not_before=self.not_before(now),
                    limit=self.settings.batch, lease=self.settings.lease,
                    proactive=self.zalo_rule(now))
            batches += 1
            if result.done or batches % self.settings.statistics_every == 0:
                with self.db.transaction() as session:
                    outbox.refresh_statistics(session)  # the senders' claims plan by them
            if result.queued:
                self.wakeup.notify()
            if progress is not None:
                progress(result.members)
            if result.done or result.stopped:
                log.info("broadcast %s: fan-out %s", job.id,
                         "finished" if result.done else "stopped")
                break
        return True

    def zalo_rule(self, now: datetime) -> Proactive:
        """Zalo OA: members who wrote within the reply window get a free reply; the others a
        proactive message, from ZALO_PROACTIVE_QUOTA less ZALO_PROACTIVE_RESERVE."""
        window = timedelta(hours=self.config.zalo_cs_window_hours)
        return Proactive(channel="zalo", free_since=now - window,
                         month=now.astimezone(self.config.tz).strftime("%Y-%m"),
                         quota=self.config.zalo_proactive_quota,
                         reserve=self.config.zalo_proactive_reserve)

    def _hold_for_quiet_hours(self, now: datetime) -> None:
        if self.config.quiet_hours.off:
            return
        checked = self._quiet_checked
        if checked and (now - checked).total_seconds() < self.settings.quiet_check_seconds:
            return
        self._quiet_checked = now
        until = self.not_before(now)
        if until > now:
            with self.db.transaction() as session:
                held = broadcasts.hold_until(session, until, now=now)
            if held:
                log.info("quiet hours: %d broadcast messages wait until %s", held, until)


def payload_preview(config: Config, db: Database, item_id: int) -> MessagePayload | None:
    """The Vietnamese message an item becomes, as the outbox would hold it."""
    with db.sessions() as session:
        item = library.get_item(session, item_id)
    return None if item is None else render_reply(item_reply(item, "vi", None), "vi")
