"""Telegram's updates by getUpdates, for deployments without a public URL, and the switch to
and from the webhook (`duan8 telegram set-webhook`, `delete-webhook`)."""

from __future__ import annotations

import asyncio
import threading

from telegram import Bot
from telegram.error import TelegramError

from bot.channels import polling
from bot.channels.port import ChannelPort, Database
from bot.channels.telegram.inbound import handle_update
from bot.channels.telegram.outbound import make_bot
from bot.config import Config
from bot.dispatcher import Dispatcher

OFFSET_KEY = "telegram.poll_offset"
MODE_KEY = "telegram.mode"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]


class TelegramPoller:
    """getUpdates for deployments without a public URL; the offset lives in the database."""

    def __init__(self, bot: Bot, dispatcher: Dispatcher, db: Database, *,
                 timeout: int = 25) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.db = db
        self.timeout = timeout

    def _offset(self) -> int:
        return ChannelPort(self.db).poll_offset(OFFSET_KEY)

    def _save_offset(self, offset: int) -> None:
        ChannelPort(self.db).save_poll_offset(OFFSET_KEY, offset)

    async def poll_once(self, timeout: int | None = None) -> int:
        """Fetch and handle one batch; returns how many updates it held."""
        offset = await asyncio.to_thread(self._offset)
        updates = await self.bot.get_updates(
            offset=offset or None, timeout=self.timeout if timeout is None else timeout,
            allowed_updates=ALLOWED_UPDATES,
        )
        for update in updates:
            # Dedupe by update_id makes a crash before the offset is saved harmless.
            await asyncio.to_thread(handle_update, self.dispatcher, update.to_dict())
            await asyncio.to_thread(self._save_offset, update.update_id + 1)
        return len(updates)

    async def run(self, stop: threading.Event) -> None:
        await polling.poll_until_stopped(self.poll_once, stop, platform="Telegram",
                                         recoverable=(TelegramError,))


async def set_webhook(config: Config, db: Database, url: str) -> None:
    """Point Telegram at our webhook, with the secret it must echo back."""
    if not config.telegram_webhook_secret:
        raise ValueError("TELEGRAM_WEBHOOK_SECRET must be set (1-256 of A-Z a-z 0-9 _ -)")
    async with make_bot(config, pool=2) as bot:
        await bot.set_webhook(url=url, secret_token=config.telegram_webhook_secret,
                              allowed_updates=ALLOWED_UPDATES)
    await polling.set_mode(db, MODE_KEY, webhook=True)


async def delete_webhook(config: Config, db: Database) -> None:
    """Back to polling: Telegram keeps undelivered updates for getUpdates."""
    async with make_bot(config, pool=2) as bot:
        await bot.delete_webhook()
    await polling.set_mode(db, MODE_KEY, webhook=False)
