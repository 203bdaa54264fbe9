"""The media store: photo files on disk, named by content hash, and their rows."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.enums import PhotoError
from storage.models import Media
from storage.photo_clean import NotAPicture, strip_metadata

log = logging.getLogger(__name__)

# Checked from the bytes, not from what the platform claims.
SIGNATURES = {b"\xff\xd8\xff": ("image/jpeg", "jpg"), b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
              b"RIFF": ("image/webp", "webp"), b"GIF8": ("image/gif", "gif")}


@dataclass(frozen=True)
class StoredPhoto:
    media_id: int | None
    size: int
    error: PhotoError | None = None


def sniff(data: bytes) -> tuple[str, str] | None:
    """The image type of some bytes, or None when they are not a picture we accept."""
    for magic, kind in SIGNATURES.items():
        if data.startswith(magic) and (magic != b"RIFF" or data[8:12] == b"WEBP"):
            return kind
    return None


def register_remote_photo(
    session: Session, identity_id: int, source: str, size: int, *, max_bytes: int
) -> StoredPhoto:
    """Count a platform photo now and fetch it later, so the webhook never waits on a download."""
    if size > max_bytes:
        return StoredPhoto(None, size, PhotoError.TOO_LARGE)
    existing = session.scalar(select(Media).where(Media.source == source,
                                                  Media.identity_id == identity_id))
    if existing is not None:
        return StoredPhoto(existing.id, size)
    row = Media(identity_id=identity_id, storage_key=f"pending/{uuid.uuid4().hex}",
                content_type="", size=size, sha256="", status="pending", source=source)
    session.add(row)
    session.flush()
    return StoredPhoto(row.id, size)


def store_photo(
    session: Session, media_dir: Path, identity_id: int, data: bytes, *, max_bytes: int
) -> StoredPhoto:
    """Write a photo durably (fsync before the row commits) or say why it was refused."""
    if len(data) > max_bytes:
        return StoredPhoto(None, len(data), PhotoError.TOO_LARGE)
    kind = sniff(data)
    if kind is None:
        return StoredPhoto(None, len(data), PhotoError.BAD_TYPE)
    content_type, ext = kind
    try:
        data = strip_metadata(data, content_type)
    except NotAPicture:
        return StoredPhoto(None, len(data), PhotoError.BAD_TYPE)
    digest = hashlib.sha256(data).hexdigest()
    # One file per sender: a report only takes photos its own member sent.
    key = f"{digest[:2]}/{digest}-{identity_id}.{ext}"
    existing = session.scalar(select(Media).where(Media.storage_key == key))
    if existing is not None:
        return StoredPhoto(existing.id, len(data))
    path = media_dir / key
    if not path.exists():
        _write_durably(path, data)
    row = Media(identity_id=identity_id, storage_key=key, content_type=content_type,
                size=len(data), sha256=digest)
    session.add(row)
    session.flush()
    return StoredPhoto(row.id, len(data))


@dataclass(frozen=True)
class PendingMedia:
    id: int
    identity_id: int | None
    source: str
    attempts: int


def claim_pending(session: Session, *, limit: int) -> list[PendingMedia]:
    """Photos counted in a draft but not yet downloaded from their platform."""
    query = select(Media).where(Media.status == "pending").order_by(Media.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    for row in rows:
        row.fetch_attempts += 1
    return [PendingMedia(r.id, r.identity_id, r.source or "", r.fetch_attempts) for r in rows]


def complete_fetch(
    session: Session, media_id: int, media_dir: Path, data: bytes | None, *, error: str | None,
    give_up: bool,
) -> None:
    """Store downloaded bytes under their hash, or note why the download failed."""
    row = session.get_one(Media, media_id)
    kind = sniff(data) if data is not None else None
    if data is None or kind is None:
        row.last_error = error or "not a JPEG, PNG, WebP or GIF picture"
        if give_up or data is not None:
            _refuse(session, row)
        return
    content_type, ext = kind
    try:
        data = strip_metadata(data, content_type)
    except NotAPicture as exc:
        row.last_error = f"not a readable picture: {exc}"[:300]
        _refuse(session, row)
        return
    digest = hashlib.sha256(data).hexdigest()
    key = f"{digest[:2]}/{digest}-{row.identity_id}.{ext}"
    path = media_dir / key
    if not path.exists():
        _write_durably(path, data)
    clash = session.scalar(select(Media.id).where(Media.storage_key == key, Media.id != row.id))
    if clash is not None:
        key = f"{digest[:2]}/{digest}-{row.identity_id}-{row.id}.{ext}"
        _write_durably(media_dir / key, data)
    row.storage_key, row.content_type, row.size, row.sha256 = key, content_type, len(data), digest
    row.status, row.last_error = "ready", None


def _refuse(session: Session, row: Media) -> None:
    """A platform photo that could not be fetched or is no picture: nothing of it is kept (no
    file was written). The reason is not logged: a download error can quote a platform's file
    address, and Telegram's carries the bot token."""
    log.warning("photo %s refused after %s attempt(s)", row.id, row.fetch_attempts)
    session.delete(row)


@dataclass(frozen=True)
class MediaFile:
    """Where a stored photo's bytes are and what they are, for a channel that sends it on."""

    id: int
    storage_key: str
    content_type: str
    size: int
    status: str


def media_file(session: Session, media_id: int) -> MediaFile | None:
    """One media row by id, or None when it does not exist (e.g. erased)."""
    row = session.get(Media, media_id)
    if row is None:
        return None
    return MediaFile(row.id, row.storage_key, row.content_type, row.size, row.status)


def _write_durably(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, then rename: a crash never leaves half a photo."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def discard_unattached(session: Session, media_dir: Path, identity_id: int,
                       ids: list[int]) -> int:
    """Delete photos of this sender that belong to no report, file and row: photos sent before
    a report and declined or never claimed. A photo of a saved report is never touched."""
    rows = list(session.scalars(select(Media).where(
        Media.id.in_(ids), Media.identity_id == identity_id, Media.report_id.is_(None))))
    for row in rows:
        _unlink(media_dir, row.storage_key)
    if rows:
        session.execute(delete(Media).where(Media.id.in_([r.id for r in rows])))
    return len(rows)


def _unlink(media_dir: Path, key: str) -> None:
    if not key.startswith("pending/"):
        (media_dir / key).unlink(missing_ok=True)
