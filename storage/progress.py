"""Progress against the plan: each indicator's achieved figure and target, per area.

What an indicator counts is data (the plan file's `measure`, copied to `indicators.measure`):
each measure is one grouped query over the reports, whatever the number of areas; the figures
of an area's children are then added up the area tree here. A report's place is its own area,
or its team's when it names none; a team counts in its team's area. Reports returned to their
sender for correction are not counted until they are sent again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Executable, func, select
from sqlalchemy.orm import Session

from storage.models import ActivityType, Area, Indicator, IndicatorTarget, Plan, Report, Team

NOT_COUNTED_STATUSES = ("returned",)
# The plan's data-update deadline: the previous year's figures as they stand on 25 January.
UPDATE_MONTH, UPDATE_DAY = 1, 25


@dataclass(frozen=True)
class ReportPeriod:
    """Reports dated start..end (both included), received before `received_before` if set."""

    start: date
    end: date
    received_before: datetime | None = None

    @classmethod
    def year(cls, year: int) -> ReportPeriod:
        return cls(date(year, 1, 1), date(year, 12, 31))

    @classmethod
    def update_window(cls, year: int, tz: ZoneInfo) -> ReportPeriod:
        """Year `year`'s figures as of the end of 25 January of the next year, local time."""
        cutoff = datetime.combine(date(year + 1, UPDATE_MONTH, UPDATE_DAY) + timedelta(days=1),
                                  time(), tzinfo=tz)
        return cls(date(year, 1, 1), date(year, 12, 31), cutoff.astimezone(UTC))

    def conditions(self, *, counted_only: bool = True) -> list[ColumnElement[bool]]:
        """The WHERE terms that keep a report inside the period (and, unless told otherwise,
        among the reports that count towards the figures)."""
        terms = [Report.activity_date >= self.start, Report.activity_date <= self.end]
        if counted_only:
            terms.append(Report.status.not_in(NOT_COUNTED_STATUSES))
        if self.received_before is not None:
            terms.append(Report.created_at < self.received_before)
        return terms


@dataclass(frozen=True)
class AreaNode:
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    depth: int


@dataclass(frozen=True)
class AreaFigure:
    area: AreaNode
    achieved: int | None
    target: int | None

    @property
    def ratio(self) -> float | None:
        """Achieved over target (1.0 is 100 %), or None without a target."""
        if self.achieved is None or not self.target:
            return None
        return self.achieved / self.target


@dataclass(frozen=True)
class IndicatorProgress:
    code: str
    name: str
    unit: str
    measure: dict[str, Any] | None
    figures: tuple[AreaFigure, ...]


def area_subtree(session: Session, root_code: str | None = None) -> list[AreaNode]:
    """The area (the plan's root when None) and every active area under it, parents first,
    each parent followed by its children in the plan's order. LookupError for an unknown code."""
    rows = list(session.execute(
        select(Area.id, Area.code, Area.name, Area.level, Area.parent_id)
        .where(Area.active.is_(True)).order_by(Area.position, Area.id)))
    if root_code is None:
        plan = session.scalar(select(Plan).order_by(Plan.loaded_at.desc(), Plan.id.desc()))
        root = next((r for r in rows if plan is not None and r.id == plan.root_area_id), None)
    else:
        root = next((r for r in rows if r.code == root_code), None)
    if root is None:
        raise LookupError(f"unknown area {root_code!r}" if root_code else "no plan is loaded")
    children: dict[int | None, list[Any]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    out: list[AreaNode] = []

    def visit(row: Any, depth: int) -> None:
        out.append(AreaNode(row.id, row.code, row.name, row.level, row.parent_id, depth))
        for child in children.get(row.id, []):
            visit(child, depth + 1)

    visit(root, 0)
    return out


def _measure_query(
    measure: dict[str, Any], team_kind_id: int | None, period: ReportPeriod, phase_start: date,
    area_ids: Collection[int],
) -> Executable:
    """One grouped query: (area id, figure) for every area that has something to count."""
    start = phase_start if measure.get("period") == "phase_to_date" else period.start
    terms = [*ReportPeriod(start, period.end, period.received_before).conditions()]
    if measure["kind"] == "active_teams":
        return (select(Team.area_id, func.count(func.distinct(Report.team_id)))
                .join(Team, Team.id == Report.team_id)
                .where(*terms, Team.kind_id == team_kind_id, Team.area_id.in_(area_ids))
                .group_by(Team.area_id))
    place = func.coalesce(Report.area_id, Team.area_id)
    figure = (func.count(Report.id) if measure["kind"] == "report_count"
              else func.coalesce(func.sum(getattr(Report, measure.get("field", "total"))), 0))
    return (select(place, figure)
            .outerjoin(Team, Team.id == Report.team_id)
            .join(ActivityType, ActivityType.id == Report.activity_type_id)
            .where(*terms, ActivityType.code.in_(measure["activity_types"]),
                   place.in_(area_ids))
            .group_by(place))


def indicator_progress(
    session: Session, period: ReportPeriod, *, area_code: str | None = None,
    levels: Collection[str] | None = None,
) -> list[IndicatorProgress]:
    """Achieved and target of every indicator of the current plan, for the area and the areas
    under it (only `levels` if given, e.g. district and commune), parents before children."""
    plan = session.scalar(select(Plan).order_by(Plan.loaded_at.desc(), Plan.id.desc()))
    if plan is None:
        raise LookupError("no plan is loaded")
    tree = area_subtree(session, area_code)
    area_ids = [a.id for a in tree]
    indicators = list(session.scalars(
        select(Indicator).where(Indicator.plan_id == plan.id).order_by(Indicator.position)))
    targets: dict[tuple[int, int], int] = {
        (t.indicator_id, t.area_id): t.target for t in session.scalars(
            select(IndicatorTarget).where(IndicatorTarget.area_id.in_(area_ids)))}
    out = []
    for ind in indicators:
        totals: dict[int, int] | None = None
        if ind.measure:
            rows = session.execute(_measure_query(
                ind.measure, ind.team_kind_id, period, plan.phase_start, area_ids)).all()
            totals = _roll_up(tree, {area_id: int(value) for area_id, value in rows})
        figures = tuple(
            AreaFigure(area, totals.get(area.id, 0) if totals is not None else None,
                       targets.get((ind.id, area.id)))
            for area in tree if levels is None or area.level in levels or area.depth == 0)
        out.append(IndicatorProgress(ind.code, ind.name, ind.unit, ind.measure, figures))
    return out


def _roll_up(tree: list[AreaNode], own: dict[int, int]) -> dict[int, int]:
    """Each area's own figure plus its descendants'; `tree` lists parents before children."""
    totals = {a.id: own.get(a.id, 0) for a in tree}
    for area in reversed(tree):
        if area.depth > 0 and area.parent_id in totals:
            totals[area.parent_id] += totals[area.id]
    return totals
