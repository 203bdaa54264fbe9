"""Who the outbox could not reach, and why, so province staff can follow up in person.

Read-only. A member is "not reached" when, in the period, a message to one of their channels
was held back by the platform's window (`outside_window`: waiting for their next message),
failed, or found the channel unreachable; or when one of their channels is marked unreachable
now (they blocked the bot). A `diverted` row is not a problem: its copy went to the member's
next linked channel and is judged there, so a member reached that way is not listed. Nor is a
`caught_up` row, which went out once the member wrote again.

People with no member behind their channel (never joined, or erased: erasing unlinks every
channel) are only counted, never listed: there is nobody to name or call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from storage.enums import OutboxStatus
from storage.models import Area, Identity, Member, Outbox, Team, utcnow

DEFAULT_PERIOD = timedelta(days=7)
# Row statuses that mean "did not reach the person", under the name the summary counts them by.
PROBLEMS = {OutboxStatus.OUTSIDE_WINDOW: "held", OutboxStatus.FAILED: "failed",
            OutboxStatus.UNREACHABLE: "unreachable"}


@dataclass(frozen=True)
class StatusCount:
    channel: str
    status: str
    count: int


@dataclass(frozen=True)
class ChannelTrouble:
    """One channel of a member and what went wrong on it in the period."""

    identity_id: int
    channel: str
    marked_unreachable: bool
    unreachable_reason: str | None
    # When the first message since they last wrote found the channel unreachable; None when
    # only the platform said so (a block event leaves no outbox row to date it by).
    unreachable_since: datetime | None
    held: int
    failed: int
    unreachable: int
    oldest_problem_at: datetime | None  # when the oldest such message was queued
    oldest_problem_error: str | None
    newest_problem_at: datetime | None
    last_inbound_at: datetime | None
    last_sent_at: datetime | None


@dataclass(frozen=True)
class UnreachedMember:
    member_id: int
    name: str  # empty once the member's data was erased
    erased: bool
    role: str
    team_code: str | None
    team_name: str | None
    area_code: str | None
    village: str | None
    commune: str | None  # the village's parent, whatever level the plan gives it
    last_delivered_at: datetime | None  # on any of their channels, at any time
    channels: list[ChannelTrouble]

    @property
    def newest_problem_at(self) -> datetime | None:
        times = [c.newest_problem_at or c.unreachable_since for c in self.channels]
        return max((t for t in times if t is not None), default=None)


@dataclass(frozen=True)
class DeliverySummary:
    since: datetime
    until: datetime
    channel: str | None
    area_code: str | None
    counts: list[StatusCount]
    members: list[UnreachedMember]  # newest problem first
    unlinked_identities: int  # channels with problems but no member: never joined, or erased


def delivery_summary(
    session: Session, *, now: datetime | None = None, since: datetime | None = None,
    channel: str | None = None, area_code: str | None = None, member_id: int | None = None,
) -> DeliverySummary:
    """Outbox counts and the members not reached, over messages queued since `since`;
    `member_id` narrows both to one member's channels (the admin web's member page)."""
    until = now or utcnow()
    start = since or until - DEFAULT_PERIOD
    areas = _subtree(session, area_code) if area_code else None
    return DeliverySummary(
        since=start, until=until, channel=channel, area_code=area_code,
        counts=_counts(session, start, channel, areas, member_id),
        members=_unreached(session, start, channel, areas, member_id),
        unlinked_identities=(_unlinked(session, start, channel)
                             if areas is None and member_id is None else 0),
    )


def _subtree(session: Session, area_code: str) -> Select[int]:
    """The ids of an area and everything under it, however deep the plan's tree is."""
    if session.scalar(select(Area.id).where(Area.code == area_code)) is None:
        raise LookupError(f"no area with code {area_code!r}")
    tree = select(Area.id).where(Area.code == area_code).cte("subtree", recursive=True)
    tree = tree.union_all(select(Area.id).join(tree, Area.parent_id == tree.c.id))
    return select(tree.c.id)


def _in_areas(areas: Select[int]) -> Select[int]:
    """Identities of members whose team lives in the given areas."""
    return (select(Identity.id).join(Member, Member.id == Identity.member_id)
            .join(Team, Team.id == Member.team_id).where(Team.area_id.in_(areas)))


def _counts(session: Session, since: datetime, channel: str | None,
            areas: Select[int] | None, member_id: int | None = None) -> list[StatusCount]:
    query = (select(Outbox.channel, Outbox.status, func.count())
             .where(Outbox.created_at >= since)
             .group_by(Outbox.channel, Outbox.status).order_by(Outbox.channel, Outbox.status))
    if channel:
        query = query.where(Outbox.channel == channel)
    if areas is not None:
        query = query.where(Outbox.identity_id.in_(_in_areas(areas)))
    if member_id is not None:
        query = query.where(Outbox.identity_id.in_(
            select(Identity.id).where(Identity.member_id == member_id)))
    return [StatusCount(c, s, n) for c, s, n in session.execute(query)]


def _problem_rows(since: datetime, channel: str | None) -> ColumnElement[bool]:
    """The filter every problem query shares, kept in one place so they cannot disagree."""
    condition = and_(Outbox.status.in_(PROBLEMS), Outbox.created_at >= since)
    return and_(condition, Outbox.channel == channel) if channel else condition


def _unlinked(session: Session, since: datetime, channel: str | None) -> int:
    return session.scalar(
        select(func.count(func.distinct(Outbox.identity_id)))
        .join(Identity, Identity.id == Outbox.identity_id)
        .where(_problem_rows(since, channel), Identity.member_id.is_(None))) or 0


def _unreached(session: Session, since: datetime, channel: str | None,
               areas: Select[int] | None, member_id: int | None = None
               ) -> list[UnreachedMember]:
    problems = _problem_rows(since, channel)

    def tally(status: str) -> Any:
        return func.sum(case((Outbox.status == status, 1), else_=0))

    agg = (select(Outbox.identity_id.label("identity_id"),
                  tally("outside_window").label("held"), tally("failed").label("failed"),
                  tally("unreachable").label("unreachable"),
                  func.min(Outbox.created_at).label("oldest"),
                  func.max(Outbox.created_at).label("newest"))
           .where(problems).group_by(Outbox.identity_id).subquery())
    ranked = (select(Outbox.identity_id, Outbox.last_error,
                     func.row_number().over(partition_by=Outbox.identity_id,
                                            order_by=(Outbox.created_at, Outbox.id)).label("rn"))
              .where(problems).subquery())
    oldest = select(ranked.c.identity_id, ranked.c.last_error).where(ranked.c.rn == 1).subquery()

    blocked_row, sent_row, any_sent = aliased(Outbox), aliased(Outbox), aliased(Outbox)
    mine = aliased(Identity)
    # The reason is cleared whenever the person writes, so the block began after that.
    unreachable_since = (select(func.min(blocked_row.created_at)).where(
        blocked_row.identity_id == Identity.id, blocked_row.status == OutboxStatus.UNREACHABLE,
        or_(Identity.last_inbound_at.is_(None),
            blocked_row.created_at >= Identity.last_inbound_at)).scalar_subquery())
    last_sent = (select(func.max(sent_row.sent_at)).where(
        sent_row.identity_id == Identity.id, sent_row.status == OutboxStatus.SENT,
    ).scalar_subquery())
    last_delivered = (select(func.max(any_sent.sent_at))
                      .join(mine, mine.id == any_sent.identity_id)
                      .where(mine.member_id == Identity.member_id,
                             any_sent.status == OutboxStatus.SENT)
                      .scalar_subquery())
    commune = aliased(Area)
    query = (
        select(Identity.id, Identity.channel, Identity.unreachable_reason,
               Identity.last_inbound_at, Member.id, Member.display_name, Member.erased_at,
               Member.role, Team.code, Team.name, Area.code, Area.name, commune.name,
               agg.c.held, agg.c.failed, agg.c.unreachable, agg.c.oldest, agg.c.newest,
               oldest.c.last_error, unreachable_since, last_sent, last_delivered)
        .join(Member, Member.id == Identity.member_id)
        .outerjoin(agg, agg.c.identity_id == Identity.id)
        .outerjoin(oldest, oldest.c.identity_id == Identity.id)
        .outerjoin(Team, Team.id == Member.team_id)
        .outerjoin(Area, Area.id == Team.area_id)
        .outerjoin(commune, commune.id == Area.parent_id)
        .where(or_(agg.c.identity_id.is_not(None), Identity.unreachable_reason.is_not(None)))
        .order_by(Member.id, Identity.channel, Identity.id)
    )
    if channel:
        query = query.where(Identity.channel == channel)
    if areas is not None:
        query = query.where(Team.area_id.in_(areas))
    if member_id is not None:
        query = query.where(Member.id == member_id)

    members: dict[int, UnreachedMember] = {}
    for (identity_id, ident_channel, reason, last_inbound, member_id, name, erased_at, role,
         team_code, team_name, area_code, village, parent, held, failed, unreachable,
         oldest_at, newest_at, oldest_error, blocked_since, sent_at, delivered_at
         ) in session.execute(query):
        member = members.get(member_id)
        if member is None:
            member = members[member_id] = UnreachedMember(
                member_id=member_id, name="" if erased_at else name, erased=bool(erased_at),
                role=role, team_code=team_code, team_name=team_name, area_code=area_code,
                village=village, commune=parent, last_delivered_at=delivered_at, channels=[])
        member.channels.append(ChannelTrouble(
            identity_id=identity_id, channel=ident_channel,
            marked_unreachable=reason is not None, unreachable_reason=reason,
            unreachable_since=blocked_since if reason is not None else None,
            held=held or 0, failed=failed or 0, unreachable=unreachable or 0,
            oldest_problem_at=oldest_at, oldest_problem_error=oldest_error,
            newest_problem_at=newest_at, last_inbound_at=last_inbound, last_sent_at=sent_at))
    return sorted(members.values(), key=_newest_first)


def _newest_first(member: UnreachedMember) -> tuple[bool, float, int]:
    # Members blocked long ago with nothing queued since have no date: they go last.
    newest = member.newest_problem_at
    return newest is None, -(newest.timestamp() if newest else 0.0), member.member_id


def summary_as_dict(summary: DeliverySummary, tz: ZoneInfo) -> dict[str, Any]:
    """The summary as plain JSON values, instants in the programme's time zone."""

    def when(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat(timespec="seconds") if value else None

    def trouble(c: ChannelTrouble) -> dict[str, Any]:
        return {"identity_id": c.identity_id, "channel": c.channel,
                "marked_unreachable": c.marked_unreachable,
                "unreachable_reason": c.unreachable_reason,
                "unreachable_since": when(c.unreachable_since),
                "held": c.held, "failed": c.failed, "unreachable": c.unreachable,
                "oldest_problem_at": when(c.oldest_problem_at),
                "oldest_problem_error": c.oldest_problem_error,
                "newest_problem_at": when(c.newest_problem_at),
                "last_inbound_at": when(c.last_inbound_at),
                "last_sent_at": when(c.last_sent_at)}

    return {
        "since": when(summary.since), "until": when(summary.until), "time_zone": tz.key,
        "channel": summary.channel, "area": summary.area_code,
        "counts": [{"channel": c.channel, "status": c.status, "count": c.count}
                   for c in summary.counts],
        "members": [{"member_id": m.member_id, "name": m.name, "erased": m.erased,
                     "role": m.role, "team_code": m.team_code, "team_name": m.team_name,
                     "area_code": m.area_code, "village": m.village, "commune": m.commune,
                     "newest_problem_at": when(m.newest_problem_at),
                     "last_delivered_at": when(m.last_delivered_at),
                     "channels": [trouble(c) for c in m.channels]}
                    for m in summary.members],
        "unlinked_identities": summary.unlinked_identities,
    }
