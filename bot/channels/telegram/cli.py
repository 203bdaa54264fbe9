"""`duan8 telegram`: webhook or polling for the Telegram channel."""

from __future__ import annotations

import click

from bot.cli_common import WebhookSwitch, webhook_commands


@click.group()
def telegram() -> None:
    """Telegram: webhook (public HTTPS URL) or polling (the default, no URL needed)."""


def _switch() -> WebhookSwitch:
    from bot.channels.telegram import polling

    return WebhookSwitch(polling.set_webhook, polling.delete_webhook)


webhook_commands(telegram, platform="Telegram", caller="Telegram", events="updates",
                 path="/webhooks/telegram", token=lambda config: config.telegram_bot_token,
                 token_name="TELEGRAM_BOT_TOKEN", switch=_switch)
