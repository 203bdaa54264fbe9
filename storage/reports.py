"""Saving a finished report, and reading a member's reports back."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from storage.models import ActivityType, AuditLog, Media, Member, Report


@dataclass(frozen=True)
class ReportLine:
    number: str
    activity_date: date
    activity_name: str
    total: int
    status: str


def report_number(report_id: int) -> str:
    """A short number a member can read out on the phone: BC-00042."""
    return f"BC-{report_id:05d}"


@dataclass(frozen=True)
class NewReport:
    """A finished report as the report conversation hands it over, with the photos it keeps."""

    identity_id: int
    member_id: int | None
    team_id: int | None
    channel: str
    activity_type_id: int
    activity_date: date
    total: int
    women: int = 0
    ethnic: int = 0
    children: int = 0
    area_id: int | None = None
    place_text: str = ""
    topic_id: int | None = None
    topic_text: str = ""
    notes: str = ""
    media: tuple[int, ...] = ()


def save_report(session: Session, new: NewReport) -> str:
    """Store a finished report and its photos in the caller's transaction; returns its number."""
    report = Report(
        # The number is derived from the id, known only after the insert.
        number=f"tmp-{secrets.token_hex(6)}",
        member_id=new.member_id,
        team_id=new.team_id,
        activity_type_id=new.activity_type_id,
        activity_date=new.activity_date,
        area_id=new.area_id,
        place_text=new.place_text,
        total=new.total,
        women=new.women,
        ethnic=new.ethnic,
        children=new.children,
        topic_id=new.topic_id,
        topic_text=new.topic_text,
        notes=new.notes,
        channel=new.channel,
    )
    session.add(report)
    session.flush()
    report.number = report_number(report.id)
    if new.media:
        session.execute(update(Media)
                        .where(Media.id.in_(new.media), Media.identity_id == new.identity_id)
                        .values(report_id=report.id))
    session.add(AuditLog(actor=f"identity:{new.identity_id}", action="report.submit",
                         object_type="report", object_id=report.number,
                         detail={"photos": len(new.media)}))
    return report.number


def recent_reports(session: Session, member_id: int, *, limit: int = 5) -> list[ReportLine]:
    """The member's latest reports, newest first."""
    rows = session.execute(
        select(Report, ActivityType.name).join(ActivityType)
        .where(Report.member_id == member_id)
        .order_by(Report.created_at.desc(), Report.id.desc()).limit(limit)
    )
    return [ReportLine(r.number, r.activity_date, name, r.total, r.status) for r, name in rows]


@dataclass(frozen=True)
class MemberActivity:
    name: str
    role: str
    reports: int
    last_date: date | None


def team_activity(session: Session, leader_id: int, since: date) -> list[MemberActivity]:
    """Each member of a leader's team with their reports since a date: who has, who has not.

    The role is checked in the query itself: for anyone but a current team leader the team is
    empty, whatever the caller believed about them.
    """
    leader = aliased(Member)
    team_id = (select(leader.team_id)
               .where(leader.id == leader_id, leader.role == "leader",
                      leader.erased_at.is_(None), leader.team_id.is_not(None))
               .scalar_subquery())
    count = func.count(Report.id)
    rows = session.execute(
        select(Member.display_name, Member.role, count, func.max(Report.activity_date))
        .outerjoin(Report, (Report.member_id == Member.id) & (Report.activity_date >= since))
        .where(Member.team_id == team_id, Member.erased_at.is_(None))
        .group_by(Member.id, Member.display_name, Member.role)
        .order_by(count.desc(), Member.display_name)
    )
    return [MemberActivity(name, role, n, last) for name, role, n, last in rows]
