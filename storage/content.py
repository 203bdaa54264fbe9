"""The content library: campaign items, their versions, their media, and acknowledgements."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.media import _write_durably, sniff
from storage.models import ActivityType, AuditLog, Media, Member, Plan, Report, Topic
from storage.models_content import ContentAck, ContentItem, ContentVersion

# What a content item may carry, checked from the bytes: (content type, extension, byte limit).
MEDIA_LIMITS = {"image": 5 * 1024 * 1024, "video": 50 * 1024 * 1024, "pdf": 20 * 1024 * 1024}
# The activity a "used in the village" acknowledgement is counted as, like a report of it.
USED_ACTIVITY = "direct_communication"


class ContentError(ValueError):
    """An item that cannot be saved as given (unknown topic, bad media…), said plainly."""


@dataclass(frozen=True)
class ContentView:
    id: int
    version: int
    version_id: int
    title: str
    text: str
    topic_code: str | None
    topic_name: str | None
    tags: tuple[str, ...]
    use_in_village: bool
    media: tuple[int, ...]
    links: tuple[str, ...]
    locales: dict[str, Any]
    created_at: datetime

    def title_for(self, locale: str) -> str:
        return str((self.locales.get(locale) or {}).get("title") or self.title)

    def text_for(self, locale: str) -> str:
        return str((self.locales.get(locale) or {}).get("text") or self.text)


def media_kind(data: bytes) -> tuple[str, str, str] | None:
    """(kind, content type, extension) of an upload, from its first bytes."""
    image = sniff(data)
    if image is not None:
        return ("image", *image)
    if data.startswith(b"%PDF-"):
        return ("pdf", "application/pdf", "pdf")
    if data[4:8] == b"ftyp":
        return ("video", "video/mp4", "mp4")
    return None


def store_content_media(session: Session, media_dir: Path, data: bytes) -> int:
    """Keep a photo, short video or PDF for content in the media store; its id."""
    kind = media_kind(data)
    if kind is None:
        raise ContentError("not a JPEG, PNG, WebP or GIF picture, an MP4 video or a PDF")
    name, content_type, ext = kind
    if len(data) > MEDIA_LIMITS[name]:
        raise ContentError(f"{name} of {len(data)} bytes is over the {MEDIA_LIMITS[name]} "
                           "byte limit")
    digest = hashlib.sha256(data).hexdigest()
    key = f"content/{digest[:2]}/{digest}.{ext}"
    existing = session.scalar(select(Media.id).where(Media.storage_key == key))
    if existing is not None:
        return int(existing)
    path = media_dir / key
    if not path.exists():
        _write_durably(path, data)
    row = Media(identity_id=None, storage_key=key, content_type=content_type, size=len(data),
                sha256=digest)
    session.add(row)
    session.flush()
    return row.id


def _topic_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    topic = session.scalar(select(Topic.id).where(Topic.code == code, Topic.active.is_(True)))
    if topic is None:
        known = ", ".join(session.scalars(select(Topic.code).order_by(Topic.position)))
        raise ContentError(f"no topic {code!r} in the plan (topics: {known})")
    return int(topic)


def add_item(
    session: Session, *, title: str, text: str, topic_code: str | None = None,
    tags: list[str] | tuple[str, ...] = (), use_in_village: bool = False,
    media: list[int] | tuple[int, ...] = (), links: list[str] | tuple[str, ...] = (),
    locales: dict[str, Any] | None = None, actor: str = "",
) -> int:
    """A new item with its first version; returns the item's id."""
    if not title.strip() or not text.strip():
        raise ContentError("an item needs a title and a text")
    item = ContentItem(topic_id=_topic_id(session, topic_code), tags=sorted(set(tags)),
                       use_in_village=use_in_village, current_version=1, created_by=actor)
    session.add(item)
    session.flush()
    session.add(ContentVersion(item_id=item.id, version=1, title=title.strip()[:200],
                               text=text.strip(), locales=locales or {}, media=list(media),
                               links=list(links)))
    session.add(AuditLog(actor=actor or "cli", action="content.add", object_type="content",
                         object_id=str(item.id), detail={"title": title[:200]}))
    session.flush()
    return item.id


def edit_item(session: Session, item_id: int, *, title: str | None = None,
              text: str | None = None, media: list[int] | None = None,
              links: list[str] | None = None, locales: dict[str, Any] | None = None,
              actor: str = "") -> int:
    """Write a new version; what was already sent keeps pointing at the old one."""
    item = session.get(ContentItem, item_id)
    if item is None:
        raise ContentError(f"no content item {item_id}")
    last = _version(session, item_id, item.current_version)
    item.current_version += 1
    session.add(ContentVersion(
        item_id=item_id, version=item.current_version,
        title=(title or last.title).strip()[:200], text=(text or last.text).strip(),
        locales=last.locales if locales is None else locales,
        media=last.media if media is None else media,
        links=last.links if links is None else links))
    session.add(AuditLog(actor=actor or "cli", action="content.edit", object_type="content",
                         object_id=str(item_id), detail={"version": item.current_version}))
    session.flush()
    return item.current_version


def _version(session: Session, item_id: int, version: int) -> ContentVersion:
    return session.execute(select(ContentVersion).where(
        ContentVersion.item_id == item_id, ContentVersion.version == version)).scalar_one()


def _view(item: ContentItem, version: ContentVersion, topic: Topic | None) -> ContentView:
    return ContentView(
        id=item.id, version=version.version, version_id=version.id, title=version.title,
        text=version.text, topic_code=topic.code if topic else None,
        topic_name=topic.name if topic else None, tags=tuple(item.tags or ()),
        use_in_village=item.use_in_village, media=tuple(int(m) for m in version.media or ()),
        links=tuple(version.links or ()), locales=dict(version.locales or {}),
        created_at=version.created_at)


def get_item(session: Session, item_id: int, *, version: int | None = None,
             version_id: int | None = None) -> ContentView | None:
    """An item as of its current version, or of a given one (what a broadcast sent)."""
    item = session.get(ContentItem, item_id)
    if item is None:
        return None
    query = select(ContentVersion).where(ContentVersion.item_id == item_id)
    if version_id is not None:
        query = query.where(ContentVersion.id == version_id)
    else:
        query = query.where(ContentVersion.version == (version or item.current_version))
    row = session.scalar(query)
    if row is None:
        return None
    topic = session.get(Topic, item.topic_id) if item.topic_id else None
    return _view(item, row, topic)


def list_items(session: Session, *, topic_code: str | None = None, limit: int = 100,
               offset: int = 0) -> list[ContentView]:
    """Active items, newest first, each as of its current version."""
    query = (select(ContentItem, ContentVersion, Topic)
             .join(ContentVersion, (ContentVersion.item_id == ContentItem.id)
                   & (ContentVersion.version == ContentItem.current_version))
             .outerjoin(Topic, Topic.id == ContentItem.topic_id)
             .where(ContentItem.active.is_(True))
             .order_by(ContentItem.id.desc()).limit(limit).offset(offset))
    if topic_code == "":
        query = query.where(ContentItem.topic_id.is_(None))
    elif topic_code is not None:
        query = query.where(Topic.code == topic_code)
    return [_view(i, v, t) for i, v, t in session.execute(query)]


@dataclass(frozen=True)
class TopicShelf:
    code: str  # "" for items without a topic
    name: str
    items: int


def library_topics(session: Session) -> list[TopicShelf]:
    """The topics that have items, in the plan's order, and how many each has."""
    rows = session.execute(
        select(Topic.code, Topic.name, func.count(ContentItem.id))
        .join(ContentItem, ContentItem.topic_id == Topic.id)
        .where(ContentItem.active.is_(True))
        .group_by(Topic.id, Topic.code, Topic.name, Topic.position).order_by(Topic.position))
    shelves = [TopicShelf(c, n, k) for c, n, k in rows]
    loose = session.scalar(select(func.count(ContentItem.id)).where(
        ContentItem.active.is_(True), ContentItem.topic_id.is_(None)))
    if loose:
        shelves.append(TopicShelf("", "", int(loose)))
    return shelves


def acknowledge(session: Session, *, item_id: int, member_id: int, kind: str,
                broadcast_id: int | None, people: int | None = None,
                today: date | None = None, channel: str = "") -> bool:
    """Record "received" or "used"; False when this member had already said so.

    "Used in the village" with a number of people counts like a report of a direct
    communication session by the member's team, on the item's topic.
    """
    if kind not in ("received", "used"):
        raise ValueError(kind)
    if session.get(ContentItem, item_id) is None:
        return False
    member = session.get_one(Member, member_id)
    exists = session.scalar(select(ContentAck.id).where(
        ContentAck.item_id == item_id, ContentAck.member_id == member_id, ContentAck.kind == kind))
    if exists is not None:
        return False
    ack = ContentAck(item_id=item_id, member_id=member_id, kind=kind, people=people,
                     broadcast_id=broadcast_id, team_id=member.team_id)
    try:
        with session.begin_nested():
            session.add(ack)
            session.flush()
    except IntegrityError:  # the same press, twice at once
        return False
    if kind == "used" and people and today is not None:
        ack.report_id = _count_as_report(session, ack, member, today, channel)
    return True


def _count_as_report(session: Session, ack: ContentAck, member: Member, today: date,
                     channel: str) -> int | None:
    item = session.get_one(ContentItem, ack.item_id)
    activity = session.scalar(
        select(ActivityType.id).join(Plan, Plan.id == ActivityType.plan_id)
        .where(ActivityType.code == USED_ACTIVITY).order_by(Plan.loaded_at.desc()).limit(1))
    if activity is None:
        return None
    version = _version(session, item.id, item.current_version)
    topic = session.get(Topic, item.topic_id) if item.topic_id else None
    report = Report(number=f"tmp-{secrets.token_hex(6)}", member_id=member.id,
                    team_id=member.team_id, activity_type_id=activity, activity_date=today,
                    total=int(ack.people or 0), topic_id=item.topic_id,
                    topic_text=topic.name if topic else "",
                    notes=f"content #{item.id}: {version.title}"[:1000], channel=channel)
    session.add(report)
    session.flush()
    report.number = f"BC-{report.id:05d}"
    return report.id
