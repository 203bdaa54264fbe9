"""The daily retention job: warn owners of drafts about to go, then prune what outlived its time.

It runs on the scheduler's leader; run by hand with `duan8 retention run`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.config import Config
from bot.dispatcher import render_reply
from handlers.types import Button, Reply
from messages_vi import _
from storage import outbox
from storage.db import Database
from storage.retention import Pruned, drafts_to_warn, mark_warned, prune

log = logging.getLogger(__name__)


def run_retention(config: Config, db: Database, now: datetime) -> tuple[int, Pruned]:
    """Returns (members warned, what was pruned). Warnings wait for the end of quiet hours."""
    policy = config.retention
    warned = 0
    if not config.quiet_hours.contains(now.astimezone(config.tz).time()):
        with db.transaction() as session:
            for draft in drafts_to_warn(session, policy, now):
                reply = Reply.of(
                    _("Your unfinished report will be deleted on {date}. Continue it now?",
                      date=draft.deleted_on.astimezone(config.tz).date()),
                    buttons=(Button(_("Report an activity"), "cmd:report"),))
                outbox.enqueue(session, draft.identity_id, draft.channel,
                               render_reply(reply, draft.locale),
                               priority=outbox.PRIORITY_BULK, now=now)
                mark_warned(session, draft.identity_id)
                warned += 1
    with db.transaction() as session:
        pruned = prune(session, policy, config.media_path, now)
    log.info("retention: %d warned, %d drafts, %d photos, %d event keys, %d payloads pruned",
             warned, pruned.drafts, pruned.photos, pruned.inbound_events, pruned.payloads)
    return warned, pruned
