"""Inbound dedupe, identities and conversation state: what the dispatcher reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from handlers.types import Choice, IdentityView, MemberView, PlanView, State
from storage.models import (
    ActivityType,
    ConversationState,
    Identity,
    InboundEvent,
    Member,
    Team,
    Topic,
)
from storage.plans import current_plan


def _insert(session: Session, model: type) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT on both SQLite and PostgreSQL."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def claim_inbound(session: Session, channel: str, event_id: str) -> int | None:
    """Record an event once; None means it was seen before and must not be handled again."""
    stmt = (
        _insert(session, InboundEvent)
        .values(channel=channel, event_id=event_id[:191])
        .on_conflict_do_nothing(index_elements=["channel", "event_id"])
        .returning(InboundEvent.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def link_inbound(session: Session, inbound_id: int, identity_id: int) -> None:
    """Remember whose event it was (for erasure and audits)."""
    event = session.get(InboundEvent, inbound_id)
    if event is not None:
        event.identity_id = identity_id


def get_or_create_identity(
    session: Session, channel: str, external_id: str, locale: str, now: datetime
) -> int:
    """The identity of a platform user; only the platform's id is kept before consent."""
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


def touch_identity(session: Session, identity_id: int, now: datetime) -> None:
    """Note the last message time: platforms' reply windows are counted from it."""
    identity = session.get(Identity, identity_id)
    if identity is not None:
        identity.last_inbound_at = now
        identity.unreachable_reason = None


def identity_view(session: Session, identity_id: int) -> IdentityView:
    """What a conversation needs to know about the person writing."""
    identity = session.get_one(Identity, identity_id)
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
    return IdentityView(id=identity.id, channel=identity.channel, consent=identity.consent,
                        locale=identity.locale, member=member)


def load_state(session: Session, identity_id: int) -> State:
    """The saved state, locked for this transaction so two messages from one person queue."""
    query = select(ConversationState).where(ConversationState.identity_id == identity_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        session.execute(
            _insert(session, ConversationState)
            .values(identity_id=identity_id, flow="", step="", draft={})
            .on_conflict_do_nothing(index_elements=["identity_id"])
        )
        row = session.scalar(query)
        assert row is not None
    return State(flow=row.flow, step=row.step, draft=dict(row.draft or {}),
                 updated_at=row.updated_at)


def save_state(session: Session, identity_id: int, state: State, now: datetime) -> None:
    """Write the state back; the draft is replaced whole, so JSON changes are never missed."""
    row = session.get_one(ConversationState, identity_id)
    row.flow, row.step, row.draft, row.updated_at = state.flow, state.step, dict(state.draft), now


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
