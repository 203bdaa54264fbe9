"""Safeguarding tables: disclosures as cases, the officers who receive them, the phrase list.

A case is kept apart from reports on purpose: nothing that reads reports (lists, exports,
dashboards, broadcasts' audiences) can reach it by accident.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId, utcnow


class SafeguardingCase(Base):
    __tablename__ = "safeguarding_cases"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Where it came from; both links go when the member erases their data, the case stays.
    identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"), index=True)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="")
    category: Mapped[str] = mapped_column(String(32), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|contacted|closed
    handled_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SafeguardingOfficer(Base):
    """A member granted the safeguarding role for an area and everything under it."""

    __tablename__ = "safeguarding_officers"
    __table_args__ = (UniqueConstraint("member_id", "area_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    granted_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DisclosurePhrase(Base):
    """A phrase added by admins to the shipped list; stored folded (no diacritics)."""

    __tablename__ = "disclosure_phrases"
    id: Mapped[int] = mapped_column(primary_key=True)
    phrase: Mapped[str] = mapped_column(String(200), unique=True)
    category: Mapped[str] = mapped_column(String(32), default="violence")
    added_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentRecord(Base):
    """Each consent or refusal with the version of the notice shown, when, and on which channel.

    The identity's `consent` column stays the fast answer for the hot path; this is the ledger.
    """

    __tablename__ = "consent_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(12))  # given | refused
    channel: Mapped[str] = mapped_column(String(16), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
