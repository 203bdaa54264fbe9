"""Completeness: which teams have reported for a deadline's period, in one query.

"Reported" means at least one report of the team dated in the period (its activity date, a
local date, so a report at 23:30 on 9 September is a report of 9 September), or the team's
explicit "no activity" for that deadline and period. Reminders, the leader's team view,
escalation, the province digest and the admin web all read it from `completeness_select`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    String,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import CTE
from sqlalchemy.types import TypeEngine

from storage.models import Member, Report, Team
from storage.models_deadlines import NilReport


@dataclass(frozen=True)
class PeriodDue:
    """One deadline's period to check, and which teams must report for it.

    `team_kind_ids`/`area_ids` empty mean every kind / every area; `area_ids` lists the areas
    themselves (a subtree already expanded, see storage.deadlines.subtree_ids). `roles` and
    `offset_days` are carried for the reminder query built on this one; completeness ignores
    them.
    """

    deadline_id: int
    period: str
    start: date
    end: date
    team_kind_ids: tuple[int, ...] = ()
    area_ids: tuple[int, ...] = ()
    roles: tuple[str, ...] = ()
    offset_days: int = 0


@dataclass(frozen=True)
class TeamCompleteness:
    """One team for one deadline's period."""

    deadline_id: int
    period: str
    team_id: int
    team_code: str
    team_name: str
    area_id: int
    reports: int
    nil: bool

    @property
    def reported(self) -> bool:
        return self.reports > 0 or self.nil


def _rows_cte(name: str, rows: Sequence[tuple[Any, ...]],
              columns: list[tuple[str, TypeEngine[Any]]]) -> CTE:
    """A small literal table as a CTE (UNION ALL of SELECTs: SQLite and PostgreSQL alike)."""
    selects = [select(*(literal(v, t).label(c) for v, (c, t) in zip(row, columns, strict=True)))
               for row in rows]
    body = selects[0] if len(selects) == 1 else union_all(*selects)
    return body.cte(name)


def completeness_select(
    dues: Sequence[PeriodDue], *, area_ids: Collection[int] | None = None,
    team_ids: Collection[int] | None = None, first_only: bool = False,
) -> Select[tuple[int, int, str, int, str, str, int, int, bool, str, int]]:
    """The query: one row per (due, team that must report), with its reports and nil flag.

    Columns: occ (index into `dues`), deadline_id, period, team_id, team_code, team_name,
    area_id, reports, nil, and the due's roles (",member,leader," or "") and offset_days.
    `area_ids` / `team_ids` narrow to an officer's area or one team. With `first_only`,
    `reports` is 1 or 0: whether the team has any, found without counting them all.
    Selectable as a subquery: the reminder query joins members onto it.
    """
    if not dues:
        raise ValueError("completeness needs at least one deadline period")
    occ = _rows_cte("occ", [
        (i, d.deadline_id, d.period, d.start, d.end, int(not d.team_kind_ids),
         int(not d.area_ids), "," + ",".join(d.roles) + "," if d.roles else "",
         d.offset_days) for i, d in enumerate(dues)], [
        ("occ", Integer()), ("deadline_id", Integer()), ("period", String()),
        ("start", Date()), ("end", Date()), ("any_kind", Integer()), ("any_area", Integer()),
        ("roles", String()), ("offset_days", Integer())])
    conditions: list[ColumnElement[bool]] = [Team.active.is_(True)]
    kind_rows = [(i, k) for i, d in enumerate(dues) for k in d.team_kind_ids]
    if kind_rows:
        kinds = _rows_cte("occ_kind", kind_rows, [("occ", Integer()), ("kind_id", Integer())])
        conditions.append(or_(occ.c.any_kind == 1, exists().where(
            kinds.c.occ == occ.c.occ, kinds.c.kind_id == Team.kind_id)))
    area_rows = [(i, a) for i, d in enumerate(dues) for a in d.area_ids]
    if area_rows:
        areas = _rows_cte("occ_area", area_rows, [("occ", Integer()), ("area_id", Integer())])
        conditions.append(or_(occ.c.any_area == 1, exists().where(
            areas.c.occ == occ.c.occ, areas.c.area_id == Team.area_id)))
    if area_ids is not None:
        conditions.append(Team.area_id.in_(list(area_ids)))
    if team_ids is not None:
        conditions.append(Team.id.in_(list(team_ids)))
    in_period = (Report.team_id == Team.id, Report.status != "returned",
                 Report.activity_date >= occ.c.start, Report.activity_date <= occ.c.end)
    reports: Any = (case((exists().where(*in_period).correlate(Team, occ), 1), else_=0)
                    if first_only else
                    select(func.count(Report.id)).where(*in_period)
                    .correlate(Team, occ).scalar_subquery())
    nil = exists().where(NilReport.team_id == Team.id,
                         NilReport.deadline_id == occ.c.deadline_id,
                         NilReport.period == occ.c.period).correlate(Team, occ)
    return (select(occ.c.occ, occ.c.deadline_id, occ.c.period, Team.id.label("team_id"),
                   Team.code.label("team_code"), Team.name.label("team_name"),
                   Team.area_id.label("area_id"), reports.label("reports"), nil.label("nil"),
                   occ.c.roles, occ.c.offset_days)
            .select_from(occ).join(Team, and_(*conditions)))


def team_completeness(
    session: Session, dues: Sequence[PeriodDue], *, area_ids: Collection[int] | None = None,
    team_ids: Collection[int] | None = None, first_only: bool = False,
) -> list[TeamCompleteness]:
    """Every team that must report for each due period, reported or not, in one query
    (`first_only`: `reports` is only 1 or 0, which is quicker on many reports)."""
    if not dues:
        return []
    rows = session.execute(completeness_select(dues, area_ids=area_ids, team_ids=team_ids,
                                               first_only=first_only)
                           .order_by("occ", "team_name", "team_id"))
    return [TeamCompleteness(r.deadline_id, r.period, r.team_id, r.team_code, r.team_name,
                             r.area_id, int(r.reports), bool(r.nil)) for r in rows]


@dataclass(frozen=True)
class MemberActivity:
    member_id: int
    name: str
    role: str
    reports: int
    last_date: date | None


def member_activity(session: Session, team_id: int, start: date, end: date
                    ) -> list[MemberActivity]:
    """Each member of a team with their reports dated in [start, end], most active first."""
    count = func.count(Report.id)
    rows = session.execute(
        select(Member.id, Member.display_name, Member.role, count, func.max(Report.activity_date))
        .outerjoin(Report, and_(Report.member_id == Member.id, Report.activity_date >= start,
                                Report.activity_date <= end, Report.status != "returned"))
        .where(Member.team_id == team_id, Member.erased_at.is_(None))
        .group_by(Member.id, Member.display_name, Member.role)
        .order_by(count.desc(), Member.display_name, Member.id))
    return [MemberActivity(i, name, role, int(n), last) for i, name, role, n, last in rows]
