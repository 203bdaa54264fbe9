"""The outbox: replies written with the state change, delivered later by the sender."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storage.models import Identity, Outbox

# Replies to someone waiting go before broadcasts and reminders.
PRIORITY_REPLY = 0
PRIORITY_BULK = 10


@dataclass(frozen=True)
class OutboundMessage:
    id: int
    identity_id: int
    channel: str
    external_id: str
    payload: dict[str, Any]
    attempts: int


def enqueue(
    session: Session, identity_id: int, channel: str, payload: dict[str, Any], *,
    priority: int = PRIORITY_REPLY, now: datetime,
) -> int:
    """Queue one message in the caller's transaction."""
    row = Outbox(identity_id=identity_id, channel=channel, payload=payload, priority=priority,
                 next_attempt_at=now, created_at=now)
    session.add(row)
    session.flush()
    return row.id


def claim_due(
    session: Session, channels: list[str], *, now: datetime, limit: int, lease: timedelta,
    identity_id: int | None = None,
) -> list[OutboundMessage]:
    """Take due rows under a lease; a sender that dies leaves them to be retaken later."""
    due = or_(
        (Outbox.status == "pending") & (Outbox.next_attempt_at <= now),
        (Outbox.status == "sending") & (Outbox.lease_until < now),
    )
    query = (
        select(Outbox, Identity.external_id)
        .join(Identity, Identity.id == Outbox.identity_id)
        .where(Outbox.channel.in_(channels), due)
        .order_by(Outbox.priority, Outbox.id)
        .limit(limit)
    )
    if identity_id is not None:
        query = query.where(Outbox.identity_id == identity_id)
    if session.get_bind().dialect.name == "postgresql":
        # Several senders may run at once; each row goes to exactly one of them.
        query = query.with_for_update(skip_locked=True, of=Outbox)
    claimed = []
    for row, external_id in session.execute(query):
        row.status, row.lease_until = "sending", now + lease
        row.attempts += 1
        claimed.append(OutboundMessage(row.id, row.identity_id, row.channel, external_id,
                                       dict(row.payload), row.attempts))
    return claimed


def mark_sent(
    session: Session, outbox_id: int, *, now: datetime, platform_message_id: str | None
) -> None:
    row = session.get_one(Outbox, outbox_id)
    row.status, row.sent_at, row.lease_until = "sent", now, None
    row.platform_message_id, row.last_error = platform_message_id, None


def mark_retry(session: Session, outbox_id: int, *, at: datetime, error: str) -> None:
    row = session.get_one(Outbox, outbox_id)
    row.status, row.next_attempt_at, row.lease_until, row.last_error = "pending", at, None, error


def mark_final(session: Session, outbox_id: int, *, status: str, error: str) -> None:
    """End a row as failed or unreachable, with a reason a person can read."""
    row = session.get_one(Outbox, outbox_id)
    row.status, row.lease_until, row.last_error = status, None, error


def delivered_since(
    session: Session, identity_id: int, after_id: int, *, limit: int = 50
) -> list[tuple[int, dict[str, Any], datetime | None]]:
    """Messages already delivered to a web-chat identity, for its page to show."""
    rows = session.execute(
        select(Outbox.id, Outbox.payload, Outbox.sent_at)
        .where(Outbox.identity_id == identity_id, Outbox.id > after_id, Outbox.status == "sent")
        .order_by(Outbox.id).limit(limit)
    )
    return [(r[0], dict(r[1]), r[2]) for r in rows]


def pending_count(session: Session, identity_id: int) -> int:
    """How many replies are still on their way to one identity."""
    return len(session.scalars(select(Outbox.id).where(
        Outbox.identity_id == identity_id, Outbox.status.in_(["pending", "sending"]))).all())
