"""Zalo OA messages as sent: text parts and photos, each photo uploaded once and reused.

Wire facts (chatwoot `app/services/zalo_oa/message_sender.rb`, `send_image` and `upload`):
- A photo is uploaded first: `POST {ZALO_API_URL}/v2.0/oa/upload/image`, multipart field `file`,
  the token in an `access_token` header; the answer is `{"error": 0, "data": {"attachment_id"}}`
  or a negative `error` with a `message`, like every OA call.
- It is then sent as a consultation message whose `message` carries the caption as `text` next to
  `attachment: {"type": "template", "payload": {"template_type": "media", "elements":
  [{"media_type": "image", "attachment_id"}]}}`, one image per element. The same shape, with
  `text` as the photo's caption of at most 2,000 characters, is in the "tin tư vấn đính kèm ảnh"
  pages of Zalo API resellers (https://developers-zns.goby.vn/zalo-follower-api/
  gui-tin-nhan-theo-mau-dinh-kem-anh, https://developers.esms.vn/esms-api/ham-gui-tin/
  tin-zalo-tu-van-dinh-kem-anh).
- Zalo takes JPEG and PNG photos up to 1 MB (https://developers.esms.vn/en/esms-api/
  send-sms-api/send-zalo-message-with-attached-photo: "Supported image formats: jpg and png
  Maximum size: 1MB"; chatwoot `app/services/zalo_oa/image_compressor.rb`: "Zalo OA rejects
  images over ~1MB"). A photo outside those limits is refused here, with the reason, before any
  part of the message goes out.

A reply's buttons ride on its last text as query buttons (buttons.py), next to the numbered
list that stays in the text; a message with photos keeps to the numbered list.

An upload is not a message, so a broadcast of one photo to a thousand members uploads it once:
the attachment id is kept per media id in storage.settings (`zalo.attachment.<media_id>`), and
in memory for this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.channels.base import split_text
from bot.channels.media_out import MediaRefused, media_ids
from bot.channels.numbered import with_choices
from bot.channels.port import ChannelPort, Database
from bot.channels.zalo_oa.buttons import query_buttons

log = logging.getLogger(__name__)

TEXT_LIMIT = 2000  # characters per consultation text or caption; longer ones are split, never cut
# "1MB" read the strict way: a photo a few kB under a mebibyte must not be refused by Zalo
# after it has already cost the member's quota for the text before it.
IMAGE_LIMIT = 1_000_000
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png"}
ATTACHMENT_KEY = "zalo.attachment."

Upload = Callable[[bytes, str, str], Awaitable[str]]  # (bytes, file name, type) -> attachment id


# A photo that cannot go to Zalo as it is: the same refusal as the other platforms' files.
PhotoRefused = MediaRefused


@dataclass(frozen=True)
class Part:
    """One consultation message: a text (with query buttons), or a photo with a caption."""

    text: str | None = None
    media_id: int | None = None
    buttons: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Composition:
    """An outbox payload laid out as Zalo messages, and the numbered choices it shows."""

    parts: list[Part]
    choices: list[dict[str, str]]


def compose(payload: dict[str, Any]) -> Composition:
    """Text first, its last part as the first photo's caption, then the other photos."""
    text, choices = with_choices(str(payload.get("text") or ""), payload.get("buttons") or [])
    photos = media_ids(payload)
    texts = split_text(text, TEXT_LIMIT) if text.strip() else []
    if not photos:
        parts = [Part(text=t) for t in texts or ["…"]]
        # Under the last text, where the numbered list ends, so both read as one question.
        buttons = tuple(query_buttons(payload.get("buttons") or []))
        parts[-1] = Part(text=parts[-1].text, buttons=buttons)
        return Composition(parts, choices)
    # The caption keeps the words beside the picture they introduce, and saves a message.
    caption = texts.pop() if texts else None
    parts = [Part(text=t) for t in texts]
    parts += [Part(text=caption if i == 0 else None, media_id=m) for i, m in enumerate(photos)]
    return Composition(parts, choices)


def message_count(payload: dict[str, Any]) -> int:
    """How many Zalo messages a payload becomes (an acknowledgement sends none)."""
    if payload.get("kind") == "ack":
        return 0
    return len(compose(payload).parts)


def text_message(text: str) -> dict[str, Any]:
    """A plain consultation text."""
    return {"text": text}


def photo_message(attachment_id: str, caption: str | None) -> dict[str, Any]:
    """A consultation message showing one uploaded photo, with its caption if any."""
    message: dict[str, Any] = {"attachment": {"type": "template", "payload": {
        "template_type": "media",
        "elements": [{"media_type": "image", "attachment_id": attachment_id}],
    }}}
    if caption:
        message["text"] = caption
    return message


def attachment_key(media_id: int) -> str:
    """Where the attachment id of an uploaded photo is kept."""
    return f"{ATTACHMENT_KEY}{media_id}"


def read_photo(db: Database, media_dir: Path | None, media_id: int) -> tuple[bytes, str, str]:
    """The bytes, file name and type of a stored photo Zalo will take, or PhotoRefused."""
    if media_dir is None:
        raise PhotoRefused("no media directory is configured for the Zalo sender")
    info = ChannelPort(db).stored_photo(media_id)
    if info is None:
        raise PhotoRefused(f"photo {media_id} is not in the media store (erased?)")
    if info.status == "pending":
        raise PhotoRefused(f"photo {media_id} is still being downloaded", final=False)
    if info.status != "ready":
        raise PhotoRefused(f"photo {media_id} could not be downloaded, so it cannot be sent")
    ext = IMAGE_TYPES.get(info.content_type)
    if ext is None:
        raise PhotoRefused(f"photo {media_id} is {info.content_type or 'of unknown type'}; "
                           f"Zalo takes only JPEG or PNG photos")
    path = media_dir / info.storage_key
    try:
        data = _read_capped(path)
    except FileNotFoundError:
        raise PhotoRefused(f"photo {media_id} has no file in the media directory") from None
    if data is None:
        size = path.stat().st_size
        raise PhotoRefused(f"photo {media_id} is {size / 1_000_000:.1f} MB; Zalo takes photos "
                           f"of at most {IMAGE_LIMIT / 1_000_000:g} MB")
    return data, f"{media_id}.{ext}", info.content_type


def _read_capped(path: Path) -> bytes | None:
    """The file's bytes, or None when it is over Zalo's limit (never read whole)."""
    with path.open("rb") as handle:
        data = handle.read(IMAGE_LIMIT + 1)
    return data if len(data) <= IMAGE_LIMIT else None


class Attachments:
    """Attachment ids per media id: from memory, then storage.settings, else one upload."""

    def __init__(self, db: Database, media_dir: Path | None) -> None:
        self.db = db
        self.port = ChannelPort(db)
        self.media_dir = media_dir
        self._known: dict[int, str] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def get(self, media_id: int, upload: Upload) -> tuple[str, bool]:
        """The photo's attachment id and whether it was uploaded just now."""
        # Rows of one broadcast go out concurrently: the first uploads, the others wait for it.
        async with self._locks.setdefault(media_id, asyncio.Lock()):
            known = self._known.get(media_id)
            if known is None:
                known = await asyncio.to_thread(self._stored, media_id)
            if known is not None:
                self._known[media_id] = known
                return known, False
            data, name, content_type = await asyncio.to_thread(read_photo, self.db,
                                                               self.media_dir, media_id)
            attachment_id = await upload(data, name, content_type)
            await asyncio.to_thread(self._store, media_id, attachment_id)
            self._known[media_id] = attachment_id
            log.info("uploaded photo %s to Zalo as %s", media_id, attachment_id)
            return attachment_id, True

    async def forget(self, media_id: int, attachment_id: str) -> None:
        """Drop an id Zalo no longer accepts, unless another sender already replaced it."""
        async with self._locks.setdefault(media_id, asyncio.Lock()):
            if self._known.get(media_id) == attachment_id:
                del self._known[media_id]
            await asyncio.to_thread(self._drop, media_id, attachment_id)

    def _stored(self, media_id: int) -> str | None:
        return self.port.value(attachment_key(media_id))

    def _store(self, media_id: int, attachment_id: str) -> None:
        self.port.keep(attachment_key(media_id), attachment_id)

    def _drop(self, media_id: int, attachment_id: str) -> None:
        self.port.forget(attachment_key(media_id), only_if=attachment_id)
