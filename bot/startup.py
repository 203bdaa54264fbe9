"""What every process does before serving: a current schema and a loaded plan."""

from __future__ import annotations

import logging
import sys

from bot.config import Config
from storage import migrate
from storage.db import Database, lock_exclusively
from storage.plan_file import read_plan_file
from storage.plans import has_plan, load_plan

log = logging.getLogger(__name__)

# Several web replicas may start together on an empty database; one loads the plan.
PLAN_LOCK_KEY = 8_0001
# SQLite lets one writer in at a time (storage.db.WriterQueue). The thread holding that turn
# gives up the GIL at every sqlite3 call and, at Python's default 5 ms switch interval, may wait
# that long to get it back from a thread doing other work while every other writer waits
# behind it. Handing the GIL back sooner took the threaded webhook on SQLite from about 500 to
# about 700 requests/s in the webhook benchmark (BENCHMARKS.md); PostgreSQL has no such single
# turn and showed no gain, so it keeps the default.
SQLITE_SWITCH_INTERVAL = 0.0005


def tune_process(db: Database) -> None:
    """Threads of a process serving SQLite pass the GIL sooner (see SQLITE_SWITCH_INTERVAL)."""
    if db.is_sqlite and sys.getswitchinterval() > SQLITE_SWITCH_INTERVAL:
        sys.setswitchinterval(SQLITE_SWITCH_INTERVAL)


def prepare_database(config: Config, db: Database) -> None:
    """Upgrade an empty or old database, then load the default plan if none is loaded yet."""
    migrate.upgrade(db.engine)
    if config.plan_file is None:
        return
    with db.transaction() as session:
        lock_exclusively(session, PLAN_LOCK_KEY)
        if has_plan(session):
            return
        spec = read_plan_file(config.plan_file)
        load_plan(session, spec, actor="startup")
        log.info("loaded the default plan %s from %s", spec.code, config.plan_file)
