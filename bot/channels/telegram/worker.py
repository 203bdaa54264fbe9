"""What the worker runs for Telegram: the sender, photo downloads, and the poller unless a
webhook is set."""

from __future__ import annotations

from bot.channels import polling
from bot.channels.base import ChannelStart
from bot.channels.port import Database
from bot.channels.telegram.outbound import TelegramSender, make_bot, media_out
from bot.channels.telegram.polling import MODE_KEY, TelegramPoller
from bot.config import Config
from bot.dispatcher import Dispatcher


async def start(config: Config, db: Database, dispatcher: Dispatcher) -> ChannelStart:
    """Connect Telegram for the worker: sender, photo downloads, and polling unless webhooked."""
    bot = make_bot(config)
    await bot.initialize()
    sender = TelegramSender(bot, media_out(db, config.media_path))
    poller = await polling.poller_if_wanted(db, MODE_KEY,
                                            lambda: TelegramPoller(bot, dispatcher, db))
    return ChannelStart(sender=sender, fetchers={"telegram": sender.fetch_media}, poller=poller,
                        closers=[bot.shutdown])
