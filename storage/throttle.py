"""Sliding-window limits kept in the database, so every web worker and replica counts the same."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.models_security import RateEvent

# Rows are kept as long as the longest window any caller uses; older ones only take space.
KEEP = timedelta(days=1)


@dataclass(frozen=True)
class Limit:
    """At most `count` events under one key within `window`."""

    bucket: str
    count: int
    window: timedelta


def count(session: Session, bucket: str, key: str, since: datetime) -> int:
    """Events of one key since a moment."""
    return session.scalar(select(func.count()).select_from(RateEvent).where(
        RateEvent.bucket == bucket, RateEvent.key == key[:96], RateEvent.at > since)) or 0


def blocked(session: Session, checks: Sequence[tuple[Limit, str]], now: datetime
            ) -> timedelta | None:
    """How long until every (limit, key) pair has room again; None when all have room now."""
    wait: timedelta | None = None
    for limit, key in checks:
        since = now - limit.window
        rows = list(session.scalars(
            select(RateEvent.at).where(RateEvent.bucket == limit.bucket,
                                       RateEvent.key == key[:96], RateEvent.at > since)
            .order_by(RateEvent.at.desc()).limit(limit.count)))
        if len(rows) >= limit.count:
            # Room again when the oldest of the last `count` events leaves the window.
            until = rows[-1] + limit.window - now
            wait = max(wait or until, until)
    return wait


def record(session: Session, checks: Sequence[tuple[Limit, str]], now: datetime) -> None:
    """Count one event under each key; now and then drop rows no window needs any more."""
    for limit, key in checks:
        session.add(RateEvent(bucket=limit.bucket, key=key[:96], at=now))
    if random.random() < 0.01:
        session.execute(delete(RateEvent).where(RateEvent.at < now - KEEP))


def hit(session: Session, checks: Sequence[tuple[Limit, str]], now: datetime
        ) -> timedelta | None:
    """Count an event if every limit has room; otherwise count nothing and say how long to wait.

    Two workers may both see room for the last slot; a limit can be passed by the number of
    concurrent requests, which is small against the counts used here.
    """
    wait = blocked(session, checks, now)
    if wait is None:
        record(session, checks, now)
    return wait
