"""The outbox: replies written with the state change, delivered later by the sender."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from storage.models import Identity, Outbox, UTCDateTime

# Acknowledgements stop a spinner; replies to someone waiting go before broadcasts.
PRIORITY_ACK = -1
PRIORITY_REPLY = 0
PRIORITY_BULK = 10
NOTIFY_CHANNEL = "duan8_outbox"
# Queued on every message: plain SQL spares an expression tree per call (see conversation.py).
_ENQUEUE = text(
    "INSERT INTO outbox (identity_id, channel, payload, status, priority, attempts,"
    " next_attempt_at, created_at)"
    " VALUES (:identity_id, :channel, :payload, 'pending', :priority, 0, :now, :now)"
    " RETURNING id"
).bindparams(bindparam("payload", type_=JSON()), bindparam("now", type_=UTCDateTime()))


def announce(session: Session) -> None:
    """Wake senders in other processes when this transaction commits (PostgreSQL NOTIFY).

    Inserts need no call: a trigger notifies on every outbox insert (migration 0005). This is
    for rows that become due again without one, such as a retry or a diverted message.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


@dataclass(frozen=True)
class OutboundMessage:
    id: int
    identity_id: int
    channel: str
    external_id: str
    payload: dict[str, Any]
    attempts: int
    last_inbound_at: datetime | None = None  # platforms' reply windows count from it
    priority: int = PRIORITY_REPLY


def enqueue(
    session: Session, identity_id: int, channel: str, payload: dict[str, Any], *,
    priority: int = PRIORITY_REPLY, now: datetime,
) -> int:
    """Queue one message in the caller's transaction; senders are woken when it commits."""
    return session.connection().execute(_ENQUEUE, {
        "identity_id": identity_id, "channel": channel, "payload": payload,
        "priority": priority, "now": now}).scalar_one()


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
        select(Outbox, Identity.external_id, Identity.last_inbound_at)
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
    for row, external_id, last_inbound_at in session.execute(query):
        row.status, row.lease_until = "sending", now + lease
        row.attempts += 1
        claimed.append(OutboundMessage(row.id, row.identity_id, row.channel, external_id,
                                       dict(row.payload), row.attempts, last_inbound_at,
                                       row.priority))
    return claimed


@dataclass(frozen=True)
class Delivery:
    """How one claimed row ended this round, written back in one batch."""

    outbox_id: int
    status: str  # sent | pending | failed | unreachable
    identity_id: int
    platform_message_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    refund_attempt: bool = False  # given back unsent (pacing), so not counted as a try


def record_deliveries(session: Session, deliveries: list[Delivery], *, now: datetime) -> None:
    """Write a batch of outcomes; rows given back keep their place in the queue."""
    if not deliveries:
        return
    rows = []
    for d in deliveries:
        values: dict[str, Any] = {"id": d.outbox_id, "status": d.status, "lease_until": None,
                                  "last_error": d.error}
        if d.status == "sent":
            values.update(sent_at=now, platform_message_id=d.platform_message_id)
        if d.next_attempt_at is not None:
            values["next_attempt_at"] = d.next_attempt_at
        rows.append(values)
    session.execute(update(Outbox), rows)
    refunds = [d.outbox_id for d in deliveries if d.refund_attempt]
    if refunds:
        session.execute(update(Outbox).where(Outbox.id.in_(refunds))
                        .values(attempts=Outbox.attempts - 1))
    for d in deliveries:
        if d.status == "unreachable":
            session.execute(update(Identity).where(Identity.id == d.identity_id)
                            .values(unreachable_reason=(d.error or "unreachable")[:300]))


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


def divert(session: Session, outbox_id: int, *, now: datetime) -> str | None:
    """A row the platform's window refuses goes to the member's next linked channel.

    Returns the channel it went to, or None when no other channel can take it: the row then
    stays `outside_window`, counted as unreachable for now, and waits for the member's next
    message (see `catch_up`).
    """
    row = session.get_one(Outbox, outbox_id)
    tried = set(row.payload.get("tried", [])) | {row.channel}
    member_id = session.scalar(select(Identity.member_id).where(Identity.id == row.identity_id))
    if member_id is None:
        return None
    other = session.scalars(
        select(Identity).where(Identity.member_id == member_id, Identity.id != row.identity_id,
                               Identity.consent == "given",
                               Identity.unreachable_reason.is_(None))
        .order_by(Identity.last_inbound_at.desc().nulls_last(), Identity.id)
    ).all()
    target = next((i for i in other if i.channel not in tried), None)
    if target is None:
        return None
    payload = {**row.payload, "tried": sorted(tried)}
    enqueue(session, target.id, target.channel, payload, priority=row.priority, now=now)
    row.status, row.last_error = "diverted", f"outside the {row.channel} window; sent by " \
        f"{target.channel} instead"
    return target.channel


def catch_up(session: Session, identity_id: int, header: dict[str, Any], *, now: datetime,
             limit: int = 5) -> list[int]:
    """Queue what could not reach this person while they were away, oldest first, capped.

    The header goes first, and only when something is caught up: the conversation that just
    ran may have removed the held rows (an erasure does).
    """
    rows = session.scalars(
        select(Outbox).where(Outbox.identity_id == identity_id,
                             Outbox.status == "outside_window")
        .order_by(Outbox.id).limit(limit)
    ).all()
    if not rows:
        return []
    queued = [enqueue(session, identity_id, rows[0].channel, header, now=now)]
    for row in rows:
        queued.append(enqueue(session, identity_id, row.channel, dict(row.payload),
                              priority=PRIORITY_REPLY, now=now))
        row.status = "caught_up"
    return queued
