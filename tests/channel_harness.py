"""What the four platform channels' test harnesses share.

The app configured against a fake platform, the worker's sender run until nothing is due, and
counts of rows. Conversations here do not test pacing, so the configuration lifts every
platform's send limit through the operators' own override ({PREFIX}_RATE_LIMIT, as the worker
reads it) and retries wait a hundredth of a second instead of their backoff: the pacing and
backoff tests (test_ratelimit.py, test_sender.py) run the real numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from flask import Flask
from sqlalchemy import func, select

import bot.sender
from bot.app import create_app, db_of
from bot.channels.base import ChannelSender
from bot.config import Config, load_config
from bot.ratelimit import RATE_LIMIT_ENV
from bot.sender import OutboxSender
from bot.startup import prepare_database
from storage.models import Outbox

# Every platform unpaced unless a test sets its own {PREFIX}_RATE_LIMIT.
GENEROUS_LIMITS = {name: "unlimited" for name in RATE_LIMIT_ENV.values()}
QUICK_RETRY_SECONDS = 0.01


def channel_config(db_url: str, tmp_path: Path, **env: str) -> Config:
    """A deployment's configuration isolated from the real environment, sends unpaced."""
    return load_config({"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "none.env"),
                        **GENEROUS_LIMITS, **env}, instance_path=tmp_path / "instance")


@contextlib.contextmanager
def quick_retries() -> Iterator[None]:
    """Retries come due at once: what is tested is that they happen, not how long they wait."""
    with mock.patch.object(bot.sender, "backoff", lambda attempts: QUICK_RETRY_SECONDS):
        yield


class ChannelHarness:
    """The real app with one platform configured; subclasses say how to build its sender."""

    def __init__(self, config: Config, init_app: Callable[[Flask], Any] | None = None,
                 blueprint: str = "") -> None:
        self.config = config
        self.app = create_app(config)
        if init_app is not None and blueprint not in self.app.blueprints:
            init_app(self.app)
        self.db = db_of(self.app)
        prepare_database(config, self.db)
        self.client = self.app.test_client()

    def senders(self, **kwargs: Any) -> contextlib.AbstractAsyncContextManager[
            list[ChannelSender]]:
        """The channel senders the worker would start, closed afterwards."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def _outbox_sender(self, **kwargs: Any) -> AsyncIterator[OutboxSender]:
        async with self.senders(**kwargs) as senders:
            for sender in senders:  # as the worker does: the platform's limits or the override
                sender.limits = self.config.limits_for(sender.name, sender.limits)
            yield OutboxSender(self.db, senders)

    def send_all(self, rounds: int = 50, **kwargs: Any) -> None:
        """Run the shared sender until nothing is due (retries included)."""
        async def go() -> None:
            async with self._outbox_sender(**kwargs) as outbox_sender:
                for _round in range(rounds):
                    handled = await outbox_sender.deliver_once()
                    if not self.due():
                        break
                    if handled == 0:  # what is left waits for its retry time
                        await asyncio.sleep(0.05)
        with quick_retries():
            asyncio.run(go())

    def deliver_once(self, **kwargs: Any) -> int:
        """One round of the sender: rows handled."""
        async def go() -> int:
            async with self._outbox_sender(**kwargs) as outbox_sender:
                return await outbox_sender.deliver_once()
        return asyncio.run(go())

    def due(self) -> int:
        with self.db.sessions() as session:
            return session.scalar(select(func.count()).select_from(Outbox).where(
                Outbox.status.in_(["pending", "sending"]))) or 0

    def count(self, model: type) -> int:
        with self.db.sessions() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def rows(self) -> list[Outbox]:
        with self.db.sessions() as session:
            return list(session.scalars(select(Outbox).order_by(Outbox.id)))

    def close(self) -> None:
        self.db.dispose()
