"""Progress against the plan: each indicator's achieved figure and target, per area.

What an indicator counts is data (the plan file's `measure`, copied to `indicators.measure`):
every measure is summed from one grouped pass over the reports (`report_rollup`), whatever the
number of indicators or areas; the figures of an area's children are then added up the area
tree here. A report's place is its own area,
or its team's when it names none; a team counts in its team's area. Reports returned to their
sender for correction are not counted until they are sent again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
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


@dataclass(frozen=True)
class RollupRow:
    """Reports of one team (or none), place, activity type and status flags, added up."""

    team_id: int | None
    team_area_id: int | None
    team_kind_id: int | None
    place_id: int | None  # the report's own area, else its team's
    activity: str
    counted: bool  # not returned to its sender
    in_period: bool  # dated in the period asked for
    in_phase: bool  # dated on or after the phase's first day
    reports: int
    total: int
    women: int
    ethnic: int
    children: int


def report_rollup(session: Session, period: ReportPeriod, phase_start: date | None = None
                  ) -> list[RollupRow]:
    """One pass over the reports dated in the period (from `phase_start` if earlier), grouped
    small enough that every indicator's measure and the dashboard's participants are sums
    over it: one scan of the reports whatever the number of indicators."""
    start = min(period.start, phase_start) if phase_start else period.start
    dated = ReportPeriod(start, period.end, period.received_before).conditions(
        counted_only=False)
    counted = Report.status.not_in(NOT_COUNTED_STATUSES)
    in_period = Report.activity_date >= period.start
    in_phase = Report.activity_date >= (phase_start or period.start)
    # Grouped on the reports' own columns only (no join over a million rows); the few teams
    # and activity types are looked up afterwards.
    rows = session.execute(
        select(Report.team_id, Report.area_id, Report.activity_type_id, counted, in_period,
               in_phase, func.count(Report.id), func.coalesce(func.sum(Report.total), 0),
               func.coalesce(func.sum(Report.women), 0),
               func.coalesce(func.sum(Report.ethnic), 0),
               func.coalesce(func.sum(Report.children), 0))
        .where(*dated)
        .group_by(Report.team_id, Report.area_id, Report.activity_type_id, counted, in_period,
                  in_phase)).all()
    teams = {t: (a, k) for t, a, k in session.execute(select(Team.id, Team.area_id,
                                                             Team.kind_id))}
    codes = dict(session.execute(select(ActivityType.id, ActivityType.code)).all())
    out = []
    for team_id, area_id, type_id, is_counted, period_flag, phase_flag, *sums in rows:
        team_area, kind = teams.get(team_id, (None, None)) if team_id is not None \
            else (None, None)
        out.append(RollupRow(team_id, team_area, kind, area_id if area_id is not None
                             else team_area, codes.get(type_id, ""), bool(is_counted),
                             bool(period_flag), bool(phase_flag), *(int(v) for v in sums)))
    return out


def _measure(measure: dict[str, Any], team_kind_id: int | None, rollup: list[RollupRow]
             ) -> dict[int, int]:
    """(area id → figure) of one measure, from the rollup."""
    whole_phase = measure.get("period") == "phase_to_date"
    rows = [r for r in rollup if r.counted and (r.in_phase if whole_phase else r.in_period)]
    if measure["kind"] == "active_teams":
        teams: dict[int, set[int]] = {}
        for r in rows:
            if r.team_id is not None and r.team_kind_id == team_kind_id \
                    and r.team_area_id is not None:
                teams.setdefault(r.team_area_id, set()).add(r.team_id)
        return {area: len(ids) for area, ids in teams.items()}
    types = set(measure["activity_types"])
    field = "reports" if measure["kind"] == "report_count" else measure.get("field", "total")
    out: dict[int, int] = {}
    for r in rows:
        if r.activity in types and r.place_id is not None:
            out[r.place_id] = out.get(r.place_id, 0) + int(getattr(r, field))
    return out


def indicator_progress(
    session: Session, period: ReportPeriod, *, area_code: str | None = None,
    levels: Collection[str] | None = None, rollup: list[RollupRow] | None = None,
) -> list[IndicatorProgress]:
    """Achieved and target of every indicator of the current plan, for the area and the areas
    under it (only `levels` if given, e.g. district and commune), parents before children.
    `rollup` is `report_rollup` for this period and the plan's phase, when the caller has it."""
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
    if rollup is None and any(ind.measure for ind in indicators):
        rollup = report_rollup(session, period, plan.phase_start)
    inside = set(area_ids)
    out = []
    for ind in indicators:
        totals: dict[int, int] | None = None
        if ind.measure and rollup is not None:
            own = _measure(ind.measure, ind.team_kind_id, rollup)
            totals = _roll_up(tree, {a: v for a, v in own.items() if a in inside})
        figures = tuple(
            AreaFigure(area, totals.get(area.id, 0) if totals is not None else None,
                       targets.get((ind.id, area.id)))
            for area in tree if levels is None or area.level in levels or area.depth == 0)
        out.append(IndicatorProgress(ind.code, ind.name, ind.unit, ind.measure, figures))
    return out


def phase_start(session: Session) -> date | None:
    """The current plan's first day (what `report_rollup` needs for phase-to-date measures)."""
    plan = session.scalar(select(Plan).order_by(Plan.loaded_at.desc(), Plan.id.desc()))
    return plan.phase_start if plan is not None else None


def _roll_up(tree: list[AreaNode], own: dict[int, int]) -> dict[int, int]:
    """Each area's own figure plus its descendants'; `tree` lists parents before children."""
    totals = {a.id: own.get(a.id, 0) for a in tree}
    for area in reversed(tree):
        if area.depth > 0 and area.parent_id in totals:
            totals[area.parent_id] += totals[area.id]
    return totals
