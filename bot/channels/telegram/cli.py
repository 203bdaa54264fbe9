"""`duan8 telegram`: webhook or polling for the Telegram channel."""

from __future__ import annotations

import click

from bot.cli_common import Env, friendly, pass_env
from bot.config import Config


@click.group()
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

    from bot.channels.telegram.outbound import set_webhook

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

    from bot.channels.telegram.outbound import delete_webhook

    asyncio.run(delete_webhook(_telegram_config(env), env.prepared_db()))
    click.echo("Telegram webhook removed; the worker polls for updates")
