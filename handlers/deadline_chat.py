"""Deadlines in chat: the reminder and its three buttons, the leader's team view, officers joining.

Reminder buttons carry the ledger row they belong to ("cmd:rem:nil:42"), so a press on an old
reminder, someone else's, or one whose deadline has passed is recognised and answered as stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from handlers.flow import STALE, Ctx
from handlers.menu import MENU_BUTTONS
from handlers.types import Button, Reply
from messages_vi import Text, _, join_lines
from storage import completeness, deadlines, reminders
from storage.completeness import PeriodDue
from storage.deadlines import Occurrence, Period

PAGE_SIZE = 8
# On the first days of a month the month so far is nearly empty: the view shows the last one.
MONTH_JUST_BEGUN_DAYS = 5
# The team view names the deadlines falling due within these days around today.
VIEW_BEFORE_DAYS, VIEW_AFTER_DAYS = 30, 60
MAX_DEADLINE_LINES = 3


def period_label(period: Period) -> Text:
    """"năm 2025", "quý 3/2025", "tháng 09/2025"."""
    year = str(period.start.year)
    if period.unit == "year":
        return _("the year {year}", year=year)
    if period.unit == "quarter":
        return _("quarter {quarter}/{year}", quarter=str(period.number), year=year)
    return _("month {month}/{year}", month=f"{period.start.month:02d}", year=year)


def due_of(occurrence: Occurrence) -> PeriodDue:
    rule = occurrence.rule
    return PeriodDue(rule.id, occurrence.period.key, occurrence.period.start,
                     occurrence.period.end, rule.team_kind_ids, rule.area_ids, rule.roles)


def reminder_reply(occurrence: Occurrence, ledger_id: int, *, snoozed: bool = False) -> Reply:
    """The reminder: which deadline, which period, by when; report, say "none", or later."""
    lines: list[Text | str] = [
        _("Reminder: {deadline} for {period} ({start} – {end}) is due before {due}. Your team "
          "has not reported for this period yet.", deadline=occurrence.rule.name,
          period=period_label(occurrence.period), start=occurrence.period.start,
          end=occurrence.period.end, due=occurrence.due),
        _("If your team ran no activity in this period, press No activity."),
    ]
    buttons = [Button(_("Report now"), f"cmd:rem:now:{ledger_id}"),
               Button(_("No activity"), f"cmd:rem:nil:{ledger_id}")]
    if not snoozed:
        buttons.append(Button(_("Remind me later"), f"cmd:rem:later:{ledger_id}"))
    return Reply.of(*lines, buttons=buttons)


@dataclass(frozen=True)
class Missing:
    """Teams of an officer's area that have not reported for one deadline's period."""

    occurrence: Occurrence
    total: int
    team_names: tuple[str, ...]


def escalation_reply(area_name: str, missing: list[Missing], *, limit: int = 15) -> Reply:
    """To a commune or district officer: the teams of their area that have not reported."""
    parts: list[Text | str] = [_("Teams in {area} that have not reported:", area=area_name)]
    for m in missing:
        names = list(m.team_names[:limit])
        more = len(m.team_names) - len(names)
        lines = [_("{deadline} for {period}, due before {due}: {missing} of {total} teams",
                   deadline=m.occurrence.rule.name, period=period_label(m.occurrence.period),
                   due=m.occurrence.due, missing=len(m.team_names), total=m.total)]
        lines += [_("– {team}", team=name) for name in names]
        if more:
            lines.append(_("and {count} more", count=more))
        parts.append(join_lines(lines))
    return Reply.of(*parts)


@dataclass(frozen=True)
class DigestLine:
    occurrence: Occurrence
    reported: int
    total: int
    missing_by_area: tuple[tuple[str, int], ...]


def digest_reply(day: date, lines: list[DigestLine]) -> Reply:
    """The province admins' daily digest: per deadline, how many teams reported, where not."""
    parts: list[Text | str] = [_("Reporting on {day}:", day=day)]
    for line in lines:
        rows = [_("{deadline} for {period}, due before {due}: {reported} of {total} teams "
                  "reported", deadline=line.occurrence.rule.name,
                  period=period_label(line.occurrence.period), due=line.occurrence.due,
                  reported=line.reported, total=line.total)]
        rows += [_("– {area}: {count} not reported", area=area, count=count)
                 for area, count in line.missing_by_area]
        parts.append(join_lines(rows))
    return Reply.of(*parts)


# --- button presses and the team view -------------------------------------------------------


def route(ctx: Ctx, command: str | None, commands: Mapping[str, Callable[[Ctx], None]]) -> bool:
    """Handle this module's commands; True when the message was handled here."""
    if command is None:
        return False
    if command == "team" or command.startswith("team:"):
        page = command[5:]
        show_team(ctx, int(page) if page.isdigit() else 1)
        return True
    if not command.startswith("rem:"):
        return False
    action, _sep, raw_id = command[4:].partition(":")
    member = ctx.identity.member
    entry = reminders.entry(ctx.session, int(raw_id)) if raw_id.isdigit() else None
    if entry is None or member is None or entry.member_id != member.id or member.team_id is None:
        ctx.say(STALE, buttons=MENU_BUTTONS)
        return True
    if action == "now":
        commands["report"](ctx)
    elif action == "nil":
        _record_nil(ctx, entry, member.team_id)
    elif action == "later":
        _snooze(ctx, entry)
    else:
        ctx.say(STALE, buttons=MENU_BUTTONS)
    return True


def _open_occurrence(ctx: Ctx, entry: reminders.LedgerEntry) -> Occurrence | None:
    """The entry's deadline period if it is still ahead (its due date not yet reached)."""
    rules = [r for r in deadlines.load_rules(ctx.session) if r.id == entry.deadline_id]
    return next((o for o in deadlines.occurrences(rules, ctx.today + timedelta(days=1),
                                                  ctx.today + timedelta(days=800))
                 if o.period.key == entry.period), None)


def _any_occurrence(ctx: Ctx, entry: reminders.LedgerEntry) -> Occurrence | None:
    rules = [r for r in deadlines.load_rules(ctx.session) if r.id == entry.deadline_id]
    return next((o for o in deadlines.occurrences(rules, ctx.today - timedelta(days=800),
                                                  ctx.today + timedelta(days=800))
                 if o.period.key == entry.period), None)


def _record_nil(ctx: Ctx, entry: reminders.LedgerEntry, team_id: int) -> None:
    occurrence = _any_occurrence(ctx, entry)
    member = ctx.identity.member
    if occurrence is None or member is None:
        ctx.say(STALE, buttons=MENU_BUTTONS)
        return
    reminders.record_nil(ctx.session, team_id=team_id, deadline_id=entry.deadline_id,
                         period=entry.period, member_id=member.id, now=ctx.now)
    ctx.say(_("Recorded: your team had no activity in {period}. Thank you; there will be no "
              "more reminders for it.", period=period_label(occurrence.period)),
            buttons=MENU_BUTTONS)


def _snooze(ctx: Ctx, entry: reminders.LedgerEntry) -> None:
    occurrence = _open_occurrence(ctx, entry)
    if occurrence is None:
        ctx.say(_("That deadline has passed; it can no longer be postponed."),
                buttons=MENU_BUTTONS)
        return
    if not reminders.snooze(ctx.session, entry, until=ctx.now + timedelta(days=1), now=ctx.now):
        ctx.say(_("A reminder can be postponed only once."), buttons=MENU_BUTTONS)
        return
    ctx.say(_("All right, I will remind you again tomorrow."), buttons=MENU_BUTTONS)


def view_window(today: date) -> tuple[date, date]:
    """The days the team view counts: this month so far, and the whole last month too while
    this one has just begun (on the 1st nobody has reported "this month" yet)."""
    this_month = deadlines.period_of("month", today)
    if today.day <= MONTH_JUST_BEGUN_DAYS:
        return deadlines.period_of("month", today, -1).start, today
    return this_month.start, today


def show_team(ctx: Ctx, page: int = 1) -> None:
    """For a team leader: the team's deadlines, then who reported in the month, page by page."""
    member = ctx.identity.member
    if member is None or member.role != "leader" or member.team_id is None:
        ctx.say(_("Only a team leader can see the team's reports."), buttons=MENU_BUTTONS)
        return
    start, end = view_window(ctx.today)
    rows = completeness.member_activity(ctx.session, member.team_id, start, end)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    parts: list[Text | str] = [_("{team}: reports from {start} to {end}, page {page} of "
                                 "{pages}", team=member.team_name, start=start, end=end,
                                 page=str(page), pages=str(pages))]
    if page == 1:
        status = _deadline_status(ctx, member.team_id)
        if status:
            parts.append(join_lines(status))
    shown = rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    parts.append(join_lines([
        _("{name}: {count} report(s), last on {date}", name=r.name, count=r.reports,
          date=r.last_date) if r.reports else _("{name}: no report yet", name=r.name)
        for r in shown]) if shown else _("The team has no members yet."))
    buttons = []
    if page > 1:
        buttons.append(Button(_("Previous page"), f"cmd:team:{page - 1}"))
    if page < pages:
        buttons.append(Button(_("Next page"), f"cmd:team:{page + 1}"))
    ctx.say(*parts, buttons=[*buttons, Button(_("Menu"), "cmd:menu")])


def _deadline_status(ctx: Ctx, team_id: int) -> list[Text]:
    """Reported or not, for each deadline of the team falling due around today."""
    found = deadlines.occurrences(deadlines.load_rules(ctx.session),
                                  ctx.today - timedelta(days=VIEW_BEFORE_DAYS),
                                  ctx.today + timedelta(days=VIEW_AFTER_DAYS))
    if not found:
        return []
    found = sorted(found, key=lambda o: abs((o.due - ctx.today).days))
    dues = [due_of(o) for o in found]
    status = {(c.deadline_id, c.period): c for c in
              completeness.team_completeness(ctx.session, dues, team_ids=[team_id])}
    lines = []
    for o in found:
        row = status.get((o.rule.id, o.period.key))
        if row is None:
            continue  # this team is not asked for this deadline
        text = (_("{deadline} for {period}, due before {due}: reported", deadline=o.rule.name,
                  period=period_label(o.period), due=o.due) if row.reported else
                _("{deadline} for {period}, due before {due}: not reported yet",
                  deadline=o.rule.name, period=period_label(o.period), due=o.due))
        lines.append(text)
    # One short screen on a phone: the deadlines nearest today, not every one around it.
    return lines[:MAX_DEADLINE_LINES]


def try_officer_code(ctx: Ctx, code: str) -> bool:
    """An officer invite ("CB…") makes this person the officer of an area; True if it was one."""
    if not code.startswith("CB"):
        return False
    joined = reminders.use_officer_invite(ctx.session, code, ctx.identity.id, ctx.now)
    if joined.status == "unknown":
        return False
    if joined.status != "ok":
        ctx.say(_("The code {code} can no longer be used. Ask the province for a new one.",
                  code=code))
        return True
    ctx.finish()
    ctx.refresh_identity()
    ctx.say(_("You are now an officer of {area}. On and after each reporting deadline I will "
              "tell you which teams of your area have not reported.", area=joined.area_name),
            buttons=MENU_BUTTONS)
    return True
