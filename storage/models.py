"""The tables: the plan, people and their channels, conversations, the outbox, reports."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.enums import Consent, OutboxStatus, Role, check_in

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY auto-increments).
BigId = BigInteger().with_variant(Integer(), "sqlite")


# Folded names are compared by byte order (prefix ranges in storage.search); PostgreSQL's
# locale collations would order "talu{" unpredictably, so the column uses "C" there.
FoldedName = String(200).with_variant(String(200, collation="C"), "postgresql")


def utcnow() -> datetime:
    """Timezone-aware now; every stored instant is UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime that is always timezone-aware UTC, although SQLite keeps no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite compares text: drop the offset so every stored value has one shape.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


# --- the plan -----------------------------------------------------------------------------


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    phase_start: Mapped[date] = mapped_column(Date)
    phase_end: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(Text, default="")
    root_area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    content_sha256: Mapped[str] = mapped_column(String(64), default="")
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Area(Base):
    """A node of the area tree; depth is data, so a reform that drops districts is a plan edit."""

    __tablename__ = "areas"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_folded: Mapped[str] = mapped_column(FoldedName, index=True)
    level: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    parent: Mapped[Area | None] = relationship(remote_side=[id])


class TeamKind(Base):
    __tablename__ = "team_kinds"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Indicator(Base):
    __tablename__ = "indicators"
    __table_args__ = (UniqueConstraint("plan_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str] = mapped_column(String(64), default="")
    team_kind_id: Mapped[int | None] = mapped_column(ForeignKey("team_kinds.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The plan file's measure: {"kind", "period", "activity_types", "field"} (storage.progress).
    measure: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class IndicatorTarget(Base):
    """A target for one area; the province's comes from the plan, lower ones from admins."""

    __tablename__ = "indicator_targets"
    __table_args__ = (UniqueConstraint("indicator_id", "area_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id", ondelete="CASCADE"))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    target: Mapped[int] = mapped_column(Integer)


class ActivityType(Base):
    __tablename__ = "activity_types"
    __table_args__ = (UniqueConstraint("plan_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    indicator_id: Mapped[int | None] = mapped_column(ForeignKey("indicators.id"))
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Topic(Base):
    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("plan_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Deadline(Base):
    __tablename__ = "deadlines"
    __table_args__ = (UniqueConstraint("plan_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    recurrence: Mapped[str] = mapped_column(String(16))  # yearly | monthly
    month: Mapped[int | None] = mapped_column(Integer)
    day: Mapped[int] = mapped_column(Integer)
    remind_days_before: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Which period a due date asks for (storage.deadlines): its unit, 0 = the one the due date
    # falls in, -1 = the one before; who must report (empty = everyone); plan or admin.
    period: Mapped[str] = mapped_column(String(8), default="year", server_default="year")
    period_offset: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    team_kinds: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    roles: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    area_codes: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    remind_at: Mapped[str | None] = mapped_column(String(5))  # local HH:MM, else the setting
    origin: Mapped[str] = mapped_column(String(8), default="plan", server_default="plan")


# --- teams and people --------------------------------------------------------------------


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_folded: Mapped[str] = mapped_column(FoldedName, index=True)
    kind_id: Mapped[int] = mapped_column(ForeignKey("team_kinds.id"))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Member(Base):
    __tablename__ = "members"
    # PostgreSQL only: SQLite adds a CHECK by rebuilding the table, and dropping a table that
    # others reference cascades with foreign keys on (migration 0006).
    __table_args__ = (check_in("role", Role).ddl_if(dialect="postgresql"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    locale: Mapped[str] = mapped_column(String(8), default="vi")
    consent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    erased_at: Mapped[datetime | None]
    # Set by an officer: no broadcasts or reminders any more; reports and history stay.
    deactivated_at: Mapped[datetime | None]


class Identity(Base):
    """One member on one platform; several identities may point at the same member."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        # PostgreSQL only, as for members.role.
        check_in("consent", Consent).ddl_if(dialect="postgresql"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    consent: Mapped[str] = mapped_column(String(12), default=Consent.PENDING)
    locale: Mapped[str] = mapped_column(String(8), default="vi")
    last_inbound_at: Mapped[datetime | None]
    unreachable_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationState(Base):
    __tablename__ = "conversation_states"
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    flow: Mapped[str] = mapped_column(String(32), default="")
    step: Mapped[str] = mapped_column(String(32), default="")
    draft: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class InviteCode(Base):
    __tablename__ = "invite_codes"
    __table_args__ = (check_in("role", Role),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    expires_at: Mapped[datetime]
    max_uses: Mapped[int] = mapped_column(Integer, default=50)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LinkCode(Base):
    """A one-time code that joins a second platform identity to an existing member."""

    __tablename__ = "link_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


# --- messages in and out -------------------------------------------------------------------


class InboundEvent(Base):
    """Every platform event once: the unique key is what makes a retried webhook harmless."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("channel", "event_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(191))
    identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Outbox(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "priority", "next_attempt_at"),
        check_in("status", OutboxStatus),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # lower goes first
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    platform_message_id: Mapped[str | None] = mapped_column(String(191))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # What the row is (reply | broadcast | reminder), the broadcast it belongs to, and a key
    # that lets a row be written at most once (a broadcast's "b:<broadcast>:<member>").
    kind: Mapped[str] = mapped_column(String(16), default="reply", server_default="reply")
    broadcast_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)


class Setting(Base):
    """Small durable values such as a poller's offset, kept with the data they describe."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- reports -------------------------------------------------------------------------------


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_team_date", "team_id", "activity_date"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    activity_type_id: Mapped[int] = mapped_column(ForeignKey("activity_types.id"))
    activity_date: Mapped[date] = mapped_column(Date)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    place_text: Mapped[str] = mapped_column(String(200), default="")
    total: Mapped[int] = mapped_column(Integer)
    women: Mapped[int] = mapped_column(Integer, default=0)
    ethnic: Mapped[int] = mapped_column(Integer, default=0)
    children: Mapped[int] = mapped_column(Integer, default=0)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    topic_text: Mapped[str] = mapped_column(String(300), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    channel: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Media(Base):
    """A stored photo; it belongs to a draft (identity) until its report is saved."""

    __tablename__ = "media"
    __table_args__ = (Index("ix_media_status", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"), index=True
    )
    report_id: Mapped[int | None] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A platform photo is counted in the draft at once and fetched by the worker afterwards,
    # so a webhook never waits on a download: ready | pending | failed.
    status: Mapped[str] = mapped_column(String(12), default="ready", server_default="ready")
    source: Mapped[str | None] = mapped_column(Text)  # platform URLs can be long
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    # Whether the photo may show a woman or child who could be recognised: true until the
    # member says otherwise, so an unanswered question errs on the protective side.
    identifiable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


# --- administration ------------------------------------------------------------------------


class AdminUser(Base):
    __tablename__ = "admin_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="province")  # province|district|commune
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
# Tables of other modules, so Base.metadata (migrations, tests) knows every one of them.
from storage import (  # noqa: E402,F401
    models_content,
    models_deadlines,
    models_safeguarding,
    models_security,
)
