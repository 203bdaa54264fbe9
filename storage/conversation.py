"""Inbound dedupe, identities and conversation state: what the dispatcher reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from handlers.types import Choice, IdentityView, MemberView, PlanView, State
from storage.models import (
    ActivityType,
    Identity,
    Member,
    Team,
    Topic,
    UTCDateTime,
    utcnow,
)
from storage.plans import current_plan

# Every message runs these; plain SQL (the same on SQLite and PostgreSQL) spares building and
# caching an expression tree per call, which profiling showed to be most of a webhook's time.
_NOW = bindparam("now", type_=UTCDateTime())
_DRAFT = bindparam("draft", type_=JSON())
_CLAIM = text(
    "INSERT INTO inbound_events (channel, event_id, received_at) VALUES (:channel, :event_id, :now)"
    " ON CONFLICT (channel, event_id) DO NOTHING RETURNING id"
).bindparams(_NOW)
_LINK = text("UPDATE inbound_events SET identity_id = :identity_id WHERE id = :id")
_UPSERT_IDENTITY = text(
    "INSERT INTO identities (channel, external_id, locale, consent, created_at, last_inbound_at)"
    " VALUES (:channel, :external_id, :locale, 'pending', :now, :now)"
    " ON CONFLICT (channel, external_id)"
    " DO UPDATE SET last_inbound_at = :now, unreachable_reason = NULL"
    " RETURNING id, member_id, consent, locale"
).bindparams(_NOW)
_STATE_SQL = "SELECT flow, step, draft, updated_at FROM conversation_states WHERE identity_id = :id"
_STATE = text(_STATE_SQL).columns(flow=String(), step=String(), draft=JSON(),
                                   updated_at=UTCDateTime())
_STATE_LOCK = text(_STATE_SQL + " FOR UPDATE").columns(flow=String(), step=String(), draft=JSON(),
                                                       updated_at=UTCDateTime())
_STATE_CREATE = text(
    "INSERT INTO conversation_states (identity_id, flow, step, draft, updated_at)"
    " VALUES (:id, '', '', :draft, :now)"
    " ON CONFLICT (identity_id) DO NOTHING RETURNING identity_id"
).bindparams(_DRAFT, _NOW)
_STATE_SAVE = text(
    "UPDATE conversation_states SET flow = :flow, step = :step, draft = :draft, updated_at = :now"
    " WHERE identity_id = :id"
).bindparams(_DRAFT, _NOW)


def _insert(session: Session, model: type) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT on both SQLite and PostgreSQL."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def claim_inbound(session: Session, channel: str, event_id: str) -> int | None:
    """Record an event once; None means it was seen before and must not be handled again."""
    return session.execute(_CLAIM, {"channel": channel, "event_id": event_id[:191],
                                    "now": utcnow()}).scalar_one_or_none()


def link_inbound(session: Session, inbound_id: int, identity_id: int) -> None:
    """Remember whose event it was (for erasure and audits)."""
    session.execute(_LINK, {"id": inbound_id, "identity_id": identity_id})


@dataclass(frozen=True)
class IdentityRow:
    id: int
    member_id: int | None
    consent: str
    locale: str


def upsert_identity(
    session: Session, channel: str, external_id: str, locale: str, now: datetime
) -> IdentityRow:
    """The identity of a platform user, noting this message's time, in one statement.

    Only the platform's id is kept before consent; the last message time is what platforms'
    reply windows count from, and a message proves the person reachable again.
    """
    row = session.execute(_UPSERT_IDENTITY, {"channel": channel, "external_id": external_id,
                                             "locale": locale, "now": now}).one()
    return IdentityRow(row.id, row.member_id, row.consent, row.locale)


def get_or_create_identity(
    session: Session, channel: str, external_id: str, locale: str, now: datetime
) -> int:
    """The identity of a platform user, created if new (without noting a message)."""
    stmt = (
        _insert(session, Identity)
        .values(channel=channel, external_id=external_id, locale=locale, consent="pending",
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


def load_state(session: Session, identity_id: int) -> State:
    """The saved state, locked for this transaction so two messages from one person queue."""
    postgres = session.get_bind().dialect.name == "postgresql"
    query = _STATE_LOCK if postgres else _STATE
    row = session.execute(query, {"id": identity_id}).first()
    if row is None:
        created = session.execute(_STATE_CREATE, {"id": identity_id, "draft": {},
                                                  "now": utcnow()}).first()
        if created is not None:
            return State()  # a new row is ours (and locked) until this transaction ends
        row = session.execute(query, {"id": identity_id}).one()  # a concurrent message made it
    return State(flow=row.flow, step=row.step, draft=dict(row.draft or {}),
                 updated_at=row.updated_at)


def save_state(session: Session, identity_id: int, state: State, now: datetime) -> None:
    """Write the state back; the draft is replaced whole, so JSON changes are never missed."""
    session.execute(_STATE_SAVE, {"id": identity_id, "flow": state.flow, "step": state.step,
                                  "draft": dict(state.draft), "now": now})


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


def identity_channel(session: Session, identity_id: int) -> str:
    """The platform an identity belongs to."""
    return session.get_one(Identity, identity_id).channel
