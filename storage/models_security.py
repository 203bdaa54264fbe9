"""Counters the web processes share: attempts at codes and messages per session and address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId, utcnow


class RateEvent(Base):
    """One counted event (a wrong code, a web chat message) under a key, for sliding windows.

    Several web workers (and replicas) see the same counts, so a limit holds whichever process
    answers; rows older than the longest window are deleted as new ones come in.
    """

    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_bucket_key_at", "bucket", "key", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(96))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
