"""What an export reads: the reports row by row (streamed), and which teams reported for each
deadline's period. No member names, notes or phone numbers ever leave through here."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Executable, func, select
from sqlalchemy.orm import Session

from storage.models import ActivityType, AuditLog, Deadline, Media, Plan, Report, Team, Topic
from storage.progress import AreaNode, ReportPeriod

# Rows fetched from the server-side cursor at a time: memory stays flat whatever the count.
STREAM_BATCH = 2000


@dataclass(frozen=True)
class ExportReport:
    number: str
    activity_date: date
    district: str
    commune: str
    village: str
    team: str
    activity_type: str
    topic: str
    total: int
    women: int
    ethnic: int
    children: int
    photos: int
    status: str


def _report_filter(area_ids: list[int], period: ReportPeriod) -> list[Any]:
    place = func.coalesce(Report.area_id, Team.area_id)
    # Every status is listed (the sheet shows it); the figures leave returned reports out.
    return [*period.conditions(counted_only=False), place.in_(area_ids)]


def count_reports(session: Session, tree: list[AreaNode], period: ReportPeriod) -> int:
    """How many reports `export_reports` yields, for a progress bar."""
    return int(session.scalar(
        select(func.count(Report.id)).outerjoin(Team, Team.id == Report.team_id)
        .where(*_report_filter([a.id for a in tree], period))) or 0)


def export_statement(tree: list[AreaNode], period: ReportPeriod) -> Executable:
    """The one statement the reports sheet reads (the benchmark copies it as its baseline)."""
    photos = (select(func.count(Media.id)).where(Media.report_id == Report.id)
              .correlate(Report).scalar_subquery())
    statement = (
        select(Report.number, Report.activity_date, func.coalesce(Report.area_id, Team.area_id),
               Team.name, ActivityType.name, func.coalesce(Topic.name, Report.topic_text),
               Report.total, Report.women, Report.ethnic, Report.children, photos,
               Report.status)
        .outerjoin(Team, Team.id == Report.team_id)
        .join(ActivityType, ActivityType.id == Report.activity_type_id)
        .outerjoin(Topic, Topic.id == Report.topic_id)
        .where(*_report_filter([a.id for a in tree], period))
        .order_by(Report.activity_date, Report.id)
    )
    return statement


def export_reports(
    session: Session, tree: list[AreaNode], period: ReportPeriod
) -> Iterator[ExportReport]:
    """The reports placed in the areas of `tree`, by date then number, streamed from a
    server-side cursor (PostgreSQL) in batches: the caller writes each row and drops it."""
    by_id = {a.id: a for a in tree}
    result = session.execute(export_statement(tree, period), execution_options={
        "stream_results": True, "yield_per": STREAM_BATCH})
    for row in result:
        names = _place_names(by_id, row[2])
        yield ExportReport(row[0], row[1], *names, row[3] or "", row[4], row[5] or "",
                           row[6], row[7], row[8], row[9], int(row[10] or 0), row[11])


def _place_names(by_id: dict[int, AreaNode], area_id: int | None) -> tuple[str, str, str]:
    district = commune = village = ""
    node = by_id.get(area_id) if area_id is not None else None
    while node is not None:
        if node.level == "district":
            district = node.name
        elif node.level == "commune":
            commune = node.name
        elif node.level == "village":
            village = node.name
        node = by_id.get(node.parent_id) if node.parent_id is not None else None
    return district, commune, village


# --- completeness ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamPeriodReporting:
    """One team for one deadline's period: complete when it has at least one report dated in
    the period (the day after the previous due date up to the due date, both included)."""

    deadline: str
    period_start: date
    due: date
    team_code: str
    team_name: str
    area_id: int
    reports: int

    @property
    def complete(self) -> bool:
        return self.reports > 0


def _due_dates(recurrence: str, month: int | None, day: int, start: date, end: date
               ) -> list[date]:
    """Due dates from the one before `start` up to the last one not after `end`."""
    out = []
    for year in range(start.year - 1, end.year + 1):
        months = [month] if recurrence == "yearly" and month else list(range(1, 13))
        for m in months:
            out.append(date(year, m, min(day, calendar.monthrange(year, m)[1])))
    return sorted(d for d in out if d <= end)


def deadline_periods(recurrence: str, month: int | None, day: int, start: date, end: date
                     ) -> list[tuple[date, date]]:
    """(first day, due date) of each period of a deadline whose due date is in start..end."""
    dues = _due_dates(recurrence, month, day, start, end)
    return [(previous + timedelta(days=1), due)
            for previous, due in pairwise(dues) if due >= start]


def teams_reporting_per_deadline_period(
    session: Session, tree: list[AreaNode], start: date, end: date,
    received_before: datetime | None = None,
) -> Iterator[TeamPeriodReporting]:
    """Each active team of the areas in `tree`, for each period of each active deadline of the
    current plan whose due date falls in start..end: how many reports it has dated in it
    (received before `received_before` if given). One grouped query per period."""
    plan = session.scalar(select(Plan).order_by(Plan.loaded_at.desc(), Plan.id.desc()))
    if plan is None:
        return
    area_ids = [a.id for a in tree]
    teams = list(session.execute(
        select(Team.id, Team.code, Team.name, Team.area_id)
        .where(Team.active.is_(True), Team.area_id.in_(area_ids)).order_by(Team.code)))
    if not teams:
        return
    deadlines = session.scalars(select(Deadline).where(
        Deadline.plan_id == plan.id, Deadline.active.is_(True)).order_by(Deadline.id))
    for deadline in deadlines:
        for first, due in deadline_periods(deadline.recurrence, deadline.month, deadline.day,
                                           start, end):
            counts: dict[int | None, int] = dict(session.execute(
                select(Report.team_id, func.count(Report.id))
                .join(Team, Team.id == Report.team_id)
                .where(*ReportPeriod(first, due, received_before).conditions(),
                       Team.area_id.in_(area_ids),
                       Team.active.is_(True))
                .group_by(Report.team_id)).all())
            for team in teams:
                yield TeamPeriodReporting(deadline.name, first, due, team.code, team.name,
                                          team.area_id, int(counts.get(team.id, 0)))


def record_export(session: Session, actor: str, detail: dict[str, Any]) -> None:
    """Write the export to the audit log (who, what, when) in the caller's transaction."""
    session.add(AuditLog(actor=actor[:120], action="report.export", object_type="area",
                         object_id=str(detail.get("area", ""))[:64], detail=detail))
