"""Campaign content and broadcasts: items with versions, broadcasts, acknowledgements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId, Outbox, utcnow


class ContentItem(Base):
    """A piece of campaign material; what it says lives in its versions."""

    __tablename__ = "content_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"), index=True)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    use_in_village: Mapped[bool] = mapped_column(Boolean, default=False)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContentVersion(Base):
    """One edit of an item, never changed afterwards: a broadcast points at the one it sent."""

    __tablename__ = "content_versions"
    __table_args__ = (UniqueConstraint("item_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    # Other locales' title and text: {"en": {"title": …, "text": …}}.
    locales: Mapped[dict[str, Any]] = mapped_column(default=dict)
    media: Mapped[list[Any]] = mapped_column(default=list)  # media store ids
    links: Mapped[list[Any]] = mapped_column(default=list)  # video or PDF by address
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Broadcast(Base):
    """One item sent to an audience; the worker fans it out into outbox rows in batches."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_due", "status", "send_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("content_versions.id"))
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # scheduled → fanning_out → sending → done; paused and cancelled by an admin.
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    send_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Fan-out walks members by id; the last one written is kept with each batch.
    cursor: Mapped[int] = mapped_column(BigId, default=0)
    audience_total: Mapped[int] = mapped_column(Integer, default=0)
    queued_total: Mapped[int] = mapped_column(Integer, default=0)
    no_channel: Mapped[int] = mapped_column(Integer, default=0)  # members with no channel
    lease_until: Mapped[datetime | None]
    paused_from: Mapped[str | None] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    fanned_out_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class ContentAck(Base):
    """A member's "received" or "used in the village" for an item, once each."""

    __tablename__ = "content_acks"
    __table_args__ = (UniqueConstraint("item_id", "member_id", "kind"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"),
                                           index=True)
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # received | used
    people: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    report_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ProactiveUsage(Base):
    """Messages a platform counts against a monthly quota (Zalo OA's proactive messages),
    per local month and kind (broadcast | reminder)."""

    __tablename__ = "proactive_usage"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)


# The senders' claim walks due rows in queue order (storage.outbox._claim_sql).
Index("ix_outbox_claim", Outbox.status, Outbox.priority, Outbox.id)
