"""closed value sets checked: outbox status, invite and member roles, consent

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

CHECK constraints keep each column to its enum in storage/enums.py. The lists are written out
here, as a migration does not import live code; tests/test_enums.py holds them equal to the
enums. outbox and invite_codes are rebuilt on SQLite (batch mode). identities and members get
theirs on PostgreSQL only: SQLite adds a CHECK by rebuilding the table, and dropping a table
that others reference runs their ON DELETE actions while foreign keys are on, which they are
for the whole migration.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX_STATUSES = ("pending", "sending", "sent", "diverted", "caught_up", "outside_window",
                   "failed", "unreachable")
ROLES = ("member", "leader")
CONSENTS = ("pending", "given", "refused")

# (table, constraint, column, values, on every database or PostgreSQL only)
CHECKS = (
    ("outbox", "ck_outbox_status", "status", OUTBOX_STATUSES, True),
    ("invite_codes", "ck_invite_codes_role", "role", ROLES, True),
    ("members", "ck_members_role", "role", ROLES, False),
    ("identities", "ck_identities_consent", "consent", CONSENTS, False),
)


def _condition(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, name, column, values, everywhere in CHECKS:
        if everywhere or postgresql:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.create_check_constraint(name, _condition(column, values))


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, name, _column, _values, everywhere in reversed(CHECKS):
        if everywhere or postgresql:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_constraint(name, type_="check")
