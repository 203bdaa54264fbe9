"""What is owed at a moment: reminders, snoozes, escalations to officers, the province digest.

`run_due(db, clock, now)` is a pure function of `now` and the database, so tests drive a year in
seconds and the scheduler only has to call it every minute. For each deadline's coming due date
only the latest reminder moment already passed is owed: after downtime across an offset that
one reminder is sent (if the deadline is still ahead), never a burst of the stale ones before
it; once the due date has begun nothing more is reminded, escalation begins instead. The
ledger's unique key decides what has been sent, so a restart or a second worker sends nothing
twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.dispatcher import render_reply
from bot.quiet_hours import QuietHours
from handlers.deadline_chat import (
    DigestLine,
    Missing,
    digest_reply,
    due_of,
    escalation_reply,
    reminder_reply,
)
from handlers.types import Reply
from storage import outbox
from storage import reminders as ledger
from storage.completeness import PeriodDue, TeamCompleteness, team_completeness
from storage.db import Database
from storage.deadlines import Occurrence, Rule, area_parents, load_rules, occurrences, subtree_ids
from storage.models import Area

log = logging.getLogger(__name__)

# Ahead of broadcasts (PRIORITY_BULK), behind replies to someone waiting. The payload's
# "purpose" tells the sender's quota what the message is (reminder, escalation, digest).
PRIORITY_REMINDER = 5
# Escalation on the due date, then weekly while teams are missing, for four weeks.
ESCALATION_DAYS = (0, 7, 14, 21, 28)
DIGEST_AHEAD_DAYS = 7


@dataclass(frozen=True)
class Clock:
    """The schedule's settings: time zone, quiet hours, the default local reminder time."""

    tz: ZoneInfo
    quiet: QuietHours = field(default_factory=lambda: QuietHours(None, None))
    remind_at: str = "08:00"

    def moment(self, day: date, hhmm: str | None = None) -> datetime:
        """`day` at the local time (the rule's or the default), moved out of quiet hours."""
        hour, minute = (int(x) for x in (hhmm or self.remind_at).split(":"))
        local = datetime.combine(day, time(hour, minute), tzinfo=self.tz)
        return self.quiet.next_allowed(local, self.tz)

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, time(0, 0), tzinfo=self.tz)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.tz).date()

    def quiet_now(self, now: datetime) -> bool:
        return self.quiet.contains(now.astimezone(self.tz).time())


def reminder_dues(rules: list[Rule], now: datetime, clock: Clock
                  ) -> list[tuple[Occurrence, PeriodDue]]:
    """Each due date still ahead whose reminder moment has come, with its latest passed offset."""
    today = clock.today(now)
    horizon = max((k for r in rules for k in r.offsets), default=0)
    found = []
    for o in occurrences(rules, today, today + timedelta(days=horizon + 1)):
        if now >= clock.start_of(o.due):
            continue  # the deadline has begun: escalation, not reminders
        passed = [k for k in o.rule.offsets
                  if k > 0 and clock.moment(o.due - timedelta(days=k), o.rule.remind_at) <= now]
        if passed:
            due = due_of(o)
            found.append((o, PeriodDue(due.deadline_id, due.period, due.start, due.end,
                                       due.team_kind_ids, due.area_ids, due.roles,
                                       offset_days=min(passed))))
    return found


@dataclass(frozen=True)
class Planned:
    """One reminder that would go, with why (for the preview)."""

    occurrence: Occurrence
    reminder: ledger.DueReminder


def preview(db: Database, clock: Clock, now: datetime) -> list[Planned]:
    """Who would be reminded at `now`, without writing anything."""
    if clock.quiet_now(now):
        return []
    with db.sessions() as session:
        pairs = reminder_dues(load_rules(session), now, clock)
        owed = ledger.due_reminders(session, [d for _, d in pairs])
    owed.sort(key=lambda r: (r.occ, r.team_name, r.member_id))
    return [Planned(pairs[r.occ][0], r) for r in owed]


@dataclass
class TickResult:
    reminders: int = 0
    snoozes: int = 0
    escalations: int = 0
    digests: int = 0

    @property
    def queued(self) -> int:
        return self.reminders + self.snoozes + self.escalations + self.digests


def _queue(session: Any, identity_id: int, channel: str, reply: Reply, locale: str,
           purpose: str, now: datetime) -> None:
    payload = render_reply(reply, locale)
    payload["purpose"] = purpose
    outbox.enqueue(session, identity_id, channel, payload, priority=PRIORITY_REMINDER, now=now)


def run_due(db: Database, clock: Clock, now: datetime) -> TickResult:
    """Queue everything owed at `now`, each in the transaction that writes its ledger row."""
    result = TickResult()
    if clock.quiet_now(now):
        return result
    with db.transaction() as session:
        rules = load_rules(session)
        pairs = reminder_dues(rules, now, clock)
        owed = ledger.due_reminders(session, [d for _, d in pairs])
        for ledger_id, r in ledger.claim(session, owed, kind="reminder", now=now):
            _queue(session, r.identity_id, r.channel, reminder_reply(pairs[r.occ][0], ledger_id),
                   r.locale, "reminder", now)
            result.reminders += 1
    with db.transaction() as session:
        result.snoozes = _snoozes(session, rules, clock, now)
    with db.transaction() as session:
        result.escalations = _escalate(session, rules, clock, now)
    with db.transaction() as session:
        result.digests = _digest(session, rules, clock, now)
    return result


def _snoozes(session: Any, rules: list[Rule], clock: Clock, now: datetime) -> int:
    sent = 0
    today = clock.today(now)
    for snooze in ledger.owed_snoozes(session, now):
        occurrence = next((o for o in occurrences([r for r in rules if r.id == snooze.deadline_id],
                                                  today, today + timedelta(days=800))
                           if o.period.key == snooze.period), None)
        who = ledger.contact(session, snooze.member_id)
        still_owed = (occurrence is not None and who is not None and who.team_id is not None
                      and now < clock.start_of(occurrence.due))
        if still_owed and occurrence is not None and who is not None and who.team_id:
            status = team_completeness(session, [due_of(occurrence)], team_ids=[who.team_id])
            still_owed = bool(status) and not status[0].reported
        if not still_owed or occurrence is None or who is None:
            ledger.skip_snooze(session, snooze.id)
            continue
        _queue(session, who.identity_id, who.channel,
               reminder_reply(occurrence, snooze.id, snoozed=True), who.locale, "reminder", now)
        sent += 1
    return sent


def _overdue(rules: list[Rule], clock: Clock, now: datetime) -> list[tuple[Occurrence, int]]:
    """Due dates begun, with the latest escalation day whose moment has come."""
    today = clock.today(now)
    found = []
    for o in occurrences(rules, today - timedelta(days=max(ESCALATION_DAYS)), today):
        passed = [d for d in ESCALATION_DAYS
                  if clock.moment(o.due + timedelta(days=d), o.rule.remind_at) <= now]
        if passed:
            found.append((o, max(passed)))
    return found


def _by_due(rows: list[TeamCompleteness]) -> dict[tuple[int, str], list[TeamCompleteness]]:
    grouped: dict[tuple[int, str], list[TeamCompleteness]] = {}
    for row in rows:
        grouped.setdefault((row.deadline_id, row.period), []).append(row)
    return grouped


def _escalate(session: Any, rules: list[Rule], clock: Clock, now: datetime) -> int:
    overdue = _overdue(rules, clock, now)
    if not overdue:
        return 0
    officers = ledger.officers(session, ("officer_commune", "officer_district"))
    if not officers:
        return 0
    status = _by_due(team_completeness(session, [due_of(o) for o, _ in overdue]))
    parents = area_parents(session)
    sent = 0
    for officer in officers:
        area = subtree_ids(parents, {officer.area_id})
        missing = []
        for o, days in overdue:
            teams = [t for t in status.get((o.rule.id, o.period.key), []) if t.area_id in area]
            late = tuple(t.team_name for t in teams if not t.reported)
            if late and ledger.claim_escalation(
                    session, deadline_id=o.rule.id, period=o.period.key,
                    member_id=officer.member_id, offset_days=ledger.escalation_offset(days),
                    identity_id=officer.identity_id, now=now):
                missing.append(Missing(o, len(teams), late))
        if missing:
            _queue(session, officer.identity_id, officer.channel,
                   escalation_reply(officer.area_name, missing), officer.locale, "escalation",
                   now)
            sent += 1
    return sent


def _digest(session: Any, rules: list[Rule], clock: Clock, now: datetime) -> int:
    today = clock.today(now)
    if clock.moment(today) > now:
        return 0
    admins = ledger.officers(session, ("officer_province",))
    if not admins:
        return 0
    around = occurrences(rules, today - timedelta(days=max(ESCALATION_DAYS)),
                         today + timedelta(days=DIGEST_AHEAD_DAYS))
    if not around:
        return 0
    status = _by_due(team_completeness(session, [due_of(o) for o in around]))
    parents = area_parents(session)
    names = dict(session.query(Area.id, Area.name).all())
    sent = 0
    for admin in admins:
        area = subtree_ids(parents, {admin.area_id})
        lines = []
        for o in around:
            teams = [t for t in status.get((o.rule.id, o.period.key), []) if t.area_id in area]
            if not teams:
                continue
            missing: dict[str, int] = {}
            for t in teams:
                if not t.reported:
                    top = _child_of(parents, admin.area_id, t.area_id)
                    missing[names.get(top, "")] = missing.get(names.get(top, ""), 0) + 1
            lines.append(DigestLine(o, sum(t.reported for t in teams), len(teams),
                                    tuple(sorted(missing.items()))))
        if lines and ledger.claim_digest(session, admin.member_id, today, now):
            _queue(session, admin.identity_id, admin.channel, digest_reply(today, lines),
                   admin.locale, "digest", now)
            sent += 1
    return sent


def _child_of(parents: dict[int, int | None], top: int, area: int) -> int:
    """The area directly under `top` on the way to `area` (a district of the province)."""
    chain = list(_ancestors(parents, area))
    return chain[chain.index(top) - 1] if top in chain and chain.index(top) > 0 else area


def _ancestors(parents: dict[int, int | None], area: int | None) -> Iterator[int]:
    while area is not None:
        yield area
        area = parents.get(area)
