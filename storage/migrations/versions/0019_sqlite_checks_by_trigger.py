"""member roles and consent answers checked on SQLite too, by triggers

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-01

Migration 0006 put CHECK constraints on members.role and identities.consent on PostgreSQL only:
SQLite adds a CHECK by rebuilding the table, and rebuilding a table that others reference runs
their ON DELETE actions. A trigger refuses the same values without a rebuild, with the same
error class (an integrity error), so a deployment on SQLite keeps the same promise. The value
lists are written out, as a migration does not import live code; tests/test_enums.py holds them
equal to the enums. A later change to either set must drop and recreate these triggers.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("member", "leader")
CONSENTS = ("pending", "given", "refused")

# (table, constraint name the trigger stands for, column, values)
TRIGGER_CHECKS = (
    ("members", "ck_members_role", "role", ROLES),
    ("identities", "ck_identities_consent", "consent", CONSENTS),
)


def _triggers(table: str, name: str, column: str, values: Sequence[str]) -> list[str]:
    allowed = ", ".join(repr(v) for v in values)
    # As a CHECK does, NULL passes (the columns are NOT NULL already).
    refuse = (f"WHEN NEW.{column} NOT IN ({allowed}) "
              f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END")
    return [f"CREATE TRIGGER {name}_insert BEFORE INSERT ON {table} {refuse}",
            f"CREATE TRIGGER {name}_update BEFORE UPDATE OF {column} ON {table} {refuse}"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL has had the CHECK constraints since 0006
    for check in TRIGGER_CHECKS:
        for statement in _triggers(*check):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for _table, name, _column, _values in TRIGGER_CHECKS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}_insert")
        op.execute(f"DROP TRIGGER IF EXISTS {name}_update")
