"""The `duan8` command: run the service, manage the database, the plan, admins and invites."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from bot.cli_access import member, team_members
from bot.cli_common import Env, friendly, pass_env
from bot.cli_content import broadcast, content
from bot.cli_deadlines import deadlines, officers, reminders
from bot.cli_export import export
from bot.cli_outbox import outbox
from bot.cli_safeguarding import consent, member_erase, retention, safeguarding
from bot.config import Config

log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.version_option(package_name="duan8", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """duan8: chatbot for Project 8 community communication teams."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic narrates every step at INFO; its warnings are what a person needs. httpx logs
    # each request URL at INFO, and Telegram's token is part of its URLs.
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ctx.ensure_object(Env)


# --- processes -----------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@pass_env
@friendly
def run(env: Env, host: str) -> None:
    """Web and worker in one process on this machine (the laptop default)."""
    from bot.serve import run_all

    run_all(env.config, env.prepared_db(), host=host)


@cli.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--workers", default=2, show_default=True, envvar="WEB_CONCURRENCY",
              help="gunicorn worker processes (also WEB_CONCURRENCY).")
@pass_env
@friendly
def web(env: Env, host: str, workers: int) -> None:
    """The web process under gunicorn: webhooks, web chat, admin."""
    from bot.serve import run_gunicorn

    env.prepared_db()
    run_gunicorn(host=host, port=env.config.port, workers=workers)


@cli.command()
@pass_env
@friendly
def worker(env: Env) -> None:
    """The worker: delivers the outbox (and, later, schedules and polls)."""
    from bot.serve import run_worker

    run_worker(env.config, env.prepared_db())


# --- database and plan ---------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_env
@friendly
def db_upgrade(env: Env) -> None:
    """Apply every migration the database does not have yet."""
    from storage import migrate

    migrate.upgrade(env.db.engine)
    click.echo(f"database at revision {migrate.current_revision(env.db.engine)}")


@cli.group()
def plan() -> None:
    """The provincial plan: areas, indicators, activity types, deadlines."""


@plan.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@pass_env
@friendly
def plan_load(env: Env, file: Path) -> None:
    """Load or reload a plan file; rows keep their ids by code, so reloading is safe."""
    from storage import migrate
    from storage.plan_file import read_plan_file
    from storage.plans import load_plan

    spec = read_plan_file(file)
    migrate.upgrade(env.db.engine)
    with env.db.transaction() as session:
        summary = load_plan(session, spec, actor="cli")
    click.echo(
        f"plan {spec.code}: {summary.created} created, {summary.updated} updated, "
        f"{summary.deactivated} deactivated"
    )


@plan.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the loaded plan as JSON.")
@pass_env
@friendly
def plan_show(env: Env, as_json: bool) -> None:
    """Show the loaded plan."""
    from storage.plans import current_plan, plan_as_dict

    database = env.prepared_db()
    with database.sessions() as session:
        loaded = current_plan(session)
        if loaded is None:
            raise click.ClickException("no plan is loaded; run `duan8 plan load FILE`")
        data = plan_as_dict(session, loaded)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"{data['name']} ({data['phase_start']} – {data['phase_end']})")
    _echo_tree(data["areas"], 0)
    for ind in data["indicators"]:
        click.echo(f"  {ind['code']}: {ind['target']} — {ind['name']}")


def _echo_tree(node: dict[str, Any] | None, depth: int) -> None:
    if node is None or depth > 2:
        return
    count = len(node["children"])
    click.echo(f"{'  ' * depth}{node['name']} [{node['level']}] ({count})")
    for child in node["children"]:
        _echo_tree(child, depth + 1)


# --- people --------------------------------------------------------------------------------


@cli.group()
def admin() -> None:
    """Administrators of the web console."""


@admin.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["province", "district", "commune", "viewer",
                                           "safeguarding"]),
              default="province", show_default=True)
@click.option("--area", "area_code", default=None, help="Area code the admin is limited to.")
@click.password_option(help="Asked for when not given.")
@pass_env
@friendly
def admin_create(env: Env, username: str, role: str, area_code: str | None,
                 password: str) -> None:
    """Create an administrator (or reset the password of an existing one)."""
    from storage.people import UnknownArea, create_admin

    if len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="--password")
    database = env.prepared_db()
    try:
        with database.transaction() as session:
            created = create_admin(session, username, password, role=role, area_code=area_code)
    except UnknownArea:
        raise click.BadParameter(f"no area with code {area_code!r}", param_hint="--area") from None
    click.echo(f"admin {username} {'created' if created else 'updated'}")


@cli.command()
@click.option("--user", default="console-tester", show_default=True,
              help="Who you are to the bot; another name starts another conversation.")
@pass_env
@friendly
def chat(env: Env, user: str) -> None:
    """Talk to the bot in this terminal; buttons are numbered, /photo FILE sends a photo."""
    from bot.channels.console import ConsoleChat
    from bot.dispatcher import Dispatcher

    database = env.prepared_db()
    click.echo("duan8 — /quit to leave, a number to press a button, /photo FILE to send a photo")
    console = ConsoleChat(Dispatcher(env.config, database), database, user, sys.stdout)
    console.deliver()
    console.loop(sys.stdin)


@cli.group()
def team() -> None:
    """Teams (a village's communication team, a TKVVTB group, a club…)."""


@team.command("create")
@click.option("--village", "area_code", required=True, help="Area code (see `plan show --json`).")
@click.option("--kind", default="communication", show_default=True, help="Team kind code.")
@pass_env
@friendly
def team_create(env: Env, area_code: str, kind: str) -> None:
    """Create (or show) the team of a kind in an area, and print its code."""
    from storage.members import ensure_village_team
    from storage.search import area_id_by_code

    database = env.prepared_db()
    with database.transaction() as session:
        area_id = area_id_by_code(session, area_code)
        if area_id is None:
            raise click.ClickException(f"no area with code {area_code!r}")
        try:
            created = ensure_village_team(session, area_id, kind)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{created.code}\t{created.name}")


@cli.group()
def invite() -> None:
    """Invite codes that let a volunteer join a team."""


@invite.command("create")
@click.option("--team", "team_code", required=True, help="Team code (see `team create`).")
@click.option("--role", type=click.Choice(["member", "leader"]), default="member",
              show_default=True)
@click.option("--days", default=30, show_default=True, help="Days until the code expires.")
@click.option("--max-uses", type=click.IntRange(min=1), default=None,
              help="How many people may use it  [default: 50; 1 for a leader's invite]")
@pass_env
@friendly
def invite_create(env: Env, team_code: str, role: str, days: int, max_uses: int | None
                  ) -> None:
    """Make an invite code for a team; a leader's invite makes its user the team leader."""
    max_uses = max_uses or (1 if role == "leader" else 50)
    from storage.members import create_invite
    from storage.models import utcnow

    database = env.prepared_db()
    with database.transaction() as session:
        try:
            code, name = create_invite(session, team_code, role=role, days=days,
                                       max_uses=max_uses, actor="cli", now=utcnow())
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{code}\t{name}\t{role}\texpires in {days} days")


@invite.command("revoke")
@click.argument("code")
@pass_env
@friendly
def invite_revoke(env: Env, code: str) -> None:
    """Stop an invite code from working."""
    from storage.members import revoke_invite
    from storage.models import utcnow

    database = env.prepared_db()
    with database.transaction() as session:
        if not revoke_invite(session, code.replace(" ", ""), actor="cli", now=utcnow()):
            raise click.ClickException(f"no invite code {code!r}")
    click.echo(f"revoked {code.upper()}")


@cli.group()
def telegram() -> None:
    """Telegram: webhook (public HTTPS URL) or polling (the default, no URL needed)."""


def _telegram_config(env: Env) -> Config:
    if not env.config.telegram_bot_token:
        raise click.ClickException("TELEGRAM_BOT_TOKEN is not set")
    return env.config


@telegram.command("set-webhook")
@click.argument("url")
@pass_env
@friendly
def telegram_set_webhook(env: Env, url: str) -> None:
    """Have Telegram POST updates to URL (https://…/webhooks/telegram); stops polling."""
    import asyncio

    from bot.channels.telegram_bot import set_webhook

    if not url.startswith("https://"):
        raise click.BadParameter("Telegram only calls https:// URLs", param_hint="URL")
    try:
        asyncio.run(set_webhook(_telegram_config(env), env.prepared_db(), url))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Telegram webhook set to {url}; the worker no longer polls")


@telegram.command("delete-webhook")
@pass_env
@friendly
def telegram_delete_webhook(env: Env) -> None:
    """Remove the webhook; the worker fetches updates by polling again."""
    import asyncio

    from bot.channels.telegram_bot import delete_webhook

    asyncio.run(delete_webhook(_telegram_config(env), env.prepared_db()))
    click.echo("Telegram webhook removed; the worker polls for updates")


@cli.group()
def facebook() -> None:
    """Facebook Messenger: the Page's Get Started button and persistent menu."""


@facebook.command("setup")
@pass_env
@friendly
def facebook_setup(env: Env) -> None:
    """Set the Get Started button and the Vietnamese persistent menu on the Page."""
    import asyncio

    from bot.channels.facebook_bot import GraphError, setup_profile

    if not env.config.fb_page_access_token:
        raise click.ClickException("FB_PAGE_ACCESS_TOKEN is not set")
    try:
        answer = asyncio.run(setup_profile(env.config))
    except GraphError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Messenger profile set (Get Started, menu): {answer.get('result', answer)}")


@cli.group()
def zalo() -> None:
    """Zalo Official Account: first-time authorisation (the worker keeps tokens fresh after)."""


@zalo.command("authorize")
@click.option("--redirect-uri", required=True, metavar="URL",
              help="The callback URL registered for the Zalo app (developers.zalo.me).")
@pass_env
@friendly
def zalo_authorize(env: Env, redirect_uri: str) -> None:
    """Open Zalo's permission page, paste back the code, and store the OA's token pair."""
    import asyncio

    from bot.channels.zalo_tokens import (
        ZaloTokenError,
        authorize_url,
        code_from_redirect,
        exchange_code,
    )

    config = env.config
    if not config.zalo_app_id or not config.zalo_app_secret:
        raise click.ClickException("ZALO_APP_ID and ZALO_APP_SECRET must be set")
    url, verifier, state = authorize_url(config, redirect_uri)
    click.echo("1. Signed in to Zalo as an admin of the Official Account, open:")
    click.echo(f"   {url}")
    click.echo(f"2. Allow access; Zalo then sends the browser to {redirect_uri}?code=…")
    answer = click.prompt("3. Paste that whole address (or only the code)")
    try:
        code = code_from_redirect(answer, state)
        pair = asyncio.run(exchange_code(config, env.prepared_db(), code, verifier))
    except (ValueError, ZaloTokenError) as exc:
        raise click.ClickException(str(exc)) from None
    until = (pair.access_expires_at.strftime("%Y-%m-%d %H:%M UTC")
             if pair.access_expires_at else "unknown")
    click.echo(f"Zalo tokens stored (access token valid until {until}); the worker keeps "
               "them fresh from now on.")


@cli.group("zalo-bot")
def zalo_bot() -> None:
    """Zalo Bot Platform: webhook (public HTTPS URL) or polling (the default, no URL needed)."""


def _zalo_bot_config(env: Env) -> Config:
    if not env.config.zalo_bot_token:
        raise click.ClickException("ZALO_BOT_TOKEN is not set")
    return env.config


@zalo_bot.command("set-webhook")
@click.argument("url")
@pass_env
@friendly
def zalo_bot_set_webhook(env: Env, url: str) -> None:
    """Have Zalo POST events to URL (https://…/webhooks/zalo-bot); stops polling."""
    import asyncio

    from bot.channels.zalo_bot_api import ZaloBotError, set_webhook

    if not url.startswith("https://"):
        raise click.BadParameter("Zalo only calls https:// URLs", param_hint="URL")
    try:
        asyncio.run(set_webhook(_zalo_bot_config(env), env.prepared_db(), url))
    except (ValueError, ZaloBotError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Zalo Bot webhook set to {url}; the worker no longer polls")


@zalo_bot.command("delete-webhook")
@pass_env
@friendly
def zalo_bot_delete_webhook(env: Env) -> None:
    """Remove the webhook; the worker fetches events by polling again."""
    import asyncio

    from bot.channels.zalo_bot_api import ZaloBotError, delete_webhook

    try:
        asyncio.run(delete_webhook(_zalo_bot_config(env), env.prepared_db()))
    except ZaloBotError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Zalo Bot webhook removed; the worker polls for events")


@cli.group()
def i18n() -> None:
    """Message catalogs (messages_vi): extract, update, compile."""


@i18n.command("extract")
def i18n_extract() -> None:
    """Collect every user-facing message from the code into messages_vi/messages.pot."""
    from messages_vi import catalogs

    catalogs.extract()


@i18n.command("update")
def i18n_update() -> None:
    """Merge new messages into the vi and en catalogs (after `extract`)."""
    from messages_vi import catalogs

    catalogs.update()


@i18n.command("compile")
def i18n_compile() -> None:
    """Check and compile the catalogs to .mo files (optional: they also compile at start)."""
    from messages_vi import catalogs

    problems = catalogs.compile_all()
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)


cli.add_command(outbox)
for _group in (safeguarding, consent, retention, member):
    cli.add_command(_group)
member.add_command(member_erase)
team.add_command(team_members)
cli.add_command(export)
cli.add_command(content)
cli.add_command(broadcast)
for _group in (deadlines, reminders, officers):
    cli.add_command(_group)


def main() -> None:
    """Entry point of the console script."""
    cli(obj=Env())
