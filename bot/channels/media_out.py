"""Campaign media going out on platforms that take files: Telegram and Messenger.

A content item's photos, PDFs and short videos are in the media store (storage.content); an
outbox payload carries their ids. A platform is sent each file once: the id it gives back for
the upload (Telegram's file_id, Messenger's attachment_id) is kept under a key of the channel's
own, in memory and through the channel port, and every later message names the file by it.
A broadcast of one PDF to a thousand members so uploads it once, and the first send of a batch
uploads while the others of the same file wait for it.

Everything a message needs is checked before its first part goes: a file that cannot be sent
(erased, too large for the platform) refuses the whole message with the reason, so a member
never gets half of it and then the same half again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.channels.port import ChannelPort, Database

log = logging.getLogger(__name__)

# The three kinds of file a content item holds, by the type the media store recorded.
KINDS = {"image/jpeg": "image", "image/png": "image", "image/webp": "image",
         "image/gif": "image", "video/mp4": "video", "application/pdf": "file"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
              "video/mp4": "mp4", "application/pdf": "pdf"}


class MediaRefused(Exception):
    """A file that cannot go to this platform as it is; `final` unless waiting can fix it."""

    def __init__(self, reason: str, *, final: bool = True) -> None:
        super().__init__(reason)
        self.final = final


@dataclass(frozen=True)
class OutgoingFile:
    """A stored file as a platform upload takes it."""

    media_id: int
    kind: str  # image | video | file
    name: str
    content_type: str
    size: int
    path: Path

    def read(self) -> bytes:
        return self.path.read_bytes()


def media_ids(payload: dict[str, Any]) -> list[int]:
    """The media ids a payload asks to show, in order; anything that is not an id is ignored."""
    found = []
    for value in payload.get("media") or []:
        if isinstance(value, int) and not isinstance(value, bool):
            found.append(value)
        elif isinstance(value, str) and value.isdigit():
            found.append(int(value))
    return found


Upload = Callable[[OutgoingFile], Awaitable[str]]  # a platform upload: the file -> its id there


class MediaOut:
    """One platform's uploaded files: looked up, checked, uploaded once, remembered.

    `limits` caps the size per kind, as the platform states it; `max_age` forgets an id the
    platform lets expire (Messenger keeps reusable attachments for 90 days).
    """

    def __init__(self, db: Database, media_dir: Path | None, *, key_prefix: str,
                 limits: dict[str, int], max_age: float | None = None) -> None:
        self.db = db
        self.port = ChannelPort(db)
        self.media_dir = media_dir
        self.key_prefix = key_prefix
        self.limits = limits
        self.max_age = max_age
        self._known: dict[int, str] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def file(self, media_id: int) -> OutgoingFile:
        """A stored file this platform takes, or MediaRefused saying why not."""
        if self.media_dir is None:
            raise MediaRefused("no media directory is configured for this sender")
        info = self.port.stored_photo(media_id)
        if info is None:
            raise MediaRefused(f"file {media_id} is not in the media store (erased?)")
        if info.status == "pending":
            raise MediaRefused(f"file {media_id} is still being downloaded", final=False)
        kind = KINDS.get(info.content_type)
        if info.status != "ready" or kind is None:
            raise MediaRefused(f"file {media_id} ({info.content_type or 'unknown type'}) "
                               "cannot be sent")
        path = self.media_dir / info.storage_key
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise MediaRefused(f"file {media_id} has no file in the media directory") from None
        if size > self.limits[kind]:
            raise MediaRefused(f"file {media_id} is {size / 1_000_000:.1f} MB; this platform "
                               f"takes a {kind} of at most {self.limits[kind] / 1_000_000:g} MB")
        name = f"{media_id}.{EXTENSIONS[info.content_type]}"
        return OutgoingFile(media_id, kind, name, info.content_type, size, path)

    async def files(self, payload: dict[str, Any]) -> list[OutgoingFile]:
        """Every file of a payload, checked, before anything of the message is sent."""
        return [await asyncio.to_thread(self.file, m) for m in media_ids(payload)]

    async def known_id(self, media_id: int) -> str | None:
        """The platform's id for a file uploaded before (by any worker), or None."""
        known = self._known.get(media_id)
        if known is None:
            known = await asyncio.to_thread(self._stored, media_id)
            if known is not None:
                self._known[media_id] = known
        return known

    async def platform_id(self, file: OutgoingFile, upload: Upload) -> tuple[str, bool]:
        """The file's id on the platform, and whether it was uploaded just now."""
        async with self._locks.setdefault(file.media_id, asyncio.Lock()):
            known = await self.known_id(file.media_id)
            if known is not None:
                return known, False
            platform_id = await upload(file)
            await asyncio.to_thread(self._store, file.media_id, platform_id)
            self._known[file.media_id] = platform_id
            log.info("uploaded file %s as %s (%s)", file.media_id, platform_id, self.key_prefix)
            return platform_id, True

    async def remember(self, media_id: int, platform_id: str) -> None:
        """An id the platform gave back for a file sent by upload with the message itself."""
        async with self._locks.setdefault(media_id, asyncio.Lock()):
            if self._known.get(media_id) is None:
                await asyncio.to_thread(self._store, media_id, platform_id)
                self._known[media_id] = platform_id

    async def forget(self, media_id: int, platform_id: str) -> None:
        """Drop an id the platform no longer accepts, unless another sender replaced it."""
        async with self._locks.setdefault(media_id, asyncio.Lock()):
            if self._known.get(media_id) == platform_id:
                del self._known[media_id]
            stored = await asyncio.to_thread(self.port.value, self._key(media_id))
            if stored is not None and self._parse(stored) == platform_id:
                await asyncio.to_thread(self.port.forget, self._key(media_id), only_if=stored)

    def _key(self, media_id: int) -> str:
        return f"{self.key_prefix}{media_id}"

    def _parse(self, stored: str) -> str | None:
        try:
            value = json.loads(stored)
        except ValueError:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            return None
        if self.max_age is not None and time.time() - float(value.get("at") or 0) > self.max_age:
            return None  # expired at the platform: upload again
        return str(value["id"])

    def _stored(self, media_id: int) -> str | None:
        stored = self.port.value(self._key(media_id))
        return None if stored is None else self._parse(stored)

    def _store(self, media_id: int, platform_id: str) -> None:
        self.port.keep(self._key(media_id), json.dumps({"id": platform_id, "at": time.time()}))
