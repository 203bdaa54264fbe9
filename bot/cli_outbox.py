"""`duan8 outbox`: what the outbox delivered, and whom it could not reach, for follow-up."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import click

from bot.cli_common import Env, friendly, pass_env
from storage.delivery import ChannelTrouble, DeliverySummary, UnreachedMember

# Columns in the order a message moves through the statuses; any status added later follows.
STATUS_ORDER = ["pending", "sending", "sent", "diverted", "caught_up", "outside_window",
                "failed", "unreachable"]


@click.group()
def outbox() -> None:
    """The outbox: delivery counts, and the members it could not reach."""


@outbox.command("status")
@click.option("--since", "days", type=click.IntRange(min=1), default=7, show_default=True,
              metavar="DAYS", help="Look at messages queued in the last DAYS days.")
@click.option("--channel", default=None,
              help="Only this channel: zalo, zalo_bot, facebook, telegram, webchat.")
@click.option("--area", "area_code", default=None, metavar="CODE",
              help="Only members whose team is in this area or under it (a district, a "
                   "commune…; codes from `plan show --json`).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON; times are ISO 8601 in TZ_NAME.")
@pass_env
@friendly
def outbox_status(env: Env, days: int, channel: str | None, area_code: str | None,
                  as_json: bool) -> None:
    """Messages per channel and status, then the members not reached, newest problem first."""
    from storage.delivery import delivery_summary, summary_as_dict
    from storage.models import utcnow

    database = env.prepared_db()
    now = utcnow()
    with database.sessions() as session:
        try:
            summary = delivery_summary(session, now=now, since=now - timedelta(days=days),
                                       channel=channel.lower() if channel else None,
                                       area_code=area_code)
        except LookupError as exc:
            raise click.BadParameter(str(exc), param_hint="--area") from None
    tz = env.config.tz
    if as_json:
        click.echo(json.dumps(summary_as_dict(summary, tz), ensure_ascii=False, indent=2))
        return
    click.echo(f"Messages queued {_when(summary.since, tz)} – {_when(summary.until, tz)} "
               f"({tz.key})")
    _echo_counts(summary)
    _echo_members(summary, tz)


def _when(value: datetime | None, tz: ZoneInfo) -> str:
    """Day first, as dates are written in Vietnam."""
    return value.astimezone(tz).strftime("%d/%m/%Y %H:%M") if value else "never"


def _echo_counts(summary: DeliverySummary) -> None:
    if not summary.counts:
        click.echo("\nNo messages in this period.")
        return
    seen = {c.status for c in summary.counts}
    statuses = [s for s in STATUS_ORDER if s in seen] + sorted(seen - set(STATUS_ORDER))
    table: dict[str, dict[str, int]] = {}
    for count in summary.counts:
        table.setdefault(count.channel, {})[count.status] = count.count
    header = ["channel", *statuses, "total"]
    rows = [[name, *(str(by.get(s, 0)) for s in statuses), str(sum(by.values()))]
            for name, by in sorted(table.items())]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    click.echo("")
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(row[1:], widths[1:],
                                                                           strict=True)]
        click.echo("  ".join(cells).rstrip())
    if "outside_window" in seen:
        click.echo("(outside_window: held by the platform's window until the member writes "
                   "again)")


def _echo_members(summary: DeliverySummary, tz: ZoneInfo) -> None:
    if not summary.members:
        click.echo("\nEvery member was reached.")
    else:
        click.echo(f"\nMembers not reached: {len(summary.members)} (newest problem first)")
        for number, member in enumerate(summary.members, 1):
            click.echo(f"\n{number}. {_who(member)}")
            click.echo(f"   last delivered on any channel: "
                       f"{_when(member.last_delivered_at, tz)}")
            for trouble in member.channels:
                _echo_trouble(trouble, tz)
    if summary.unlinked_identities:
        click.echo(f"\nAlso {summary.unlinked_identities} chat(s) with no member behind them "
                   "(never joined, or their data was erased) could not be reached.")


def _who(member: UnreachedMember) -> str:
    name = "(name erased)" if member.erased else member.name or "(no name)"
    place = ", ".join(p for p in (member.village, member.commune) if p)
    team = member.team_name or "no team"
    return f"{name} (#{member.member_id}, {member.role}) — {team}" + (
        f"; {place}" if place else "")


def _echo_trouble(trouble: ChannelTrouble, tz: ZoneInfo) -> None:
    pad = " " * (len(trouble.channel) + 5)
    if trouble.marked_unreachable:
        since = (f" since {_when(trouble.unreachable_since, tz)}"
                 if trouble.unreachable_since else "")
        click.echo(f"   {trouble.channel}: UNREACHABLE{since}: {trouble.unreachable_reason}")
    parts = [f"{n} {label}" for n, label in ((trouble.held, "held until they write again"),
                                            (trouble.failed, "failed"),
                                            (trouble.unreachable, "unreachable")) if n]
    if parts:
        prefix = pad if trouble.marked_unreachable else f"   {trouble.channel}: "
        oldest, newest = trouble.oldest_problem_at, trouble.newest_problem_at
        dates = (f"on {_when(oldest, tz)}" if oldest == newest
                 else f"oldest {_when(oldest, tz)}, newest {_when(newest, tz)}")
        click.echo(f"{prefix}{', '.join(parts)}; {dates}")
        if trouble.oldest_problem_error != trouble.unreachable_reason:
            click.echo(f"{pad}reason: {trouble.oldest_problem_error or 'unknown'}")
    click.echo(f"{pad}last wrote to us: {_when(trouble.last_inbound_at, tz)}; last delivered "
               f"here: {_when(trouble.last_sent_at, tz)}")
