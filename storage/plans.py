"""Loading a checked plan into the database idempotently, and showing what is loaded."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import (
    ActivityType,
    Area,
    AuditLog,
    Base,
    Deadline,
    Indicator,
    IndicatorTarget,
    Plan,
    TeamKind,
    Topic,
    utcnow,
)
from storage.plan_file import MeasureSpec, PlanSpec
from storage.textfold import fold_name

log = logging.getLogger(__name__)
_Row = TypeVar("_Row", bound=Base)


@dataclass
class LoadSummary:
    """What a load changed; all zeros means the database already matched the file."""

    created: int = 0
    updated: int = 0
    deactivated: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return bool(self.created or self.updated or self.deactivated)


def _sync(summary: LoadSummary, row: Base, values: dict[str, Any]) -> None:
    """Assign only what differs, so a reload of the same file writes nothing."""
    dirty = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            dirty = True
    if dirty:
        summary.updated += 1


def _upsert(
    session: Session, summary: LoadSummary, existing: dict[str, _Row], model: type[_Row],
    code: str, values: dict[str, Any],
) -> _Row:
    row = existing.get(code)
    if row is None:
        row = model(code=code, **values)
        session.add(row)
        existing[code] = row
        summary.created += 1
    else:
        _sync(summary, row, values)
    return row


def load_plan(session: Session, spec: PlanSpec, *, actor: str = "system") -> LoadSummary:
    """Write the plan in the caller's transaction: rows are matched by code, never recreated."""
    summary = LoadSummary()
    plan = session.scalar(select(Plan).where(Plan.code == spec.code))
    if plan is None:
        plan = Plan(code=spec.code, name=spec.name, phase_start=spec.phase_start,
                    phase_end=spec.phase_end, source=spec.source)
        session.add(plan)
        session.flush()
        summary.created += 1
    _sync(summary, plan, {"name": spec.name, "phase_start": spec.phase_start,
                          "phase_end": spec.phase_end, "source": spec.source})

    areas = {a.code: a for a in session.scalars(select(Area))}
    in_file: set[str] = set()
    for node, parent_code, position in spec.areas.walk():
        in_file.add(node.code)
        is_new = node.code not in areas
        row = _upsert(session, summary, areas, Area, node.code, {
            "name": node.name, "name_folded": fold_name(node.name), "level": node.level,
            "position": position, "active": True,
        })
        parent = areas[parent_code] if parent_code else None
        if row.parent is not parent:
            row.parent = parent
            if not is_new:  # a moved area; a new one is already counted as created
                summary.updated += 1
    session.flush()
    # Areas dropped from the file (a merged commune) stay for old reports, but inactive.
    root = areas[spec.areas.code]
    for code, row in areas.items():
        if code not in in_file and row.active and _under(row, root):
            row.active = False
            summary.deactivated += 1
    if plan.root_area_id != root.id:
        plan.root_area_id = root.id

    kinds = {k.code: k for k in session.scalars(select(TeamKind))}
    for code, name in spec.team_kinds:
        _upsert(session, summary, kinds, TeamKind, code, {"name": name})
    session.flush()

    indicators = {i.code: i for i in session.scalars(
        select(Indicator).where(Indicator.plan_id == plan.id))}
    for position, ind in enumerate(spec.indicators):
        indicator = _upsert(session, summary, indicators, Indicator, ind.code, {
            "plan_id": plan.id, "name": ind.name, "description": ind.description,
            "unit": ind.unit, "position": position,
            "team_kind_id": kinds[ind.team_kind].id if ind.team_kind else None,
            "measure": _measure_dict(ind.measure),
        })
        session.flush()
        # The root's target is the plan's total; per-area targets from the file are written
        # too, and targets entered for other areas (by admins) are left alone.
        for area_code, value in ((spec.areas.code, ind.target), *ind.targets):
            area_id = areas[area_code].id
            target = session.scalar(select(IndicatorTarget).where(
                IndicatorTarget.indicator_id == indicator.id, IndicatorTarget.area_id == area_id))
            if target is None:
                session.add(IndicatorTarget(indicator_id=indicator.id, area_id=area_id,
                                            target=value))
                summary.created += 1
            else:
                _sync(summary, target, {"target": value})

    types = {t.code: t for t in session.scalars(
        select(ActivityType).where(ActivityType.plan_id == plan.id))}
    for position, act in enumerate(spec.activity_types):
        _upsert(session, summary, types, ActivityType, act.code, {
            "plan_id": plan.id, "name": act.name, "keywords": list(act.keywords),
            "indicator_id": indicators[act.indicator].id if act.indicator else None,
            "position": position, "active": True,
        })
    summary.deactivated += _deactivate(types, {a.code for a in spec.activity_types})

    topics = {t.code: t for t in session.scalars(select(Topic).where(Topic.plan_id == plan.id))}
    for position, (code, name) in enumerate(spec.topics):
        _upsert(session, summary, topics, Topic, code,
                {"plan_id": plan.id, "name": name, "position": position, "active": True})
    summary.deactivated += _deactivate(topics, {code for code, _ in spec.topics})

    deadlines = {d.code: d for d in session.scalars(
        select(Deadline).where(Deadline.plan_id == plan.id))}
    for dl in spec.deadlines:
        _upsert(session, summary, deadlines, Deadline, dl.code, {
            "plan_id": plan.id, "name": dl.name, "recurrence": dl.recurrence, "month": dl.month,
            "day": dl.day, "remind_days_before": list(dl.remind_days_before), "active": True,
            "period": dl.period, "period_offset": dl.period_offset,
        })
    # Deadlines an admin added are not the file's to retire.
    summary.deactivated += _deactivate({c: d for c, d in deadlines.items() if d.origin != "admin"},
                                       {d.code for d in spec.deadlines})

    if plan.content_sha256 != spec.sha256 or summary.changed:
        plan.content_sha256 = spec.sha256
        plan.loaded_at = utcnow()
        session.add(AuditLog(actor=actor, action="plan.load", object_type="plan",
                             object_id=spec.code, detail={
                                 "created": summary.created, "updated": summary.updated,
                                 "deactivated": summary.deactivated, "sha256": spec.sha256}))
    session.flush()
    log.info("plan %s loaded: %s", spec.code, summary)
    return summary


def _measure_dict(measure: MeasureSpec | None) -> dict[str, Any] | None:
    if measure is None:
        return None
    return {"kind": measure.kind, "period": measure.period,
            "activity_types": list(measure.activity_types), "field": measure.field}


def _under(row: Area, root: Area) -> bool:
    node: Area | None = row
    while node is not None:
        if node is root:
            return True
        node = node.parent
    return False


def _deactivate(rows: dict[str, Any], keep: set[str]) -> int:
    count = 0
    for code, row in rows.items():
        if code not in keep and row.active:
            row.active = False
            count += 1
    return count


def has_plan(session: Session) -> bool:
    """Whether any plan has been loaded (the first start loads the default one)."""
    return session.scalar(select(Plan.id).limit(1)) is not None


def current_plan(session: Session) -> Plan | None:
    """The plan most recently loaded; one deployment normally runs one plan at a time."""
    return session.scalar(select(Plan).order_by(Plan.loaded_at.desc(), Plan.id.desc()).limit(1))


def plan_as_dict(session: Session, plan: Plan) -> dict[str, Any]:
    """The loaded plan as plain data, the shape `duan8 plan show --json` prints."""
    areas = list(session.scalars(select(Area).where(Area.active.is_(True))
                                 .order_by(Area.position, Area.id)))
    children: dict[int | None, list[Area]] = {}
    for area in areas:
        children.setdefault(area.parent_id, []).append(area)

    def node(area: Area) -> dict[str, Any]:
        return {"code": area.code, "name": area.name, "level": area.level,
                "children": [node(child) for child in children.get(area.id, [])]}

    root = next((a for a in areas if a.id == plan.root_area_id), None)
    kinds = {k.id: k.code for k in session.scalars(select(TeamKind))}
    indicators = list(session.scalars(select(Indicator).where(Indicator.plan_id == plan.id)
                                      .order_by(Indicator.position)))
    by_id = {i.id: i.code for i in indicators}
    targets: dict[int, list[dict[str, Any]]] = {}
    area_codes = {a.id: a.code for a in areas}
    for target in session.scalars(select(IndicatorTarget).where(
            IndicatorTarget.indicator_id.in_(list(by_id)))):
        targets.setdefault(target.indicator_id, []).append(
            {"area": area_codes.get(target.area_id), "target": target.target})
    return {
        "code": plan.code,
        "name": plan.name,
        "phase_start": plan.phase_start.isoformat(),
        "phase_end": plan.phase_end.isoformat(),
        "areas": node(root) if root else None,
        "team_kinds": [{"code": k.code, "name": k.name}
                       for k in session.scalars(select(TeamKind).order_by(TeamKind.id))],
        "indicators": [{
            "code": i.code, "name": i.name, "unit": i.unit,
            "team_kind": kinds.get(i.team_kind_id) if i.team_kind_id else None,
            "measure": i.measure,
            "target": next((t["target"] for t in targets.get(i.id, [])
                            if t["area"] == (root.code if root else None)), None),
            "targets": targets.get(i.id, []),
        } for i in indicators],
        "activity_types": [{
            "code": t.code, "name": t.name, "indicator": by_id.get(t.indicator_id or -1),
            "keywords": list(t.keywords),
        } for t in session.scalars(select(ActivityType).where(
            ActivityType.plan_id == plan.id, ActivityType.active.is_(True))
            .order_by(ActivityType.position))],
        "topics": [{"code": t.code, "name": t.name} for t in session.scalars(
            select(Topic).where(Topic.plan_id == plan.id, Topic.active.is_(True))
            .order_by(Topic.position))],
        "deadlines": [{
            "code": d.code, "name": d.name, "recurrence": d.recurrence, "month": d.month,
            "day": d.day, "remind_days_before": list(d.remind_days_before),
        } for d in session.scalars(select(Deadline).where(
            Deadline.plan_id == plan.id, Deadline.active.is_(True)).order_by(Deadline.id))],
    }
