"""Inbound dedupe, identities and conversation state: what the dispatcher reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage import hotsql, outbox
from storage.enums import Consent, OutboxStatus
from storage.hotsql import HotStatement
from storage.models import (
    ActivityType,
    Identity,
    Member,
    Team,
    Topic,
    utcnow,
)
from storage.plans import current_plan
from storage.values import Choice, IdentityView, MemberView, OutboxPayload, PlanView, State

# Every message runs these, on the transaction's DBAPI cursor (storage.hotsql says why). On
# SQLite a message costs three statements: the identity upsert (which also locks the person's
# row, so two messages from one person queue), the event claim that reads the state back, and
# the state upsert with the replies. PostgreSQL folds the first two into one (_ENTER_PG) and the
# last into one CTE (_save_and_queue_sql).
_CLAIM = HotStatement(
    "INSERT INTO inbound_events (channel, event_id, received_at) VALUES (:channel, :event_id, :now)"
    " ON CONFLICT (channel, event_id) DO NOTHING RETURNING id")
# The subqueries run in the claim's own snapshot, taken after the identity upsert got the row
# lock: on PostgreSQL (READ COMMITTED) they see what an earlier message from the same person
# committed; on SQLite BEGIN IMMEDIATE already serialises writers.
_CLAIM_FOR = HotStatement(
    "INSERT INTO inbound_events (channel, event_id, received_at, identity_id)"
    " VALUES (:channel, :event_id, :now, :identity_id)"
    " ON CONFLICT (channel, event_id) DO NOTHING"
    " RETURNING id,"
    " (SELECT flow FROM conversation_states WHERE identity_id = :identity_id) AS flow,"
    " (SELECT step FROM conversation_states WHERE identity_id = :identity_id) AS step,"
    " (SELECT draft FROM conversation_states WHERE identity_id = :identity_id) AS draft,"
    " (SELECT updated_at FROM conversation_states WHERE identity_id = :identity_id) AS updated_at,"
    " EXISTS (SELECT 1 FROM outbox WHERE outbox.identity_id = :identity_id"
    f" AND outbox.status IN ('{OutboxStatus.OUTSIDE_WINDOW}',"
    f" '{OutboxStatus.HELD_QUOTA}')) AS held")
_UPSERT_IDENTITY = HotStatement(
    "INSERT INTO identities (channel, external_id, locale, consent, created_at, last_inbound_at)"
    f" VALUES (:channel, :external_id, :locale, '{Consent.PENDING}', :now, :now)"
    " ON CONFLICT (channel, external_id)"
    " DO UPDATE SET last_inbound_at = :now, unreachable_reason = NULL"
    " RETURNING id, member_id, consent, locale")
_STATE_UPSERT = (
    "INSERT INTO conversation_states (identity_id, flow, step, draft, updated_at)"
    " VALUES (:id, :flow, :step, :draft, :now)"
    " ON CONFLICT (identity_id) DO UPDATE SET flow = excluded.flow, step = excluded.step,"
    " draft = excluded.draft, updated_at = excluded.updated_at"
)
_STATE_SAVE = HotStatement(_STATE_UPSERT)


def _insert(session: Session, model: type) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ON CONFLICT on both SQLite and PostgreSQL."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def claim_inbound(session: Session, channel: str, event_id: str) -> int | None:
    """Record an event once; None means it was seen before and must not be handled again."""
    rows = hotsql.fetch(session, _CLAIM, {"channel": channel, "event_id": event_id[:191],
                                          "now": utcnow()})
    return int(rows[0][0]) if rows else None


@dataclass(frozen=True)
class IdentityRow:
    id: int
    member_id: int | None
    consent: str
    locale: str


@dataclass(frozen=True)
class Claimed:
    """A new event of a known person, with what their conversation needs to go on."""

    inbound_id: int
    state: State
    held_back: bool  # messages a platform's window kept from them wait for this one


# PostgreSQL: the identity upsert, the event claim and the state read in one round trip. A CTE
# reads in the snapshot its statement began with, which is older than the identity's row lock
# it may wait for; so the state is not read but upserted as a no-op (ON CONFLICT DO UPDATE
# works on, and RETURNING gives, the latest committed row, even one inserted after that
# snapshot). It is skipped for a retried event. `xmax = 0` tells a row this statement
# created, which is "no state yet".
_ENTER_PG = HotStatement(
    "WITH ident AS ("
    "INSERT INTO identities (channel, external_id, locale, consent, created_at, last_inbound_at)"
    f" VALUES (:channel, :external_id, :locale, '{Consent.PENDING}', :now, :now)"
    " ON CONFLICT (channel, external_id)"
    " DO UPDATE SET last_inbound_at = :now, unreachable_reason = NULL"
    " RETURNING id, member_id, consent, locale),"
    " event AS (INSERT INTO inbound_events (channel, event_id, received_at, identity_id)"
    " SELECT :channel, :event_id, :now, id FROM ident"
    " ON CONFLICT (channel, event_id) DO NOTHING RETURNING id),"
    " state AS (INSERT INTO conversation_states (identity_id, flow, step, draft, updated_at)"
    " SELECT id, '', '', '{}', :now FROM ident WHERE EXISTS (SELECT 1 FROM event)"
    " ON CONFLICT (identity_id) DO UPDATE SET identity_id = excluded.identity_id"
    " RETURNING flow, step, draft, updated_at, xmax = 0 AS created)"
    " SELECT ident.id, ident.member_id, ident.consent, ident.locale, event.id AS inbound_id,"
    " state.flow, state.step, state.draft, state.updated_at, state.created,"
    " EXISTS (SELECT 1 FROM outbox WHERE outbox.identity_id = ident.id"
    f" AND outbox.status IN ('{OutboxStatus.OUTSIDE_WINDOW}', '{OutboxStatus.HELD_QUOTA}')) AS held"
    " FROM ident LEFT JOIN event ON true LEFT JOIN state ON true"
)


def enter(session: Session, channel: str, external_id: str, event_id: str, locale: str,
          now: datetime) -> tuple[IdentityRow, Claimed | None]:
    """A message's way in: the person (locked, so their messages queue), the event recorded
    once (None for a retry already seen) and their conversation state as last committed."""
    if session.get_bind().dialect.name != "postgresql":
        identity = upsert_identity(session, channel, external_id, locale, now)
        return identity, claim_for(session, channel, event_id, identity.id, now)
    (ident, member_id, consent, known_locale, inbound_id, flow, step, draft, updated_at,
     created, held), = hotsql.fetch(session, _ENTER_PG, {
        "channel": channel, "external_id": external_id, "event_id": event_id[:191],
        "locale": locale, "now": now})
    identity = IdentityRow(ident, member_id, consent, known_locale)
    if inbound_id is None:
        return identity, None
    state = State() if created else _state(flow, step, draft, updated_at)
    return identity, Claimed(inbound_id=inbound_id, state=state, held_back=bool(held))


def _state(flow: str, step: str, draft: Any, updated_at: Any) -> State:
    """A conversation_states row as the conversation's State."""
    return State(flow=flow, step=step, draft=dict(hotsql.read_json(draft) or {}),
                 updated_at=hotsql.read_time(updated_at))


def claim_for(session: Session, channel: str, event_id: str, identity_id: int,
              now: datetime) -> Claimed | None:
    """Record a person's event once and read their state; None means a retry already seen.

    Call it after upsert_identity in the same transaction: that statement's row lock is what
    makes the state read here the latest one.
    """
    rows = hotsql.fetch(session, _CLAIM_FOR, {
        "channel": channel, "event_id": event_id[:191], "now": now,
        "identity_id": identity_id})
    if not rows:
        return None
    inbound_id, flow, step, draft, updated_at, held = rows[0]
    state = State() if flow is None else _state(flow, step, draft, updated_at)
    return Claimed(inbound_id=inbound_id, state=state, held_back=bool(held))


def upsert_identity(
    session: Session, channel: str, external_id: str, locale: str, now: datetime
) -> IdentityRow:
    """The identity of a platform user, noting this message's time, in one statement.

    Only the platform's id is kept before consent; the last message time is what platforms'
    reply windows count from, and a message proves the person reachable again.
    """
    (ident, member_id, consent, known_locale), = hotsql.fetch(session, _UPSERT_IDENTITY, {
        "channel": channel, "external_id": external_id, "locale": locale, "now": now})
    return IdentityRow(ident, member_id, consent, known_locale)


def get_or_create_identity(
    session: Session, channel: str, external_id: str, locale: str, now: datetime
) -> int:
    """The identity of a platform user, created if new (without noting a message)."""
    stmt = (
        _insert(session, Identity)
        .values(channel=channel, external_id=external_id, locale=locale, consent=Consent.PENDING,
                created_at=now)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
    )
    session.execute(stmt)
    identity_id = session.scalar(select(Identity.id).where(
        Identity.channel == channel, Identity.external_id == external_id))
    assert identity_id is not None
    return identity_id


def identity_view(session: Session, identity_id: int) -> IdentityView:
    """What a conversation needs to know about the person writing."""
    identity = session.get_one(Identity, identity_id)
    return view_of(session, IdentityRow(identity.id, identity.member_id, identity.consent,
                                        identity.locale), identity.channel)


def view_of(session: Session, identity: IdentityRow, channel: str) -> IdentityView:
    """The conversation's view of an identity row, with its member when it has one."""
    member = None
    if identity.member_id is not None:
        row = session.execute(
            select(Member, Team).outerjoin(Team, Team.id == Member.team_id)
            .where(Member.id == identity.member_id)
        ).one()
        m, team = row
        if m.erased_at is None:
            member = MemberView(id=m.id, name=m.display_name, role=m.role, team_id=m.team_id,
                                team_name=team.name if team else "",
                                team_area_id=team.area_id if team else None, locale=m.locale)
    return IdentityView(id=identity.id, channel=channel, consent=identity.consent,
                        locale=identity.locale, member=member)


def save_state(session: Session, identity_id: int, state: State, now: datetime) -> None:
    """Write the state back; the draft is replaced whole, so JSON changes are never missed."""
    hotsql.fetch(session, _STATE_SAVE, {
        "id": identity_id, "flow": state.flow, "step": state.step, "draft": dict(state.draft),
        "now": now})


@lru_cache(maxsize=8)
def _save_and_queue_sql(count: int) -> HotStatement:
    """PostgreSQL: the state upsert rides along with the replies' insert (a data-modifying CTE)."""
    rows = ", ".join(f"(:id, :channel, :p{i}, '{OutboxStatus.PENDING}', :r{i}, 0, :now, :now)"
                     for i in range(count))
    return HotStatement(
        f"WITH saved AS ({_STATE_UPSERT}) {outbox.INSERT_INTO} VALUES {rows} RETURNING id")


def save_and_queue(session: Session, identity_id: int, channel: str, state: State,
                   messages: list[tuple[OutboxPayload, int]], now: datetime) -> list[int]:
    """Write the state back and queue (payload, priority) messages; one round trip on PostgreSQL.

    Senders are woken by the outbox trigger when the transaction commits.
    """
    if not messages or session.get_bind().dialect.name != "postgresql":
        save_state(session, identity_id, state, now)
        return [outbox.enqueue(session, identity_id, channel, payload, priority=priority,
                               now=now) for payload, priority in messages]
    params: dict[str, Any] = {"id": identity_id, "channel": channel, "flow": state.flow,
                              "step": state.step, "draft": dict(state.draft), "now": now}
    for index, (payload, priority) in enumerate(messages):
        params[f"p{index}"] = payload
        params[f"r{index}"] = priority
    rows = hotsql.fetch(session, _save_and_queue_sql(len(messages)), params)
    # ids follow the VALUES order; RETURNING promises no order.
    return sorted(row[0] for row in rows)


def plan_view(session: Session) -> PlanView:
    """The choices a report offers, from the loaded plan."""
    plan = current_plan(session)
    if plan is None:
        raise LookupError("no plan is loaded")
    types = session.scalars(select(ActivityType).where(
        ActivityType.plan_id == plan.id, ActivityType.active.is_(True))
        .order_by(ActivityType.position))
    topics = session.scalars(select(Topic).where(
        Topic.plan_id == plan.id, Topic.active.is_(True)).order_by(Topic.position))
    return PlanView(
        phase_start=plan.phase_start,
        phase_end=plan.phase_end,
        activity_types=tuple(Choice(t.id, t.code, t.name, tuple(t.keywords)) for t in types),
        topics=tuple(Choice(t.id, t.code, t.name) for t in topics),
    )


def get_identity_id(session: Session, channel: str, external_id: str) -> int | None:
    """An existing identity's id, without creating one."""
    return session.scalar(select(Identity.id).where(
        Identity.channel == channel, Identity.external_id == external_id))


def mark_unreachable(session: Session, channel: str, external_id: str, reason: str) -> None:
    """Remember that a platform refuses messages to this person, until they write again."""
    identity = session.scalar(select(Identity).where(
        Identity.channel == channel, Identity.external_id == external_id))
    if identity is not None:
        identity.unreachable_reason = reason[:300]
