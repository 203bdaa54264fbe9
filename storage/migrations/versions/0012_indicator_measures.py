"""indicator measures: how each of the plan's indicators is counted, kept as data

Revision ID: 0012
Revises: 0005
Create Date: 2026-12-01

The plan file gives each indicator a measure (active teams of a kind, a count of reports of
some activity types, or a sum of participants over them, with the period it counts over);
loading the plan copies it here, where the progress figures read it. Null until a plan with
measures is loaded: such an indicator shows no achieved figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("indicators") as batch:
        batch.add_column(sa.Column("measure", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("indicators") as batch:
        batch.drop_column("measure")
