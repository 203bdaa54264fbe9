"""Downloads photos that members sent on a platform, after their message was answered."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from storage import media
from storage.db import Database

log = logging.getLogger(__name__)

Fetch = Callable[[str], Awaitable[bytes]]
MAX_ATTEMPTS = 5


class MediaFetcher:
    """Claims pending photos and fetches each through its platform ("telegram:<file_id>")."""

    def __init__(self, db: Database, media_dir: Path, fetchers: dict[str, Fetch]) -> None:
        self.db = db
        self.media_dir = media_dir
        self.fetchers = fetchers

    async def fetch_once(self) -> int:
        """One batch; returns how many photos were tried."""
        pending = await asyncio.to_thread(self._claim)
        for item in pending:
            prefix, _sep, ref = item.source.partition(":")
            fetch = self.fetchers.get(prefix)
            data, error = None, None
            if fetch is None:
                error = f"no channel can fetch {prefix!r} media"
            else:
                try:
                    data = await fetch(ref)
                except Exception as exc:  # a failed download is retried, then given up
                    error = f"{type(exc).__name__}: {exc}"
            await asyncio.to_thread(self._complete, item, data, error)
        return len(pending)

    def _claim(self) -> list[media.PendingMedia]:
        with self.db.transaction() as session:
            return media.claim_pending(session, limit=20)

    def _complete(self, item: media.PendingMedia, data: bytes | None, error: str | None) -> None:
        with self.db.transaction() as session:
            media.complete_fetch(session, item.id, self.media_dir, data, error=error,
                                 give_up=item.attempts >= MAX_ATTEMPTS)

    async def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                tried = await self.fetch_once()
            except Exception:
                log.exception("media fetch round failed")
                tried = 0
            if tried == 0:
                await asyncio.sleep(1.0)
