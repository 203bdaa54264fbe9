"""Platforms that hand out updates by long polling (Telegram, Zalo Bot): the loop that keeps
asking, and the switch between polling and a webhook.

Polling is the default, so a deployment without a public URL works; `duan8 <platform>
set-webhook` records "webhook" through the port, so every worker process agrees after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.channels.port import ChannelPort, Database

log = logging.getLogger(__name__)

P = TypeVar("P")
MAX_WAIT = 60.0  # seconds between tries while the platform or the network keeps failing


async def poller_if_wanted(db: Database, mode_key: str, make: Callable[[], P]) -> P | None:
    """The platform's poller, unless a webhook was set for it."""
    wanted = await asyncio.to_thread(ChannelPort(db).polling_wanted, mode_key)
    return make() if wanted else None


async def set_mode(db: Database, mode_key: str, *, webhook: bool) -> None:
    """Record webhook or polling, once the platform has accepted the change."""
    await asyncio.to_thread(ChannelPort(db).set_mode, mode_key, webhook=webhook)


async def poll_until_stopped(poll_once: Callable[[], Awaitable[int]], stop: threading.Event, *,
                             platform: str,
                             recoverable: tuple[type[BaseException], ...]) -> None:
    """Call `poll_once` until `stop` is set, backing off (2, 4, 8... s, at most a minute) while
    it fails with one of `recoverable`."""
    log.info("polling %s for updates", platform)
    failures = 0
    while not stop.is_set():
        try:
            await poll_once()
            failures = 0
        except recoverable as exc:
            failures += 1
            wait = min(MAX_WAIT, 2.0 ** failures)
            log.warning("%s getUpdates failed (%s); again in %.0f s", platform, exc, wait)
            await asyncio.sleep(wait)
