"""What every process does before serving: a current schema and a loaded plan."""

from __future__ import annotations

import logging

from bot.config import Config
from storage import migrate
from storage.db import Database, lock_exclusively
from storage.plan_file import read_plan_file
from storage.plans import has_plan, load_plan

log = logging.getLogger(__name__)

# Several web replicas may start together on an empty database; one loads the plan.
PLAN_LOCK_KEY = 8_0001


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
