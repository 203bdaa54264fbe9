"""`duan8 content` and `duan8 broadcast`: the campaign library and sending it to members."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from bot.cli_common import Env, friendly, pass_env

# A progress bar with nothing moving for this long stops following (the worker may be down).
STALL_SECONDS = 60


@click.group()
def content() -> None:
    """The campaign content library: add, list and show items."""


@content.command("add")
@click.option("--title", required=True, help="The item's title.")
@click.option("--text", "body", required=True,
              help="The Vietnamese text (use @FILE to read it from a file).")
@click.option("--topic", default=None, metavar="CODE", help="A topic code from the plan.")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@click.option("--media", "media", multiple=True, type=click.Path(exists=True, dir_okay=False,
                                                                  path_type=Path),
              help="A photo, short MP4 video or PDF; repeat for several. Photos larger than "
                   "a platform accepts are made smaller.")
@click.option("--link", "links", multiple=True, help="A video or PDF by its address.")
@click.option("--use-in-village", is_flag=True,
              help="Members are meant to use it in the village (adds the \"Đã dùng ở thôn\" "
                   "button).")
@click.option("--locale", "locales", multiple=True, metavar="LANG:TITLE:TEXT",
              help="The item in another language, e.g. en:Title:Text.")
@pass_env
@friendly
def content_add(env: Env, title: str, body: str, topic: str | None, tags: tuple[str, ...],
                media: tuple[Path, ...], links: tuple[str, ...], use_in_village: bool,
                locales: tuple[str, ...]) -> None:
    """Add an item; prints its id as the last line."""
    from bot.content_media import prepare_upload
    from storage.content import ContentError, add_item, store_content_media

    if body.startswith("@"):
        body = Path(body[1:]).read_text(encoding="utf-8")
    others: dict[str, Any] = {}
    for spec in locales:
        lang, _sep, rest = spec.partition(":")
        other_title, _sep, other_text = rest.partition(":")
        if not lang or not other_text:
            raise click.BadParameter(f"expected LANG:TITLE:TEXT, got {spec!r}",
                                     param_hint="--locale")
        others[lang] = {"title": other_title, "text": other_text}
    for link in links:
        if not link.startswith(("https://", "http://")):
            raise click.BadParameter(f"not an http(s) address: {link}", param_hint="--link")
    database = env.prepared_db()
    try:
        with database.transaction() as session:
            ids = []
            for path in media:
                data, note = prepare_upload(path.read_bytes())
                if note:
                    click.echo(f"{path.name}: {note}")
                ids.append(store_content_media(session, env.config.media_path, data))
            item_id = add_item(session, title=title, text=body, topic_code=topic, tags=tags,
                               use_in_village=use_in_village, media=ids, links=links,
                               locales=others, actor="cli")
    except ContentError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"Content item added: {title}")
    click.echo(item_id)


@content.command("list")
@click.option("--topic", default=None, metavar="CODE", help="Only this topic.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_env
@friendly
def content_list(env: Env, topic: str | None, as_json: bool) -> None:
    """Items in the library, newest first."""
    from storage.content import list_items

    with env.prepared_db().sessions() as session:
        items = list_items(session, topic_code=topic, limit=1000)
    if as_json:
        click.echo(json.dumps([{"id": i.id, "version": i.version, "title": i.title,
                                "topic": i.topic_code, "tags": list(i.tags),
                                "use_in_village": i.use_in_village} for i in items],
                              ensure_ascii=False, indent=2))
        return
    if not items:
        click.echo("The library is empty.")
    for i in items:
        flags = " [village]" if i.use_in_village else ""
        click.echo(f"{i.id:>5}  v{i.version}  {i.topic_code or '-':<20} {i.title}{flags}")


@content.command("show")
@click.argument("item_id", type=int)
@click.option("--version", type=int, default=None, help="An earlier version.")
@pass_env
@friendly
def content_show(env: Env, item_id: int, version: int | None) -> None:
    """One item: its text, media, topic and tags."""
    from storage.content import get_item

    with env.prepared_db().sessions() as session:
        item = get_item(session, item_id, version=version)
    if item is None:
        click.echo(f"error: no content item {item_id}" + (f" version {version}" if version
                                                          else ""), err=True)
        sys.exit(2)
    click.echo(f"#{item.id} version {item.version}: {item.title}")
    click.echo(f"topic: {item.topic_name or '-'}; tags: {', '.join(item.tags) or '-'}; "
               f"use in village: {'yes' if item.use_in_village else 'no'}")
    click.echo("")
    click.echo(item.text)
    for link in item.links:
        click.echo(f"link: {link}")
    if item.media:
        click.echo(f"media: {', '.join(str(m) for m in item.media)}")
    for lang, other in sorted(item.locales.items()):
        click.echo(f"[{lang}] {other.get('title', '')}")


@click.group()
def broadcast() -> None:
    """Send a content item to members, and follow it: status, pause, resume, cancel, list."""


def _parse_at(value: str | None, env: Env) -> datetime | None:
    if value is None:
        return None
    try:
        local = datetime.strptime(value, "%Y-%m-%d %H:%M")
    except ValueError:
        raise click.BadParameter(f"expected \"YYYY-MM-DD HH:MM\", got {value!r}",
                                 param_hint="--at") from None
    return local.replace(tzinfo=env.config.tz)


@broadcast.command("send")
@click.option("--content", "item_id", type=int, required=True, help="The content item's id.")
@click.option("--area", "areas", multiple=True, metavar="CODE",
              help="Members whose team is in this area or under it; repeat for several.")
@click.option("--team-kind", "team_kinds", multiple=True, metavar="KIND",
              help="Members of teams of this kind (e.g. communication); repeatable.")
@click.option("--role", "roles", multiple=True, type=click.Choice(["member", "leader"]),
              help="Members with this role; repeatable.")
@click.option("--team", "teams", multiple=True, metavar="CODE", help="A team; repeatable.")
@click.option("--not-acknowledged", type=int, default=None, metavar="ITEM",
              help="Only members who have not said \"Đã nhận\" for item ITEM.")
@click.option("--at", "at", default=None, metavar="\"YYYY-MM-DD HH:MM\"",
              help="Send at this local time (TZ_NAME) instead of now.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait/--no-wait", default=None,
              help="Stay and show a progress bar while it is sent (the default on a "
                   "terminal when it goes now).")
@pass_env
@friendly
def broadcast_send(env: Env, item_id: int, areas: tuple[str, ...], team_kinds: tuple[str, ...],
                   roles: tuple[str, ...], teams: tuple[str, ...],
                   not_acknowledged: int | None, at: str | None, yes: bool,
                   wait: bool | None) -> None:
    """Queue a broadcast; shows the audience per channel, asks, and prints its id last."""
    from storage.broadcasts import Audience, BroadcastError, count_audience, create_broadcast
    from storage.models import utcnow

    audience = Audience(areas, team_kinds, roles, teams, not_acknowledged)
    send_at = _parse_at(at, env)
    database = env.prepared_db()
    try:
        with database.sessions() as session:
            count = count_audience(session, audience)
        click.echo(f"Audience ({audience.describe()}): {count.total} members")
        for channel, n in count.by_channel.items():
            click.echo(f"  {channel}: {n}")
        if count.no_channel:
            click.echo(f"  no channel that can take a message: {count.no_channel}")
        quiet = env.config.quiet_hours
        moment = send_at or utcnow()
        allowed = quiet.next_allowed(moment, env.config.tz)
        if allowed > moment:
            click.echo(f"Quiet hours ({quiet}): sending starts {allowed:%d/%m/%Y %H:%M}")
        if not yes and not click.confirm("Send?", default=False):
            click.echo("Nothing sent.")
            sys.exit(1)
        with database.transaction() as session:
            broadcast_id = create_broadcast(session, item_id, audience, send_at=send_at,
                                            actor="cli")
    except BroadcastError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    when = f"at {send_at:%d/%m/%Y %H:%M}" if send_at else "now"
    click.echo(f"Broadcast queued {when}; the worker sends it.")
    if wait is None:
        wait = send_at is None and sys.stderr.isatty()
    if wait:
        _follow(env, broadcast_id)
    click.echo(broadcast_id)


def _follow(env: Env, broadcast_id: int) -> None:
    """A progress bar over fan-out, then over sending, while a terminal watches."""
    from storage.broadcasts import broadcast_status

    database = env.db
    with database.sessions() as session:
        total = broadcast_status(session, broadcast_id).audience_total
    done, still_since = 0, time.monotonic()
    with click.progressbar(length=max(total, 1), label="Sent",
                           file=sys.stderr) as bar:
        while True:
            with database.sessions() as session:
                status = broadcast_status(session, broadcast_id)
            reached = (status.sent + status.failed + status.unreachable + status.outside_window
                       + status.held_quota)
            if reached > done:
                bar.update(reached - done)
                done, still_since = reached, time.monotonic()
            if status.state in ("done", "cancelled", "paused") or status.audience_total == 0:
                break
            if time.monotonic() - still_since > STALL_SECONDS:
                click.echo(f"\nNo progress for {STALL_SECONDS} s: is `duan8 worker` running? "
                           "The broadcast stays queued.", err=True)
                break
            time.sleep(1.0)


def _status_lines(status: Any) -> list[str]:
    lines = [f"Broadcast {status.id}: item #{status.item_id} \"{status.title}\" — "
             f"{status.state}", f"audience: {status.audience.describe()}"]
    lines += [f"  {key}: {value}" for key, value in status.counts().items()]
    if status.people_reached:
        lines.append(f"  people reached in villages: {status.people_reached}")
    if status.cancelled:
        lines.append(f"  cancelled before sending: {status.cancelled}")
    for reason, n in status.failures.items():
        lines.append(f"  failed ({n}): {reason}")
    for channel, by in sorted(status.by_channel.items()):
        lines.append(f"  {channel}: " + ", ".join(f"{s} {n}" for s, n in sorted(by.items())))
    return lines


@broadcast.command("status")
@click.argument("broadcast_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as a JSON object.")
@pass_env
@friendly
def broadcast_status_cmd(env: Env, broadcast_id: int, as_json: bool) -> None:
    """Live counts: audience, queued, sent, failed, held, unreachable, acknowledged, used."""
    from storage.broadcasts import BroadcastError, broadcast_status

    try:
        with env.prepared_db().sessions() as session:
            status = broadcast_status(session, broadcast_id)
    except BroadcastError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        data: dict[str, Any] = dict(status.counts())
        data.update({"id": status.id, "state": status.state, "people_reached":
                     status.people_reached, "cancelled": status.cancelled,
                     "failures": status.failures, "by_channel": status.by_channel})
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for line in _status_lines(status):
        click.echo(line)


def _control(env: Env, broadcast_id: int, action: str) -> None:
    from storage import broadcasts
    from storage.models import utcnow

    try:
        with env.prepared_db().transaction() as session:
            if action == "pause":
                broadcasts.pause(session, broadcast_id)
                click.echo(f"Broadcast {broadcast_id} paused.")
            elif action == "resume":
                broadcasts.resume(session, broadcast_id, now=utcnow())
                click.echo(f"Broadcast {broadcast_id} resumed.")
            else:
                stopped = broadcasts.cancel(session, broadcast_id, now=utcnow())
                click.echo(f"Broadcast {broadcast_id} cancelled; {stopped} messages not sent.")
    except broadcasts.BroadcastError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@broadcast.command("pause")
@click.argument("broadcast_id", type=int)
@pass_env
@friendly
def broadcast_pause(env: Env, broadcast_id: int) -> None:
    """Hold a broadcast: nothing more is queued or sent until it is resumed."""
    _control(env, broadcast_id, "pause")


@broadcast.command("resume")
@click.argument("broadcast_id", type=int)
@pass_env
@friendly
def broadcast_resume(env: Env, broadcast_id: int) -> None:
    """Go on with a paused broadcast."""
    _control(env, broadcast_id, "resume")


@broadcast.command("cancel")
@click.argument("broadcast_id", type=int)
@pass_env
@friendly
def broadcast_cancel(env: Env, broadcast_id: int) -> None:
    """Stop a broadcast: messages not yet sent are never sent."""
    _control(env, broadcast_id, "cancel")


@broadcast.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@pass_env
@friendly
def broadcast_list(env: Env, limit: int) -> None:
    """Recent broadcasts with their progress."""
    from storage.broadcasts import list_broadcasts

    with env.prepared_db().sessions() as session:
        rows = list_broadcasts(session, limit=limit)
    if not rows:
        click.echo("No broadcasts yet.")
    tz = env.config.tz
    for s in rows:
        click.echo(f"{s.id:>5}  {s.state:<11} {s.send_at.astimezone(tz):%d/%m/%Y %H:%M}  "
                   f"sent {s.sent}/{s.audience_total}  #{s.item_id} {s.title}")


@broadcast.command("quota")
@click.option("--month", default=None, metavar="YYYY-MM", help="Another month than this one.")
@pass_env
@friendly
def broadcast_quota(env: Env, month: str | None) -> None:
    """Zalo OA proactive messages this month: used by kind, held back, and what is left."""
    from storage.models import utcnow
    from storage.proactive import month_usage

    month = month or utcnow().astimezone(env.config.tz).strftime("%Y-%m")
    with env.prepared_db().sessions() as session:
        usage = month_usage(session, "zalo", month)
    quota, reserve = env.config.zalo_proactive_quota, env.config.zalo_proactive_reserve
    click.echo(f"Zalo OA proactive messages, {month}: {usage.used} of {quota} used "
               f"({reserve} kept for reminders)")
    for kind, (used, held) in sorted(usage.by_kind.items()):
        click.echo(f"  {kind}: {used} sent, {held} held until the member writes")
    click.echo(f"left for broadcasts: {max(0, quota - reserve - usage.used)}; "
               f"for reminders: {max(0, quota - usage.used)}")
