"""members deactivated: an officer takes a member off broadcasts and reminders, keeping history

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-01

A member who left the team keeps their reports (they count towards the plan) but gets no
broadcast and no reminder any more; erasing is a different thing (their data goes).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("deactivated_at")
