"""`duan8 zalo-bot`: webhook or polling for the Zalo Bot Platform channel."""

from __future__ import annotations

import click

from bot.cli_common import Env, friendly, pass_env
from bot.config import Config


@click.group("zalo-bot")
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

    from bot.channels.zalo_bot.outbound import ZaloBotError, set_webhook

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

    from bot.channels.zalo_bot.outbound import ZaloBotError, delete_webhook

    try:
        asyncio.run(delete_webhook(_zalo_bot_config(env), env.prepared_db()))
    except ZaloBotError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Zalo Bot webhook removed; the worker polls for events")
