"""The outbox: replies written with the state change, delivered later by the sender."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from storage import hotsql
from storage.enums import OutboxStatus
from storage.hotsql import HotStatement
from storage.models import Identity, Outbox, UTCDateTime
from storage.values import MessagePayload, OutboxPayload

# Acknowledgements stop a spinner; replies to someone waiting go before broadcasts.
PRIORITY_ACK = -1
PRIORITY_REPLY = 0
PRIORITY_BULK = 10
NOTIFY_CHANNEL = "duan8_outbox"
# A proactive message the platform's monthly quota has no room for: it waits, like a row
# outside the window, for the member's next message (then it is a free reply).
HELD_QUOTA = OutboxStatus.HELD_QUOTA
# Queued on every message, so on the DBAPI cursor (storage.hotsql says why). The column list
# every new row is written with (also by storage.conversation.save_and_queue).
INSERT_INTO = ("INSERT INTO outbox (identity_id, channel, payload, status, priority, attempts,"
               " next_attempt_at, created_at)")
_ENQUEUE = HotStatement(
    f"{INSERT_INTO}"
    f" VALUES (:identity_id, :channel, :payload, '{OutboxStatus.PENDING}', :priority, 0, :now,"
    " :now)"
    " RETURNING id")


def announce(session: Session) -> None:
    """Wake senders in other processes when this transaction commits (PostgreSQL NOTIFY).

    Inserts need no call: a trigger notifies on every outbox insert (migration 0005). This is
    for rows that become due again without one, such as a retry or a diverted message.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


def refresh_statistics(session: Session) -> None:
    """Let PostgreSQL's planner see a burst of new rows (a broadcast's fan-out) at once.

    With the statistics of a near-empty queue, the planner took 100,000 fresh rows for a
    handful and had each claim sort all of them by priority (70 ms a claim instead of under
    one); autovacuum's ANALYZE comes only later. SQLite plans by its indexes alone.
    """
    if hotsql.is_postgres(session):
        session.execute(text("ANALYZE outbox"))


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
    session: Session, identity_id: int, channel: str, payload: OutboxPayload, *,
    priority: int = PRIORITY_REPLY, now: datetime,
) -> int:
    """Queue one message in the caller's transaction; senders are woken when it commits."""
    (row_id,), = hotsql.fetch(session, _ENQUEUE, {
        "identity_id": identity_id, "channel": channel, "payload": payload,
        "priority": priority, "now": now})
    return int(row_id)


def _claim_sql(postgres: bool, stale: bool, channels: int) -> HotStatement:
    """One statement takes a batch: pick due rows, lease them, return them with their chat.

    With `stale`, rows whose sender's lease ran out are picked too. That walk passes an index
    entry for every row that was ever `sending` and is not yet vacuumed away (8 ms a claim
    after 60,000 sends), and leases only run out when a sender dies, so senders look for them
    every so often, not in every claim. It runs on the DBAPI cursor (storage.hotsql): turning
    200 rows into values through SQLAlchemy's result machinery was about two thirds of a
    claim's CPU, in the thread beside the event loop that sends.
    """
    # Due rows and rows whose sender's lease ran out, each picked on its own so the index
    # on (status, priority, id) yields them in queue order and the walk stops at the limit:
    # with a broadcast's 100,000 rows waiting, one condition with OR sorted them all per claim.
    names = ", ".join(f":c{i}" for i in range(channels))
    picks = []
    for status, when in ((OutboxStatus.PENDING, "next_attempt_at <= :now"),
                         (OutboxStatus.SENDING, "lease_until < :now")):
        pick = (f"SELECT id FROM outbox WHERE status = '{status}' AND {when}"
                f" AND channel IN ({names}) ORDER BY priority, id LIMIT :limit")
        if postgres:
            pick += " FOR UPDATE SKIP LOCKED"  # several senders at once; each row goes to one
        picks.append(pick)
    if stale:
        ctes = f"WITH due AS ({picks[0]}), stale AS ({picks[1]})"
        # One IN over both picks: `IN (due) OR IN (stale)` made PostgreSQL scan the whole
        # table for the UPDATE (13 ms a claim with 100,000 rows queued), this walks the key.
        picked = "SELECT id FROM due UNION ALL SELECT id FROM stale"
    else:
        ctes, picked = f"WITH due AS ({picks[0]})", "SELECT id FROM due"
    return HotStatement(
        f"{ctes} UPDATE outbox SET status = '{OutboxStatus.SENDING}',"
        f" lease_until = :lease_until, attempts = attempts + 1 WHERE id IN ({picked})"
        " RETURNING id, identity_id, channel, payload, attempts, priority,"
        " (SELECT external_id FROM identities WHERE identities.id = outbox.identity_id)"
        " AS external_id,"
        " (SELECT last_inbound_at FROM identities WHERE identities.id = outbox.identity_id)"
        " AS last_inbound_at")


_CLAIMS: dict[tuple[bool, bool, int], HotStatement] = {}


def claim_due(
    session: Session, channels: list[str], *, now: datetime, limit: int, lease: timedelta,
    stale: bool = True,
) -> list[OutboundMessage]:
    """Take due rows under a lease; a sender that dies leaves them to be retaken later (by a
    claim with `stale`)."""
    if not channels:
        return []
    key = (hotsql.is_postgres(session), stale, len(channels))
    statement = _CLAIMS.get(key)
    if statement is None:
        statement = _CLAIMS[key] = _claim_sql(*key)
    params: dict[str, Any] = {"now": now, "limit": limit, "lease_until": now + lease}
    params.update((f"c{i}", channel) for i, channel in enumerate(channels))
    rows = hotsql.fetch(session, statement, params)
    # RETURNING keeps no order: the queue's order is priority, then age.
    rows.sort(key=lambda r: (r[5], r[0]))
    return [OutboundMessage(row_id, identity_id, channel, external_id,
                            dict(hotsql.read_json(payload)), attempts,
                            hotsql.read_time(last_inbound), priority)
            for (row_id, identity_id, channel, payload, attempts, priority, external_id,
                 last_inbound) in rows]


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


_RECORD = text(
    "UPDATE outbox SET status = :status, lease_until = NULL, last_error = :error,"
    " sent_at = COALESCE(:sent_at, sent_at),"
    " platform_message_id = COALESCE(:platform_message_id, platform_message_id),"
    " next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at),"
    " attempts = attempts - :refund"
    " WHERE id = :id"
).bindparams(bindparam("sent_at", type_=UTCDateTime()),
             bindparam("next_attempt_at", type_=UTCDateTime()))
# PostgreSQL: the whole batch in one statement, its columns as arrays joined on the key. An
# executemany of 200 single-row UPDATEs cost about 20 ms a batch, in the thread beside the
# event loop that does the sending; this is one round trip and one plan.
_RECORD_ALL = HotStatement(
    "UPDATE outbox SET status = v.status, lease_until = NULL, last_error = v.error,"
    " sent_at = COALESCE(v.sent_at, outbox.sent_at),"
    " platform_message_id = COALESCE(v.pid, outbox.platform_message_id),"
    " next_attempt_at = COALESCE(v.next_at, outbox.next_attempt_at),"
    " attempts = outbox.attempts - v.refund"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS varchar[]), CAST(:errors AS text[]),"
    " CAST(:sent_at AS timestamptz[]), CAST(:pids AS varchar[]),"
    " CAST(:next_at AS timestamptz[]), CAST(:refunds AS int[]))"
    " AS v(id, status, error, sent_at, pid, next_at, refund)"
    " WHERE outbox.id = v.id")


def record_deliveries(session: Session, deliveries: list[Delivery], *, now: datetime) -> None:
    """Write a batch of outcomes at once; rows given back keep their place."""
    if not deliveries:
        return
    values = [{
        "id": d.outbox_id, "status": d.status, "error": d.error,
        "sent_at": now if d.status == OutboxStatus.SENT else None,
        "platform_message_id": d.platform_message_id if d.status == OutboxStatus.SENT else None,
        "next_attempt_at": d.next_attempt_at, "refund": 1 if d.refund_attempt else 0,
    } for d in deliveries]
    if hotsql.is_postgres(session):
        # psycopg sends each list as one array (hotsql.fetch would send it as JSON), and the
        # casts name the element types; instants are aware UTC, as psycopg wants them.
        cursor = session.connection().connection.cursor()
        cursor.execute(_RECORD_ALL.postgres, {
            "ids": [v["id"] for v in values], "statuses": [v["status"] for v in values],
            "errors": [v["error"] for v in values], "sent_at": [v["sent_at"] for v in values],
            "pids": [v["platform_message_id"] for v in values],
            "next_at": [v["next_attempt_at"] for v in values],
            "refunds": [v["refund"] for v in values]})
        cursor.close()
    else:
        session.connection().execute(_RECORD, values)
    for d in deliveries:
        if d.status == OutboxStatus.UNREACHABLE:
            session.execute(update(Identity).where(Identity.id == d.identity_id)
                            .values(unreachable_reason=(d.error or "unreachable")[:300]))


def mark_sent(
    session: Session, outbox_id: int, *, now: datetime, platform_message_id: str | None
) -> None:
    row = session.get_one(Outbox, outbox_id)
    row.status, row.sent_at, row.lease_until = OutboxStatus.SENT, now, None
    row.platform_message_id, row.last_error = platform_message_id, None


def mark_retry(session: Session, outbox_id: int, *, at: datetime, error: str) -> None:
    row = session.get_one(Outbox, outbox_id)
    (row.status, row.next_attempt_at, row.lease_until,
     row.last_error) = OutboxStatus.PENDING, at, None, error


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
        .where(Outbox.identity_id == identity_id, Outbox.id > after_id,
               Outbox.status == OutboxStatus.SENT)
        .order_by(Outbox.id).limit(limit)
    )
    return [(r[0], dict(r[1]), r[2]) for r in rows]


def sent_since(
    session: Session, identity_id: int, channel: str, since: datetime, *, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    """Rows sent to one identity on one channel after `since`, as (id, payload).

    For a platform's per-conversation quota. One query on the outbox's identity index (no
    ORDER BY, so the planner never prefers a walk of the primary key); the caller counts
    platform messages from the payloads, since a row may have been several messages and an
    acknowledgement none.
    """
    rows = session.execute(
        select(Outbox.id, Outbox.payload)
        .where(Outbox.identity_id == identity_id, Outbox.channel == channel,
               Outbox.status == OutboxStatus.SENT, Outbox.sent_at > since)
        .limit(limit)
    )
    return [(row[0], dict(row[1])) for row in rows]


def pending_count(session: Session, identity_id: int) -> int:
    """How many replies are still on their way to one identity."""
    return len(session.scalars(select(Outbox.id).where(
        Outbox.identity_id == identity_id,
        Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))).all())


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
    payload = cast(MessagePayload, {**row.payload, "tried": sorted(tried)})
    copy = enqueue(session, target.id, target.channel, payload, priority=row.priority, now=now)
    _same_kind(session, copy, row)
    row.status = OutboxStatus.DIVERTED
    row.last_error = f"outside the {row.channel} window; sent by {target.channel} instead"
    return target.channel


def catch_up(session: Session, identity_id: int, header: MessagePayload, *, now: datetime,
             limit: int = 5) -> list[int]:
    """Queue what could not reach this person while they were away, oldest first, capped.

    The header goes first, and only when something is caught up: the conversation that just
    ran may have removed the held rows (an erasure does).
    """
    rows = session.scalars(
        select(Outbox).where(Outbox.identity_id == identity_id,
                             Outbox.status.in_((OutboxStatus.OUTSIDE_WINDOW,
                                                OutboxStatus.HELD_QUOTA)))
        .order_by(Outbox.id).limit(limit)
    ).all()
    if not rows:
        return []
    queued = [enqueue(session, identity_id, rows[0].channel, header, now=now)]
    for row in rows:
        queued.append(enqueue(session, identity_id, row.channel,
                              cast(OutboxPayload, dict(row.payload)),
                              priority=PRIORITY_REPLY, now=now))
        _same_kind(session, queued[-1], row)
        row.status = OutboxStatus.CAUGHT_UP
    return queued


def _same_kind(session: Session, copy_id: int, row: Outbox) -> None:
    """A row's copy on another channel, or caught up later, still belongs to its broadcast."""
    if row.broadcast_id is not None or row.kind != "reply":
        session.execute(update(Outbox).where(Outbox.id == copy_id)
                        .values(kind=row.kind, broadcast_id=row.broadcast_id))


def reconcile_sent(session: Session, sent: dict[int, str | None], *, now: datetime) -> int:
    """Rows a dead sender's journal shows the platform took: sent, never to go again."""
    if not sent:
        return 0
    result = session.connection().execute(
        text("UPDATE outbox SET status = 'sent', sent_at = :now, lease_until = NULL,"
             " platform_message_id = :pid, last_error = NULL"
             " WHERE id = :id AND status IN ('sending', 'pending')")
        .bindparams(bindparam("now", type_=UTCDateTime())),
        [{"id": row_id, "pid": pid, "now": now} for row_id, pid in sent.items()])
    return int(result.rowcount or 0)
