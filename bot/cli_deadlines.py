"""`duan8 deadlines`, `duan8 reminders preview` and `duan8 officers invite`."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import click

from bot.cli_common import Env, friendly, pass_env


@click.group()
def deadlines() -> None:
    """Reporting deadlines: the plan's, and those an admin adds."""


@deadlines.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_env
@friendly
def deadlines_list(env: Env, as_json: bool) -> None:
    """Active deadlines, who must report, and their next due date inside a loaded phase."""
    from storage.deadlines import load_rules, occurrences
    from storage.models import utcnow

    database = env.prepared_db()
    today = utcnow().astimezone(env.config.tz).date()
    with database.sessions() as session:
        rules = load_rules(session)
    items: list[dict[str, Any]] = []
    for rule in rules:
        nxt = next(iter(occurrences([rule], today, today + timedelta(days=800))), None)
        items.append({
            "id": rule.id, "code": rule.code, "name": rule.name, "origin": rule.origin,
            "recurrence": rule.recurrence, "month": rule.month, "day": rule.day,
            "period": rule.period, "period_offset": rule.period_offset,
            "remind_days_before": list(rule.offsets), "remind_at": rule.remind_at,
            "phase": [rule.phase_start.isoformat(), rule.phase_end.isoformat()],
            "next_due": nxt.due.isoformat() if nxt else None,
            "next_period": nxt.period.key if nxt else None,
        })
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    if not items:
        click.echo("No active deadlines.")
    for item in items:
        due = (f"next due before {date.fromisoformat(item['next_due']):%d/%m/%Y} for "
               f"{item['next_period']}" if item["next_due"] else "no due date left in its phase")
        click.echo(f"{item['code']} ({item['origin']}): {item['name']}\n"
                   f"  {item['recurrence']}, period {item['period']}"
                   f"{' (previous)' if item['period_offset'] else ''}; {due}; reminders "
                   f"{', '.join(str(k) for k in item['remind_days_before'])} day(s) before")


def _csv(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


@deadlines.command("add")
@click.option("--code", required=True, help="Short code, unique in the plan.")
@click.option("--name", required=True, help="The name members read in reminders.")
@click.option("--recurrence", type=click.Choice(["yearly", "quarterly", "monthly"]),
              required=True)
@click.option("--day", type=click.IntRange(1, 31), required=True,
              help="Due before this day of the month (31 = the month's last day).")
@click.option("--month", type=click.IntRange(1, 12), default=None,
              help="Yearly: the month; quarterly: the month of the quarter, 1..3.")
@click.option("--period", type=click.Choice(["year", "quarter", "month"]), default=None,
              help="The period a due date asks about (default: the recurrence's).")
@click.option("--previous-period", is_flag=True,
              help="Ask about the period before the due date's (e.g. last month).")
@click.option("--remind", "remind", default="", metavar="DAYS,…",
              help="Days before the due date to remind (default 14,7,3,1).")
@click.option("--remind-at", default=None, metavar="HH:MM",
              help="Local time of reminders (default REMINDER_TIME).")
@click.option("--team-kind", "team_kinds", multiple=True, metavar="KIND",
              help="Only teams of this kind (repeat; default every kind).")
@click.option("--role", "roles", multiple=True, type=click.Choice(["member", "leader"]),
              help="Only members with this role are reminded (repeat; default everyone).")
@click.option("--area", "areas", multiple=True, metavar="CODE",
              help="Only teams in this area or under it (repeat; default everywhere).")
@click.option("--plan", "plan_code", default=None,
              help="The plan it belongs to (default: the one whose phase holds today).")
@pass_env
@friendly
def deadlines_add(env: Env, code: str, name: str, recurrence: str, day: int,
                  month: int | None, period: str | None, previous_period: bool, remind: str,
                  remind_at: str | None, team_kinds: tuple[str, ...], roles: tuple[str, ...],
                  areas: tuple[str, ...], plan_code: str | None) -> None:
    """Add a deadline, e.g. a monthly team report due before the 25th."""
    from storage.deadlines import NewDeadline, add_deadline
    from storage.models import utcnow

    try:
        offsets = tuple(int(x) for x in _csv((remind,)))
    except ValueError:
        raise click.BadParameter("whole numbers of days, e.g. 14,7,3,1",
                                 param_hint="--remind") from None
    database = env.prepared_db()
    today = utcnow().astimezone(env.config.tz).date()
    with database.transaction() as session:
        try:
            row = add_deadline(session, NewDeadline(
                code=code, name=name, recurrence=recurrence, day=day, month=month,
                period=period, period_offset=-1 if previous_period else 0, offsets=offsets,
                team_kinds=_csv(team_kinds), roles=_csv(roles), area_codes=_csv(areas),
                remind_at=remind_at), plan_code=plan_code, today=today)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        deadline_id = row.id
    click.echo(f"added deadline {code}")
    click.echo(deadline_id)


@click.group()
def reminders() -> None:
    """Reminders before deadlines (sent by the worker)."""


@reminders.command("preview")
@click.option("--at", "at", required=True, metavar='"YYYY-MM-DD HH:MM"',
              help="A local time in TZ_NAME.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list of {deadline, period, team, member, channel}.")
@pass_env
@friendly
def reminders_preview(env: Env, at: str, as_json: bool) -> None:
    """Who would be reminded at that local time and why; nothing is sent or recorded."""
    from bot.reminders import Clock, preview

    try:
        moment = datetime.strptime(at.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=env.config.tz)
    except ValueError:
        raise click.BadParameter('expected "YYYY-MM-DD HH:MM"', param_hint="--at") from None
    config = env.config
    planned = preview(env.prepared_db(), Clock(config.tz, config.quiet_hours,
                                                config.reminder_time), moment)
    if as_json:
        click.echo(json.dumps([{
            "deadline": p.occurrence.rule.code, "period": p.occurrence.period.key,
            "team": p.reminder.team_name, "member": p.reminder.member_name,
            "channel": p.reminder.channel, "member_id": p.reminder.member_id,
            "due": p.occurrence.due.isoformat(), "days_before": p.reminder.offset_days,
        } for p in planned], ensure_ascii=False, indent=2))
        return
    if config.quiet_hours.contains(moment.time()):
        click.echo(f"{at} is inside quiet hours ({config.quiet_hours}): nothing is sent then.")
        return
    if not planned:
        click.echo("Nobody would be reminded at that time.")
        return
    for p in planned:
        r, o = p.reminder, p.occurrence
        click.echo(f"{r.member_name or '(no name)'} (#{r.member_id}, {r.role}) via {r.channel} "
                   f"— {r.team_name}: {o.rule.code} for {o.period.key} due before "
                   f"{o.due:%d/%m/%Y}, {r.offset_days} day(s) before; the team has not "
                   "reported for the period")
    click.echo(f"{len(planned)} reminder(s)")


@click.group()
def officers() -> None:
    """Commune, district and province officers who follow reporting in chat."""


@officers.command("invite")
@click.option("--area", "area_code", required=True, metavar="CODE",
              help="The officer's area (codes from `plan show --json`).")
@click.option("--level", type=click.Choice(["commune", "district", "province"]),
              required=True, help="commune/district: told which teams have not reported; "
                                  "province: the daily digest.")
@click.option("--days", default=14, show_default=True, help="Days until the code expires.")
@click.option("--max-uses", default=5, show_default=True)
@pass_env
@friendly
def officers_invite(env: Env, area_code: str, level: str, days: int, max_uses: int) -> None:
    """Make an officer invite code for an area; the officer types it in the chat."""
    from storage.models import utcnow
    from storage.reminders import create_officer_invite

    database = env.prepared_db()
    with database.transaction() as session:
        try:
            code, name = create_officer_invite(session, area_code, f"officer_{level}",
                                               actor="cli", now=utcnow(), days=days,
                                               max_uses=max_uses)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{code}\t{name}\tofficer_{level}\texpires in {days} days")
