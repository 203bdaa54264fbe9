"""content and broadcasts: versioned items, broadcasts, acknowledgements, outbox row kinds

Revision ID: 0011
Revises: 0005
Create Date: 2026-12-01

The outbox gains a kind (reply | broadcast | reminder), the broadcast a row belongs to, and a
unique key so a broadcast's fan-out can never write a second row for the same member.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "content_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("use_in_village", sa.Boolean(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(["topic_id"], ["topics.id"],
                                name=op.f("fk_content_items_topic_id_topics")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_items")),
    )
    op.create_index(op.f("ix_content_items_topic_id"), "content_items", ["topic_id"])
    op.create_table(
        "content_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("locales", sa.JSON(), nullable=False),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["content_items.id"], ondelete="CASCADE",
                                name=op.f("fk_content_versions_item_id_content_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_versions")),
        sa.UniqueConstraint("item_id", "version", name=op.f("uq_content_versions_item_id_version")),
    )
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("send_at", UTC_DT, nullable=False),
        sa.Column("cursor", BIG_ID, nullable=False),
        sa.Column("audience_total", sa.Integer(), nullable=False),
        sa.Column("queued_total", sa.Integer(), nullable=False),
        sa.Column("no_channel", sa.Integer(), nullable=False),
        sa.Column("lease_until", UTC_DT, nullable=True),
        sa.Column("paused_from", sa.String(length=16), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.Column("fanned_out_at", UTC_DT, nullable=True),
        sa.Column("cancelled_at", UTC_DT, nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["content_items.id"],
                                name=op.f("fk_broadcasts_item_id_content_items")),
        sa.ForeignKeyConstraint(["version_id"], ["content_versions.id"],
                                name=op.f("fk_broadcasts_version_id_content_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_index("ix_broadcasts_due", "broadcasts", ["status", "send_at"])
    op.create_index(op.f("ix_broadcasts_item_id"), "broadcasts", ["item_id"])
    op.create_table(
        "content_acks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("member_id", BIG_ID, nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("people", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("report_id", sa.BigInteger(), nullable=True),
        sa.Column("at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["content_items.id"], ondelete="CASCADE",
                                name=op.f("fk_content_acks_item_id_content_items")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE",
                                name=op.f("fk_content_acks_member_id_members")),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"], ondelete="SET NULL",
                                name=op.f("fk_content_acks_broadcast_id_broadcasts")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"],
                                name=op.f("fk_content_acks_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_acks")),
        sa.UniqueConstraint("item_id", "member_id", "kind",
                            name=op.f("uq_content_acks_item_id_member_id_kind")),
    )
    op.create_index(op.f("ix_content_acks_member_id"), "content_acks", ["member_id"])
    op.create_index(op.f("ix_content_acks_broadcast_id"), "content_acks", ["broadcast_id"])
    op.create_index(op.f("ix_content_acks_team_id"), "content_acks", ["team_id"])
    op.create_table(
        "proactive_usage",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "month", "kind", name=op.f("pk_proactive_usage")),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False,
                                   server_default="reply"))
        batch.add_column(sa.Column("broadcast_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("dedupe_key", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_outbox_broadcast_id"), "outbox", ["broadcast_id"])
    op.create_index(op.f("ix_outbox_dedupe_key"), "outbox", ["dedupe_key"], unique=True)
    op.create_index("ix_outbox_claim", "outbox", ["status", "priority", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_claim", table_name="outbox")
    op.drop_index(op.f("ix_outbox_dedupe_key"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_broadcast_id"), table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("dedupe_key")
        batch.drop_column("broadcast_id")
        batch.drop_column("kind")
    op.drop_table("proactive_usage")
    op.drop_table("content_acks")
    op.drop_table("broadcasts")
    op.drop_table("content_versions")
    op.drop_index(op.f("ix_content_items_topic_id"), table_name="content_items")
    op.drop_table("content_items")
