"""folded names compared in byte order on PostgreSQL

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("areas", "teams")


def upgrade() -> None:
    # SQLite compares text byte by byte already; only PostgreSQL needs the "C" collation.
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.alter_column(table, "name_folded", type_=sa.String(200, collation="C"),
                        existing_type=sa.String(200), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.alter_column(table, "name_folded", type_=sa.String(200),
                        existing_type=sa.String(200, collation="C"), existing_nullable=False)
