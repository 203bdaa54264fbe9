"""The scheduler: APScheduler is the clock, the database the ledger; only one worker runs it.

Started by the worker process only (never in gunicorn's web workers). Each minute the leader, the
worker holding the "scheduler" lease (a PostgreSQL advisory lock, or the single process on
SQLite), asks `run_due` what is owed now. The job settings are chosen, not defaulted:
APScheduler's `misfire_grace_time` of 1 s would silently drop a run that started late (a busy
machine, a suspended laptop), so it is None (run however late); `coalesce` folds several missed
runs into one, which is right because a run asks the ledger what is owed and one run sends all
of it; `max_instances` 1 so a slow run is never overlapped by the next. A run at start-up
catches up whatever came due while no worker ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Config
from bot.dispatcher import Wakeup
from bot.reminders import Clock, TickResult, run_due
from bot.retention import run_retention
from storage.db import Database
from storage.leases import Lease
from storage.models import utcnow
from storage.retention import Pruned

log = logging.getLogger(__name__)

TICK_SECONDS = 60
LEASE_NAME = "scheduler"
RETENTION_HOUR, RETENTION_MINUTE = 9, 15
JOB_DEFAULTS = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}


class ReminderScheduler:
    """The minute job, run only while this process holds the scheduler lease."""

    def __init__(self, db: Database, clock: Clock, *, on_queued: Callable[[], None] | None = None,
                 tick_seconds: float = TICK_SECONDS, config: Config | None = None) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.on_queued = on_queued
        self.tick_seconds = tick_seconds
        self.lease = Lease(db, LEASE_NAME)
        self._scheduler: BackgroundScheduler | None = None

    def tick(self, now: datetime | None = None) -> TickResult | None:
        """One run if this process leads; None when another worker does."""
        try:
            if not self.lease.try_acquire() or not self.lease.still_held():
                return None
            result = run_due(self.db, self.clock, now or utcnow())
        except Exception:
            log.exception("the reminder run failed; the next one retries what is owed")
            return None
        if result.queued:
            log.info("queued %d reminder(s), %d snoozed, %d escalation(s), %d digest(s)",
                     result.reminders, result.snoozes, result.escalations, result.digests)
            if self.on_queued is not None:
                self.on_queued()
        return result

    def retention(self, now: datetime | None = None) -> Pruned | None:
        """The daily retention job (bot/retention.py), on the leader only; None elsewhere."""
        if self.config is None:
            return None
        try:
            if not self.lease.try_acquire() or not self.lease.still_held():
                return None
            return run_retention(self.config, self.db, now or utcnow())[1]
        except Exception:
            log.exception("the retention run failed; tomorrow's run does what it did not")
            return None

    def start(self) -> None:
        scheduler = BackgroundScheduler(timezone=self.clock.tz, job_defaults=JOB_DEFAULTS)
        scheduler.add_job(self.tick, IntervalTrigger(seconds=self.tick_seconds),
                          id="reminders", next_run_time=datetime.now(self.clock.tz))
        if self.config is not None:
            # Daily, after the morning's reminders, outside quiet hours (its warnings are
            # messages too).
            scheduler.add_job(self.retention, CronTrigger(hour=RETENTION_HOUR,
                                                          minute=RETENTION_MINUTE,
                                                          timezone=self.clock.tz),
                              id="retention")
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self.lease.release()


def start_scheduler(config: Config, db: Database, wakeup: Wakeup) -> ReminderScheduler:
    """The worker's scheduler, waking its sender when a run queued something."""
    scheduler = ReminderScheduler(db, Clock(config.tz, config.quiet_hours, config.reminder_time),
                                  on_queued=wakeup.notify, config=config)
    scheduler.start()
    return scheduler
