"""The dashboard's figures beyond reports: completeness per team for each deadline's current
period, and which photos of the latest reports a reader may see as thumbnails.

Progress against targets is storage.progress (the workbook reads it too); completeness is
storage.completeness (reminders read it too). This module only narrows them to the reader's
area and arranges them for the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import deadlines
from storage.admin_views import Scope
from storage.completeness import PeriodDue, TeamCompleteness, team_completeness
from storage.models import Area, Media, Report, Team
from storage.progress import AreaNode, RollupRow, area_subtree

# How far ahead a deadline's next due date is looked for (a yearly one is at most a year off).
LOOKAHEAD_DAYS = 400


@dataclass(frozen=True)
class AreaCompleteness:
    area_id: int
    name: str
    reported: int
    teams: int


@dataclass(frozen=True)
class DeadlineCompleteness:
    """One deadline: the period its next due date asks about, and each team's state."""

    deadline_id: int
    name: str
    period_key: str
    start: date
    end: date
    due: date
    teams: tuple[TeamCompleteness, ...]  # not reported first; `reports` is 1 or 0
    by_area: tuple[AreaCompleteness, ...]  # per area one level under the reader's root

    @property
    def reported(self) -> int:
        return sum(t.reported for t in self.teams)


def scope_tree(session: Session, scope: Scope) -> list[AreaNode]:
    """The reader's area and everything under it, parents first (the plan's root for a
    province admin)."""
    code = None
    if scope.root_area_id is not None:
        code = session.scalar(select(Area.code).where(Area.id == scope.root_area_id))
    return area_subtree(session, code)


def _top_of(tree: list[AreaNode]) -> dict[int, int]:
    """Each area → its ancestor one level under the root (the root maps to itself)."""
    top: dict[int, int] = {}
    for node in tree:  # parents come first
        if node.depth <= 1:
            top[node.id] = node.id
        else:
            top[node.id] = top.get(node.parent_id or -1, node.id)
    return top


def completeness(session: Session, scope: Scope, tree: list[AreaNode], today: date
                 ) -> list[DeadlineCompleteness]:
    """For each active deadline, its next due date on or after today and the period it asks
    about; every team of the reader's area that must report for it, in one query."""
    rules = deadlines.load_rules(session)
    nexts: dict[int, deadlines.Occurrence] = {}
    for occ in deadlines.occurrences(rules, today, today + timedelta(days=LOOKAHEAD_DAYS)):
        nexts.setdefault(occ.rule.id, occ)
    chosen = sorted(nexts.values(), key=lambda o: (o.due, o.rule.id))
    if not chosen:
        return []
    dues = [PeriodDue(o.rule.id, o.period.key, o.period.start, o.period.end,
                      o.rule.team_kind_ids, o.rule.area_ids, o.rule.roles) for o in chosen]
    area_ids = None if scope.root_area_id is None else [a.id for a in tree]
    rows = team_completeness(session, dues, area_ids=area_ids, first_only=True)
    top = _top_of(tree)
    names = {a.id: a.name for a in tree if a.depth <= 1}
    out = []
    for occ, due in zip(chosen, dues, strict=True):
        teams = [r for r in rows if r.deadline_id == due.deadline_id and r.period == due.period]
        tally: dict[int, list[int]] = {a: [0, 0] for a in names if a != tree[0].id}
        for team in teams:
            counts = tally.setdefault(top.get(team.area_id, tree[0].id), [0, 0])
            counts[0] += team.reported
            counts[1] += 1
        by_area = tuple(AreaCompleteness(a, names.get(a, ""), r, n)
                        for a, (r, n) in tally.items() if n)
        teams.sort(key=lambda t: (t.reported, t.team_name, t.team_id))
        out.append(DeadlineCompleteness(occ.rule.id, occ.rule.name, occ.period.key,
                                        occ.period.start, occ.period.end, occ.due,
                                        tuple(teams), by_area))
    return out


def visible_photos(session: Session, scope: Scope, report_ids: list[int], *,
                   sees_identifiable: bool) -> dict[int, list[int]]:
    """Photo ids per report, only of reports in the reader's area and only the photos the
    reader may see (a photo that may show a woman or child: the area's officers only)."""
    if not report_ids:
        return {}
    query = (select(Media.report_id, Media.id).join(Report, Report.id == Media.report_id)
             .outerjoin(Team, Team.id == Report.team_id)
             .where(Media.report_id.in_(report_ids), Media.status == "ready")
             .order_by(Media.report_id, Media.id))
    areas = scope.areas()
    if areas is not None:
        query = query.where((Team.area_id.in_(areas))
                            | (Report.team_id.is_(None) & Report.area_id.in_(areas)))
    if not sees_identifiable:
        query = query.where(Media.identifiable.is_(False))
    found: dict[int, list[int]] = {}
    for report_id, media_id in session.execute(query):
        if report_id is not None:
            found.setdefault(int(report_id), []).append(int(media_id))
    return found


@dataclass(frozen=True)
class Participants:
    """Reports and participants of the period in one area one level under the reader's root
    (every report of its teams, returned ones too, as the report list shows them)."""

    area_id: int
    name: str
    reports: int
    total: int
    women: int
    ethnic: int
    children: int
    active_teams: int


def participants(tree: list[AreaNode], rollup: list[RollupRow]) -> list[Participants]:
    """Per area one level under the root (the root itself when it has none), from the same
    pass over the reports that the progress bars are summed from."""
    top = _top_of(tree)
    shown = [a for a in tree if a.depth == 1] or tree[:1]
    sums: dict[int, list[int]] = {a.id: [0] * 5 for a in shown}
    teams: dict[int, set[int]] = {a.id: set() for a in shown}
    only_root = shown[0].depth == 0
    for r in rollup:
        if not r.in_period or r.team_id is None or r.team_area_id not in top:
            continue
        area = shown[0].id if only_root else top[r.team_area_id]
        if area not in sums:
            continue
        for i, value in enumerate((r.reports, r.total, r.women, r.ethnic, r.children)):
            sums[area][i] += value
        teams[area].add(r.team_id)
    out = []
    for a in shown:
        reports, total, women, ethnic, children = sums[a.id]
        out.append(Participants(a.id, a.name, reports, total, women, ethnic, children,
                                len(teams[a.id])))
    return out
