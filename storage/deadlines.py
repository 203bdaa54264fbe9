"""Deadlines as data: when each falls due, which period it asks about, and who must report.

A deadline is due "before" its day (the plan: "trước ngày 10 tháng 9"), so the due moment is the
start of that local day: a report at 23:30 on 9 September is on time. Each due date asks for one
period (a year, quarter or month: the one it falls in, or the one before). A due date counts only
inside its plan's phase, and a plan loaded for a later phase takes over from that phase's start:
no deadline is ever named outside a loaded phase.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Area, Deadline, Plan, TeamKind

DEFAULT_OFFSETS = (14, 7, 3, 1)
PERIODS = ("year", "quarter", "month")
RECURRENCES = {"yearly": "year", "quarterly": "quarter", "monthly": "month"}
ROLES = ("member", "leader")


@dataclass(frozen=True)
class Period:
    """A reporting period: its key (2025, 2025-Q3, 2025-09) and its first and last days."""

    unit: str
    key: str
    start: date
    end: date

    @property
    def number(self) -> int:
        """The quarter or month number (the year for a year)."""
        return int(self.key.split("-")[-1].lstrip("Q")) if self.unit != "year" else self.start.year


def period_of(unit: str, day: date, offset: int = 0) -> Period:
    """The period of `unit` that contains `day`, moved `offset` periods (-1: the one before)."""
    if unit == "year":
        year = day.year + offset
        return Period(unit, str(year), date(year, 1, 1), date(year, 12, 31))
    months = 3 if unit == "quarter" else 1
    if unit not in ("quarter", "month"):
        raise ValueError(f"unknown period unit {unit!r}")
    index = day.year * 12 + (day.month - 1) // months * months + offset * months
    year, first = divmod(index, 12)
    start = date(year, first + 1, 1)
    last_month = first + months
    end = date(year, last_month, calendar.monthrange(year, last_month)[1])
    key = f"{year}-Q{first // 3 + 1}" if unit == "quarter" else f"{year}-{first + 1:02d}"
    return Period(unit, key, start, end)


@dataclass(frozen=True)
class Rule:
    """One active deadline as the schedule reads it, with its plan's effective phase."""

    id: int
    code: str
    name: str
    recurrence: str
    month: int | None
    day: int
    period: str
    period_offset: int
    offsets: tuple[int, ...]  # days before the due date, largest first
    remind_at: str | None
    team_kind_ids: tuple[int, ...]  # empty: every kind
    roles: tuple[str, ...]  # empty: every member
    area_ids: tuple[int, ...]  # teams in these areas or under them (expanded); empty: all
    phase_start: date
    phase_end: date  # the plan's end, or the day before a later plan's phase starts
    origin: str = "plan"

    def due_dates(self, first: date, last: date) -> Iterator[date]:
        """The due dates in [first, last] that fall inside the phase."""
        lo, hi = max(first, self.phase_start), min(last, self.phase_end)
        if lo > hi:
            return
        if self.recurrence == "yearly":
            for year in range(lo.year, hi.year + 1):
                yield from _within(_clamped(year, self.month or 1, self.day), lo, hi)
            return
        step = 3 if self.recurrence == "quarterly" else 1
        index = lo.year * 12 + (lo.month - 1) // step * step
        while index <= hi.year * 12 + hi.month - 1:
            year, month0 = divmod(index, 12)
            month = month0 + 1 + ((self.month or 1) - 1 if step == 3 else 0)
            if month > 12:
                year, month = year + 1, month - 12
            yield from _within(_clamped(year, month, self.day), lo, hi)
            index += step

    def period_for(self, due: date) -> Period:
        """The period a due date asks for: the due date's own (offset 0) or the one before.

        A due date on the first day of its period, with offset 0, still asks about that period.
        """
        return period_of(self.period, due, self.period_offset)


@dataclass(frozen=True)
class Occurrence:
    """One due date of one deadline and the period it asks about."""

    rule: Rule
    due: date
    period: Period


def _clamped(year: int, month: int, day: int) -> date:
    """The 31st of a 30-day month is its last day."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _within(day: date, lo: date, hi: date) -> Iterator[date]:
    if lo <= day <= hi:
        yield day


def subtree_ids(parents: dict[int, int | None], roots: set[int]) -> set[int]:
    """Areas in `roots` or under one of them, from a child → parent map."""
    found: dict[int, bool] = {}

    def inside(area: int | None) -> bool:
        seen = []
        while area is not None and area not in found:
            if area in roots:
                found[area] = True
                break
            seen.append(area)
            area = parents.get(area)
        answer = area is not None and found.get(area, False)
        for a in seen:
            found[a] = answer
        return answer

    return {a for a in parents if inside(a)}


def area_parents(session: Session) -> dict[int, int | None]:
    return dict(session.execute(select(Area.id, Area.parent_id)).all())


def load_rules(session: Session) -> list[Rule]:
    """Every active deadline of every loaded plan, each bounded by its plan's effective phase."""
    plans = session.execute(select(Plan.id, Plan.phase_start, Plan.phase_end)
                            .order_by(Plan.phase_start, Plan.id)).all()
    phase: dict[int, tuple[date, date]] = {}
    for i, (plan_id, start, end) in enumerate(plans):
        later = [s for _, s, _ in plans[i + 1:] if s > start]
        phase[plan_id] = (start, min([end, *(s - timedelta(days=1) for s in later)]))
    kinds = dict(session.execute(select(TeamKind.code, TeamKind.id)).all())
    area_codes = dict(session.execute(select(Area.code, Area.id)).all())
    parents: dict[int, int | None] | None = None
    rules = []
    for d in session.scalars(select(Deadline).where(Deadline.active.is_(True))
                             .order_by(Deadline.id)):
        areas: set[int] = set()
        if d.area_codes:
            parents = parents if parents is not None else area_parents(session)
            roots = {area_codes[c] for c in d.area_codes if c in area_codes}
            areas = subtree_ids(parents, roots) or {-1}  # unknown areas: nobody, not everybody
        start, end = phase[d.plan_id]
        rules.append(Rule(
            id=d.id, code=d.code, name=d.name, recurrence=d.recurrence, month=d.month,
            day=d.day, period=d.period or RECURRENCES.get(d.recurrence, "year"),
            period_offset=d.period_offset,
            offsets=tuple(sorted({int(x) for x in d.remind_days_before} or DEFAULT_OFFSETS,
                                 reverse=True)),
            remind_at=d.remind_at,
            team_kind_ids=tuple(sorted(kinds[k] for k in d.team_kinds if k in kinds))
            or ((-1,) if d.team_kinds else ()),
            roles=tuple(d.roles), area_ids=tuple(sorted(areas)),
            phase_start=start, phase_end=end, origin=d.origin,
        ))
    return rules


def occurrences(rules: list[Rule], first: date, last: date) -> list[Occurrence]:
    """Every (deadline, due date, period) with its due date in [first, last], by due date."""
    found = [Occurrence(rule, due, rule.period_for(due))
             for rule in rules for due in rule.due_dates(first, last)]
    return sorted(found, key=lambda o: (o.due, o.rule.id))


@dataclass(frozen=True)
class NewDeadline:
    """What an admin gives to add a deadline (checked by `add_deadline`)."""

    code: str
    name: str
    recurrence: str
    day: int
    month: int | None = None
    period: str | None = None
    period_offset: int = 0
    offsets: tuple[int, ...] = ()
    team_kinds: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    area_codes: tuple[str, ...] = ()
    remind_at: str | None = None


def add_deadline(session: Session, new: NewDeadline, *, plan_code: str | None,
                 today: date) -> Deadline:
    """Add an admin's deadline to a plan (by default the one whose phase holds `today`).

    Raises ValueError with a readable reason for anything that does not exist or fit.
    """
    if plan_code:
        plan = session.scalar(select(Plan).where(Plan.code == plan_code))
        if plan is None:
            raise ValueError(f"no plan {plan_code!r}")
    else:
        plan = session.scalar(select(Plan).where(Plan.phase_start <= today,
                                                 Plan.phase_end >= today)
                              .order_by(Plan.phase_start.desc()))
        if plan is None:
            raise ValueError(f"no loaded plan covers {today:%d/%m/%Y}; name one with --plan")
    if new.recurrence not in RECURRENCES:
        raise ValueError("recurrence must be yearly, quarterly or monthly")
    period = new.period or RECURRENCES[new.recurrence]
    if period not in PERIODS:
        raise ValueError("period must be year, quarter or month")
    if new.recurrence == "yearly" and not (new.month and 1 <= new.month <= 12):
        raise ValueError("a yearly deadline needs --month 1..12")
    if new.recurrence == "quarterly" and not (new.month and 1 <= new.month <= 3):
        raise ValueError("a quarterly deadline needs --month 1..3 (the month of the quarter)")
    if not 1 <= new.day <= 31:
        raise ValueError("day must be 1..31")
    if new.period_offset not in (0, -1):
        raise ValueError("period offset must be 0 or -1")
    if any(not 1 <= k <= 366 for k in new.offsets):
        raise ValueError("reminder offsets are days before the due date, 1..366")
    if new.remind_at is not None:
        try:
            datetime.strptime(new.remind_at, "%H:%M")
        except ValueError:
            raise ValueError("the reminder time must be HH:MM") from None
    bad_roles = set(new.roles) - set(ROLES)
    if bad_roles:
        raise ValueError(f"unknown role(s): {', '.join(sorted(bad_roles))}")
    kinds = set(session.scalars(select(TeamKind.code)))
    if set(new.team_kinds) - kinds:
        raise ValueError(f"unknown team kind(s): {', '.join(sorted(set(new.team_kinds) - kinds))}")
    areas = set(session.scalars(select(Area.code).where(Area.code.in_(new.area_codes))))
    if set(new.area_codes) - areas:
        raise ValueError(f"unknown area(s): {', '.join(sorted(set(new.area_codes) - areas))}")
    if session.scalar(select(Deadline.id).where(Deadline.plan_id == plan.id,
                                                Deadline.code == new.code)):
        raise ValueError(f"plan {plan.code} already has a deadline {new.code!r}")
    row = Deadline(plan_id=plan.id, code=new.code, name=new.name.strip(),
                   recurrence=new.recurrence,
                   month=new.month if new.recurrence != "monthly" else None, day=new.day,
                   remind_days_before=sorted(set(new.offsets), reverse=True), active=True,
                   period=period, period_offset=new.period_offset,
                   team_kinds=list(new.team_kinds), roles=list(new.roles),
                   area_codes=list(new.area_codes), remind_at=new.remind_at, origin="admin")
    session.add(row)
    session.flush()
    return row
