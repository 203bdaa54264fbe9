"""The plan as the admin web shows and edits it: indicators with their measures and targets per
area, and the deadlines with their reminder schedules.

Targets live in `indicator_targets`, one row per (indicator, area): the plan file writes the
province's total and any `targets` it lists; a province admin enters the others here (the
plan's per-district annex is not in its text). A reload of the plan file leaves targets it
does not list alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import deadlines
from storage.models import Area, AuditLog, Indicator, IndicatorTarget, TeamKind, Topic
from storage.plans import current_plan

MAX_TARGET = 10_000_000


@dataclass(frozen=True)
class IndicatorTargets:
    id: int
    code: str
    name: str
    unit: str
    team_kind: str | None
    measure: dict[str, Any] | None
    targets: dict[int, int]  # area id → target


def indicator_targets(session: Session, area_ids: Collection[int]) -> list[IndicatorTargets]:
    """The current plan's indicators, each with its targets for the given areas."""
    plan = current_plan(session)
    if plan is None:
        return []
    kinds = dict(session.execute(select(TeamKind.id, TeamKind.name)).all())
    indicators = list(session.scalars(select(Indicator).where(Indicator.plan_id == plan.id)
                                      .order_by(Indicator.position)))
    targets: dict[int, dict[int, int]] = {}
    for t in session.scalars(select(IndicatorTarget).where(
            IndicatorTarget.indicator_id.in_([i.id for i in indicators]),
            IndicatorTarget.area_id.in_(list(area_ids)))):
        targets.setdefault(t.indicator_id, {})[t.area_id] = t.target
    return [IndicatorTargets(i.id, i.code, i.name, i.unit,
                             kinds.get(i.team_kind_id) if i.team_kind_id else None,
                             i.measure, targets.get(i.id, {})) for i in indicators]


def set_targets(session: Session, changes: Mapping[tuple[int, int], int | None], *,
                area_ids: Collection[int], actor: str, now: datetime) -> int:
    """Write targets (None removes one) for (indicator, area) pairs of the current plan and of
    the given areas only; each change is audited with its old and new value. Returns how many
    changed. ValueError for a pair outside the plan or the areas, or a value out of range."""
    plan = current_plan(session)
    if plan is None:
        raise ValueError("no plan is loaded")
    indicator_ids = set(session.scalars(select(Indicator.id).where(
        Indicator.plan_id == plan.id)))
    allowed = set(area_ids)
    existing = {(t.indicator_id, t.area_id): t for t in session.scalars(
        select(IndicatorTarget).where(IndicatorTarget.indicator_id.in_(indicator_ids),
                                      IndicatorTarget.area_id.in_(allowed)))}
    changed = 0
    for (indicator_id, area_id), value in sorted(changes.items()):
        if indicator_id not in indicator_ids or area_id not in allowed:
            raise ValueError(f"no indicator {indicator_id} for area {area_id} here")
        if value is not None and not 0 <= value <= MAX_TARGET:
            raise ValueError(f"target {value} out of range")
        row = existing.get((indicator_id, area_id))
        old = row.target if row is not None else None
        if old == value:
            continue
        if value is None:
            assert row is not None
            session.delete(row)
        elif row is None:
            session.add(IndicatorTarget(indicator_id=indicator_id, area_id=area_id,
                                        target=value))
        else:
            row.target = value
        session.add(AuditLog(actor=actor[:120], at=now, action="plan.target",
                             object_type="indicator", object_id=str(indicator_id),
                             detail={"area_id": area_id, "old": old, "new": value}))
        changed += 1
    session.flush()
    return changed


@dataclass(frozen=True)
class Schedule:
    """A deadline and its reminders: when it falls, which period it asks for, who is reminded."""

    id: int
    code: str
    name: str
    recurrence: str
    month: int | None
    day: int
    period: str
    period_offset: int
    remind_days_before: tuple[int, ...]
    remind_at: str | None
    roles: tuple[str, ...]
    origin: str
    next_due: date | None
    next_period: str | None


def schedules(session: Session, today: date) -> list[Schedule]:
    rules = deadlines.load_rules(session)
    nexts: dict[int, deadlines.Occurrence] = {}
    for occ in deadlines.occurrences(rules, today, today + timedelta(days=400)):
        nexts.setdefault(occ.rule.id, occ)
    out = []
    for r in rules:
        upcoming = nexts.get(r.id)
        out.append(Schedule(r.id, r.code, r.name, r.recurrence, r.month, r.day, r.period,
                            r.period_offset, r.offsets, r.remind_at, r.roles, r.origin,
                            upcoming.due if upcoming else None,
                            upcoming.period.key if upcoming else None))
    return out


def topics(session: Session) -> list[tuple[str, str]]:
    """(code, name) of the current plan's active topics, in the plan's order."""
    plan = current_plan(session)
    if plan is None:
        return []
    return [(c, n) for c, n in session.execute(
        select(Topic.code, Topic.name).where(Topic.plan_id == plan.id, Topic.active.is_(True))
        .order_by(Topic.position))]


@dataclass(frozen=True)
class AudienceChoices:
    """What a broadcast's audience may be built from, for the composer's lists."""

    areas: list[tuple[str, str, str]]  # (code, name, level): districts and communes
    team_kinds: list[tuple[str, str]]  # (code, name)


def audience_choices(session: Session) -> AudienceChoices:
    areas = [(c, n, lvl) for c, n, lvl in session.execute(
        select(Area.code, Area.name, Area.level)
        .where(Area.active.is_(True), Area.level.in_(["district", "commune"]))
        .order_by(Area.code))]
    kinds = [(c, n) for c, n in session.execute(
        select(TeamKind.code, TeamKind.name).order_by(TeamKind.id))]
    return AudienceChoices(areas, kinds)
