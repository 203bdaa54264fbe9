"""The `duan8` command: the service's processes and its database here; every other group lives
beside what it operates (bot/cli_<topic>.py, bot/channels/<platform>/cli.py, messages_vi/cli.py)
and is registered below."""

from __future__ import annotations

import logging

import click

from bot.channels.console.cli import chat
from bot.channels.messenger.cli import facebook
from bot.channels.telegram.cli import telegram
from bot.channels.zalo_bot.cli import zalo_bot
from bot.channels.zalo_oa.cli import zalo
from bot.cli_access import member, team_members
from bot.cli_common import Env, friendly, pass_env
from bot.cli_content import broadcast, content
from bot.cli_deadlines import deadlines, officers, reminders
from bot.cli_export import export
from bot.cli_outbox import outbox
from bot.cli_people import admin, invite, team
from bot.cli_plan import plan
from bot.cli_safeguarding import consent, member_erase, retention, safeguarding
from messages_vi.cli import i18n

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
    """The web process under gunicorn: webhooks and web chat."""
    from bot.serve import run_gunicorn

    env.prepared_db()
    run_gunicorn(host=host, port=env.config.port, workers=workers)


@cli.command()
@pass_env
@friendly
def worker(env: Env) -> None:
    """The worker: delivers the outbox, fetches members' photos, polls Telegram and Zalo Bot
    when they have no webhook, and keeps the Zalo OA tokens fresh."""
    from bot.serve import run_worker

    run_worker(env.config, env.prepared_db())


# --- database ------------------------------------------------------------------------------


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


# Every command group, registered in one place.
for group in (plan, admin, team, invite, chat, telegram, facebook, zalo, zalo_bot, i18n, outbox,
              member, safeguarding, consent, retention, export, content, broadcast, deadlines,
              reminders, officers):
    cli.add_command(group)
member.add_command(member_erase)
team.add_command(team_members)


def main() -> None:
    """Entry point of the console script."""
    cli(obj=Env())
