"""What `duan8 worker` runs for broadcasts (the broadcaster and the sender), as a process of its
own for test_broadcast_crash to kill.

The processes come from a fork server that has imported this module, and with it the service,
once: each restart after a kill then costs a fork, not a second of imports.
"""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import timedelta

from bot.broadcaster import Broadcaster, BroadcasterSettings
from bot.channels.telegram.outbound import TelegramSender, make_bot
from bot.config import load_config
from bot.dispatcher import Wakeup
from bot.ratelimit import UNLIMITED
from bot.send_journal import SendJournal
from bot.sender import OutboxSender, SenderSettings
from storage.db import Database


async def _main() -> None:
    config = load_config()
    db = Database(config.database_url)
    bot = make_bot(config)
    await bot.initialize()
    telegram = TelegramSender(bot)
    telegram.limits = UNLIMITED
    wakeup = Wakeup()
    sender = OutboxSender(db, [telegram], wakeup, SenderSettings(
        batch=40, lease=timedelta(seconds=1), idle_wait_seconds=0.05),
        SendJournal(config.instance_path / "sendlog"))
    await asyncio.to_thread(sender.recover)
    stop = threading.Event()
    broadcaster = Broadcaster(config, db, wakeup, BroadcasterSettings(
        batch=25, lease=timedelta(seconds=1), idle_seconds=0.05))
    await asyncio.gather(sender.run(stop), broadcaster.run(stop))


def run(env: dict[str, str]) -> None:
    """The worker with `env` as its environment; runs until killed."""
    os.environ.clear()
    os.environ.update(env)
    asyncio.run(_main())
