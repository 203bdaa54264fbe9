"""Tables of deadlines' follow-up: nil reports, the reminder ledger, officers of an area."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId, utcnow


class NilReport(Base):
    """A team's explicit "no activity" for one deadline's period: that too is reporting."""

    __tablename__ = "nil_reports"
    __table_args__ = (UniqueConstraint("team_id", "deadline_id", "period"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    deadline_id: Mapped[int] = mapped_column(ForeignKey("deadlines.id"))
    period: Mapped[str] = mapped_column(String(16))  # 2025 | 2025-Q3 | 2025-09
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReminderLedger(Base):
    """Every reminder, snooze and escalation once: the unique key is what makes it exactly once.

    offset_days: a reminder's days before the due date (>= 0); an escalation's -1 - days after
    it; a snooze SNOOZE_OFFSET. A snooze is written "owed" with its moment and sent later.
    """

    __tablename__ = "reminder_ledger"
    __table_args__ = (
        UniqueConstraint("deadline_id", "period", "member_id", "offset_days"),
        Index("ix_reminder_ledger_owed", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # reminder | snooze | escalation
    deadline_id: Mapped[int] = mapped_column(ForeignKey("deadlines.id"))
    period: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"),
                                           index=True)
    offset_days: Mapped[int] = mapped_column(Integer)
    identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(8), default="sent")  # sent | owed | skipped
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DigestLedger(Base):
    """The province digest: one per admin per local day."""

    __tablename__ = "digest_ledger"
    __table_args__ = (UniqueConstraint("member_id", "day"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OfficerInvite(Base):
    """An invite for an officer of an area (commune, district, province), not for a team."""

    __tablename__ = "officer_invites"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    role: Mapped[str] = mapped_column(String(24))  # officer_commune / _district / _province
    expires_at: Mapped[datetime]
    max_uses: Mapped[int] = mapped_column(Integer, default=5)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OfficerGrant(Base):
    """A member who is an officer of an area; what they are told about is checked against it."""

    __tablename__ = "officer_grants"
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"),
                                           unique=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    role: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
