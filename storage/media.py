"""The media store: photo files on disk, named by content hash, and their rows."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Media

# Checked from the bytes, not from what the platform claims.
SIGNATURES = {b"\xff\xd8\xff": ("image/jpeg", "jpg"), b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
              b"RIFF": ("image/webp", "webp"), b"GIF8": ("image/gif", "gif")}


@dataclass(frozen=True)
class StoredPhoto:
    media_id: int | None
    size: int
    error: str | None = None


def sniff(data: bytes) -> tuple[str, str] | None:
    """The image type of some bytes, or None when they are not a picture we accept."""
    for magic, kind in SIGNATURES.items():
        if data.startswith(magic) and (magic != b"RIFF" or data[8:12] == b"WEBP"):
            return kind
    return None


def store_photo(
    session: Session, media_dir: Path, identity_id: int, data: bytes, *, max_bytes: int
) -> StoredPhoto:
    """Write a photo durably (fsync before the row commits) or say why it was refused."""
    if len(data) > max_bytes:
        return StoredPhoto(None, len(data), "too_large")
    kind = sniff(data)
    if kind is None:
        return StoredPhoto(None, len(data), "bad_type")
    content_type, ext = kind
    digest = hashlib.sha256(data).hexdigest()
    # One file per sender: a report only takes photos its own member sent.
    key = f"{digest[:2]}/{digest}-{identity_id}.{ext}"
    existing = session.scalar(select(Media).where(Media.storage_key == key))
    if existing is not None:
        return StoredPhoto(existing.id, len(data))
    path = media_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".part")
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    row = Media(identity_id=identity_id, storage_key=key, content_type=content_type,
                size=len(data), sha256=digest)
    session.add(row)
    session.flush()
    return StoredPhoto(row.id, len(data))
