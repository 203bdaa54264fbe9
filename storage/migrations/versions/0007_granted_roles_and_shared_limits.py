"""granted roles and shared limits: rate_events, and self-chosen leaders become members

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01

Wrong link and invite codes and web chat messages are counted in `rate_events`, so every web
worker enforces the same limits. Until now anyone joining without an invite could answer "team
leader" and see the team's reporting; a leader role is now only granted (an invite made for the
role, or an officer's grant), so a leader whose join went through no invite is a member again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bucket", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_events")),
    )
    with op.batch_alter_table("rate_events", schema=None) as batch_op:
        batch_op.create_index("ix_rate_events_bucket_key_at", ["bucket", "key", "at"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_rate_events_at"), ["at"], unique=False)
    _demote_self_chosen_leaders()


def _demote_self_chosen_leaders() -> None:
    bind = op.get_bind()
    granted: set[int] = set()
    invites = {code for (code,) in bind.execute(sa.text(
        "SELECT code FROM invite_codes WHERE role = 'leader'"))}
    rows = bind.execute(sa.text(
        "SELECT action, object_id, detail FROM audit_log"
        " WHERE action IN ('member.join', 'member.grant_leader')"))
    for action, object_id, detail in rows:
        data = json.loads(detail) if isinstance(detail, str) else (detail or {})
        if action == "member.grant_leader" and str(object_id).isdigit():
            granted.add(int(object_id))
        elif data.get("invite") in invites and isinstance(data.get("member"), int):
            granted.add(int(data["member"]))
    leaders = [m for (m,) in bind.execute(sa.text("SELECT id FROM members WHERE role = 'leader'"))]
    for member_id in leaders:
        if member_id not in granted:
            bind.execute(sa.text("UPDATE members SET role = 'member' WHERE id = :id"),
                         {"id": member_id})


def downgrade() -> None:
    with op.batch_alter_table("rate_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_events_at"))
        batch_op.drop_index("ix_rate_events_bucket_key_at")
    op.drop_table("rate_events")
