"""`duan8 zalo-bot`: webhook or polling for the Zalo Bot Platform channel."""

from __future__ import annotations

import click

from bot.cli_common import WebhookSwitch, webhook_commands


@click.group("zalo-bot")
def zalo_bot() -> None:
    """Zalo Bot Platform: webhook (public HTTPS URL) or polling (the default, no URL needed)."""


def _switch() -> WebhookSwitch:
    from bot.channels.zalo_bot import polling
    from bot.channels.zalo_bot.outbound import ZaloBotError

    return WebhookSwitch(polling.set_webhook, polling.delete_webhook, refusals=(ZaloBotError,))


webhook_commands(zalo_bot, platform="Zalo Bot", caller="Zalo", events="events",
                 path="/webhooks/zalo-bot", token=lambda config: config.zalo_bot_token,
                 token_name="ZALO_BOT_TOKEN", switch=_switch)
