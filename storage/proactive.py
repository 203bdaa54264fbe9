"""Monthly quotas of proactive messages (Zalo OA: 1,000 free a month for a verified OA).

Counted per local month and kind. Reminders and broadcasts spend from the same quota;
broadcasts may only spend what is left after a reserve kept for reminders, so reminders get
the quota before campaign material. What did not fit is counted as held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.db import lock_exclusively
from storage.leases import lease_key
from storage.models_content import ProactiveUsage


@dataclass(frozen=True)
class Proactive:
    """The rule for one channel during one fan-out."""

    channel: str
    free_since: datetime  # a member who wrote after this gets a free reply instead
    month: str  # YYYY-MM, local time
    quota: int
    reserve: int  # kept for reminders

    def is_proactive(self, channel: str, last_inbound_at: datetime | None) -> bool:
        return channel == self.channel and (last_inbound_at is None
                                            or last_inbound_at < self.free_since)


def lock(session: Session, channel: str, month: str) -> None:
    """One spender at a time per channel and month, until the transaction ends."""
    lock_exclusively(session, lease_key(f"proactive:{channel}:{month}"))


def used(session: Session, channel: str, month: str) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(ProactiveUsage.used), 0)).where(
        ProactiveUsage.channel == channel, ProactiveUsage.month == month)) or 0)


def room(session: Session, channel: str, month: str, *, quota: int, reserve: int,
         kind: str) -> int:
    """How many more messages of this kind fit this month (reminders may use the reserve)."""
    limit = quota if kind == "reminder" else max(0, quota - reserve)
    return max(0, limit - used(session, channel, month))


def record(session: Session, channel: str, month: str, kind: str, *, spent: int = 0,
           held: int = 0) -> None:
    """Add to the month's counts in the caller's transaction."""
    if not spent and not held:
        return
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = make(ProactiveUsage).values(channel=channel, month=month, kind=kind,
                                            used=spent, held=held)
    statement = statement.on_conflict_do_update(
        index_elements=["channel", "month", "kind"],
        set_={"used": ProactiveUsage.used + statement.excluded.used,
              "held": ProactiveUsage.held + statement.excluded.held})
    session.execute(statement)


@dataclass(frozen=True)
class MonthUsage:
    channel: str
    month: str
    by_kind: dict[str, tuple[int, int]]  # kind -> (used, held)

    @property
    def used(self) -> int:
        return sum(u for u, _h in self.by_kind.values())

    @property
    def held(self) -> int:
        return sum(h for _u, h in self.by_kind.values())


def month_usage(session: Session, channel: str, month: str) -> MonthUsage:
    rows = session.execute(select(ProactiveUsage.kind, ProactiveUsage.used, ProactiveUsage.held)
                           .where(ProactiveUsage.channel == channel,
                                  ProactiveUsage.month == month))
    return MonthUsage(channel, month, {k: (u, h) for k, u, h in rows})
