"""Members as officers manage them on the web: one member's channels, and deactivation.

Every function takes the reader's `Scope` and finds the member through their team's area in the
query itself, so a member of another area is not found (the page answers 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from storage import delivery
from storage.admin_views import Scope
from storage.models import Area, AuditLog, Identity, Member, Outbox, Report, Team

# The period `duan8 outbox status` looks at by default.
TROUBLE_PERIOD = timedelta(days=7)


@dataclass(frozen=True)
class ChannelState:
    """One linked chat of a member and whether a message can reach it now."""

    identity_id: int
    channel: str
    consent: str
    linked_at: datetime
    last_inbound_at: datetime | None
    last_sent_at: datetime | None
    unreachable_reason: str | None
    held: int  # in the last TROUBLE_PERIOD: waiting for the platform's window
    failed: int
    unreachable: int
    last_error: str | None

    @property
    def reachable(self) -> bool:
        return self.consent == "given" and self.unreachable_reason is None


@dataclass(frozen=True)
class MemberCard:
    id: int
    name: str
    role: str
    team: str
    team_code: str
    area: str
    created_at: datetime
    deactivated_at: datetime | None
    reports: int
    channels: tuple[ChannelState, ...]


def _member_in_scope(scope: Scope, member_id: int) -> Select[Member, str, str, str]:
    areas = scope.areas()
    query = (select(Member, Team.name, Team.code, Area.name)
             .join(Team, Team.id == Member.team_id).join(Area, Area.id == Team.area_id)
             .where(Member.id == member_id, Member.erased_at.is_(None)))
    return query if areas is None else query.where(Team.area_id.in_(areas))


def member_card(session: Session, scope: Scope, member_id: int, *,
                now: datetime) -> MemberCard | None:
    """A member in the reader's area with each linked channel's state, or None."""
    found = session.execute(_member_in_scope(scope, member_id)).first()
    if found is None:
        return None
    member, team, team_code, area = found
    # What `duan8 outbox status` says about this member's channels, over the same period.
    summary = delivery.delivery_summary(session, now=now, since=now - TROUBLE_PERIOD,
                                        member_id=member.id)
    trouble = {c.identity_id: c for m in summary.members for c in m.channels}
    last_sent = dict(session.execute(
        select(Outbox.identity_id, func.max(Outbox.sent_at))
        .join(Identity, Identity.id == Outbox.identity_id)
        .where(Identity.member_id == member.id, Outbox.status == "sent")
        .group_by(Outbox.identity_id)).all())
    channels = []
    for ident in session.scalars(select(Identity).where(Identity.member_id == member.id)
                                 .order_by(Identity.last_inbound_at.desc().nulls_last(),
                                           Identity.id)):
        problem = trouble.get(ident.id)
        channels.append(ChannelState(
            ident.id, ident.channel, ident.consent, ident.created_at, ident.last_inbound_at,
            last_sent.get(ident.id), ident.unreachable_reason,
            problem.held if problem else 0, problem.failed if problem else 0,
            problem.unreachable if problem else 0,
            problem.oldest_problem_error if problem else None))
    reports = session.scalar(select(func.count(Report.id)).where(
        Report.member_id == member.id)) or 0
    return MemberCard(member.id, member.display_name, member.role, team, team_code, area,
                      member.created_at, member.deactivated_at, int(reports), tuple(channels))


def set_member_active(session: Session, scope: Scope, member_id: int, *, active: bool,
                      actor: str, now: datetime) -> bool | None:
    """Deactivate (or reactivate) a member of the reader's area; None when not found there,
    False when nothing changed. Audited in the same transaction."""
    found = session.execute(_member_in_scope(scope, member_id)).first()
    if found is None:
        return None
    member = found[0]
    if (member.deactivated_at is None) == active:
        return False
    member.deactivated_at = None if active else now
    session.add(AuditLog(actor=actor[:120], at=now,
                         action="member.activate" if active else "member.deactivate",
                         object_type="member", object_id=str(member_id), detail={}))
    return True
