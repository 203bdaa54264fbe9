"""The worker process: the shared outbox sender, photo downloads, and platform pollers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from bot.broadcaster import Broadcaster
from bot.channels.base import ChannelSender, ChannelStart
from bot.channels.webchat.outbound import WebChatSender
from bot.config import Config
from bot.dispatcher import Dispatcher, Wakeup
from bot.media_fetcher import MediaFetcher
from bot.scheduler import start_scheduler
from bot.send_journal import SendJournal
from bot.sender import OutboxSender, SenderSettings
from storage.db import Database
from storage.leases import Lease
from storage.notify import listen_for_outbox

log = logging.getLogger(__name__)

# How often a worker without a platform's polling lease asks for it again (so how soon it takes
# over from one that stopped), and how often the holder checks it still has it.
LEASE_RETRY_SECONDS = 10.0
LEASE_CHECK_SECONDS = 30.0


async def _telegram(config: Config, db: Database, dispatcher: Dispatcher) -> ChannelStart:
    from bot.channels.telegram import worker

    return await worker.start(config, db, dispatcher)


async def _zalo_bot(config: Config, db: Database, dispatcher: Dispatcher) -> ChannelStart:
    from bot.channels.zalo_bot import worker

    return await worker.start(config, db, dispatcher)


async def _facebook(config: Config, db: Database, dispatcher: Dispatcher) -> ChannelStart:
    from bot.channels.messenger import worker

    return await worker.start(config, db, dispatcher)


async def _zalo(config: Config, db: Database, dispatcher: Dispatcher) -> ChannelStart:
    from bot.channels.zalo_oa import worker

    return await worker.start(config, db, dispatcher)


# Each platform's start-up, tried when its token is set (Config.channel_enabled).
PLATFORMS: dict[str, Callable[[Config, Database, Dispatcher], Awaitable[ChannelStart]]] = {
    "telegram": _telegram,
    "zalo_bot": _zalo_bot,
    "facebook": _facebook,
    "zalo": _zalo,
}


class Worker:
    """Everything that talks to platforms on its own schedule, in one event loop."""

    def __init__(self, config: Config, db: Database, wakeup: Wakeup | None = None,
                 sender_settings: SenderSettings | None = None) -> None:
        self.config = config
        # SQLite has no NOTIFY: a web process in another process is only noticed by polling,
        # so poll often enough that a reply still leaves well within a second.
        self.sender_settings = sender_settings or (
            SenderSettings(idle_wait_seconds=0.25) if db.is_sqlite else None)
        self.db = db
        self.wakeup = wakeup or Wakeup()
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.channels: list[ChannelSender] = [WebChatSender()]
        self.fetchers: dict[str, Callable[[str], Awaitable[bytes]]] = {}
        self.pollers: list[tuple[str, Any]] = []
        self.journal = SendJournal(config.instance_path / "sendlog")
        self.sender = OutboxSender(db, self.channels, self.wakeup, self.sender_settings,
                                   self.journal)

    async def start_channels(self) -> None:
        """Connect the platforms whose tokens are set; one failing does not stop the others."""
        dispatcher = Dispatcher(self.config, self.db, self.wakeup)
        for name, start in PLATFORMS.items():
            if not self.config.channel_enabled(name):
                continue
            try:
                started = await start(self.config, self.db, dispatcher)
            except Exception:
                log.exception("could not start the %s channel; the others go on", name)
                continue
            # The platform's published limits unless the operator set {PREFIX}_RATE_LIMIT.
            started.sender.limits = self.config.limits_for(name, started.sender.limits)
            self.channels.append(started.sender)
            self.fetchers.update(started.fetchers)
            self.closers += started.closers
            if started.poller is not None:
                self.pollers.append((name, started.poller))
        self.sender = OutboxSender(self.db, self.channels, self.wakeup, self.sender_settings,
                                   self.journal)

    async def deliver_once(self) -> int:
        """One sender round (tests drive the worker step by step with this)."""
        return await self.sender.deliver_once()

    async def run(self, stop: threading.Event) -> None:
        await self.start_channels()
        await asyncio.to_thread(self.sender.recover)
        listener = self._listen(stop)
        scheduler = start_scheduler(self.config, self.db, self.wakeup)
        tasks = [asyncio.create_task(self.sender.run(stop), name="sender"),
                 asyncio.create_task(MediaFetcher(self.db, self.config.media_path,
                                                  self.fetchers).run(stop), name="media"),
                 asyncio.create_task(Broadcaster(self.config, self.db, self.wakeup).run(stop),
                                     name="broadcasts")]
        tasks += [asyncio.create_task(poll_exclusively(self.db, name, poller, stop),
                                      name=f"poller-{name}")
                  for name, poller in self.pollers]
        try:
            await asyncio.to_thread(stop.wait)
        finally:
            await asyncio.to_thread(scheduler.stop)
            self.wakeup.notify()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for close in self.closers:
                await close()
            self.journal.close()
            if listener is not None:
                listener.join(timeout=5)

    def _listen(self, stop: threading.Event) -> threading.Thread | None:
        """On PostgreSQL, LISTEN so a reply queued by any web process wakes this sender."""
        if self.db.is_sqlite:
            return None
        thread = threading.Thread(target=listen_for_outbox,
                                  args=(self.db.engine, stop, self.wakeup.notify), daemon=True,
                                  name="outbox-listen")
        thread.start()
        return thread


async def poll_exclusively(db: Database, name: str, poller: Any, stop: threading.Event, *,
                           retry_seconds: float = LEASE_RETRY_SECONDS,
                           check_seconds: float = LEASE_CHECK_SECONDS) -> None:
    """Run a platform's poller only while this process holds the platform's polling lease.

    Several workers may run; one polls and the others stand by, taking over within
    `retry_seconds` of its stopping or dying.
    """
    lease = Lease(db, f"poll-{name}")
    waiting_said = False
    try:
        while not stop.is_set():
            try:
                taken = await asyncio.to_thread(lease.try_acquire)
            except Exception as exc:  # the database is away: ask again later
                log.warning("could not ask for the %s polling lease: %s", name, exc)
                taken = False
            if not taken:
                if not waiting_said:
                    log.info("another worker polls %s; this one stands by", name)
                    waiting_said = True
                await _pause(stop, retry_seconds)
                continue
            waiting_said = False
            log.info("this worker polls %s", name)
            await _run_while_held(lease, poller, stop, check_seconds)
            await _pause(stop, retry_seconds)  # it failed or lost the lease: not in a tight loop
    finally:
        await asyncio.to_thread(lease.release)


async def _run_while_held(lease: Lease, poller: Any, stop: threading.Event,
                          check: float) -> None:
    """The poller's own loop, stopped if the lease is lost (its database session gone)."""
    task = asyncio.create_task(poller.run(stop))
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=check)
            if not task.done() and not await asyncio.to_thread(lease.still_held):
                log.warning("lost the %s lease; polling stops until it is back", lease.name)
                return
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("the %s poller failed; it starts again shortly", lease.name)


async def _pause(stop: threading.Event, seconds: float) -> None:
    """Sleep, but wake within a fraction of a second when the worker is told to stop."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not stop.is_set():
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.2))
