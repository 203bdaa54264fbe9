"""safeguarding: disclosure cases, safeguarding officers, admins' phrases, the consent ledger

Revision ID: 0014
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)

# The outbox's statuses as of this revision (storage/enums.py OutboxStatus): broadcasts'
# paused, cancelled and held_quota (revision 0011), and erased.
OUTBOX_STATUSES = ("pending", "sending", "sent", "diverted", "caught_up", "outside_window",
                   "failed", "unreachable", "erased", "paused", "cancelled", "held_quota")
# Redefined here (the same shape as 0006's); tests/test_enums.py reads the latest definition.
CHECKS = (("outbox", "ck_outbox_status", "status", OUTBOX_STATUSES, True),)


def _condition(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_checks(checks: Sequence[tuple[str, str, str, Sequence[str], bool]]) -> None:
    for table, name, column, values, _everywhere in checks:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_="check")
            batch_op.create_check_constraint(name, _condition(column, values))


def upgrade() -> None:
    op.create_table(
        "safeguarding_cases",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("identity_id", BigId, nullable=True),
        sa.Column("member_id", BigId, nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("handled_by", sa.String(120), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], ondelete="SET NULL",
                                name="fk_safeguarding_cases_identity_id_identities"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="SET NULL",
                                name="fk_safeguarding_cases_member_id_members"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"],
                                name="fk_safeguarding_cases_team_id_teams"),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"],
                                name="fk_safeguarding_cases_area_id_areas"),
        sa.PrimaryKeyConstraint("id", name="pk_safeguarding_cases"),
    )
    for column in ("identity_id", "member_id", "area_id"):
        op.create_index(f"ix_safeguarding_cases_{column}", "safeguarding_cases", [column])
    op.create_table(
        "safeguarding_officers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", BigId, nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("granted_by", sa.String(120), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE",
                                name="fk_safeguarding_officers_member_id_members"),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"],
                                name="fk_safeguarding_officers_area_id_areas"),
        sa.PrimaryKeyConstraint("id", name="pk_safeguarding_officers"),
        sa.UniqueConstraint("member_id", "area_id",
                            name="uq_safeguarding_officers_member_id_area_id"),
    )
    op.create_index("ix_safeguarding_officers_area_id", "safeguarding_officers", ["area_id"])
    op.create_table(
        "disclosure_phrases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phrase", sa.String(200), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("added_by", sa.String(120), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_disclosure_phrases"),
        sa.UniqueConstraint("phrase", name="uq_disclosure_phrases_phrase"),
    )
    op.create_table(
        "consent_records",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("identity_id", BigId, nullable=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(12), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], ondelete="CASCADE",
                                name="fk_consent_records_identity_id_identities"),
        sa.PrimaryKeyConstraint("id", name="pk_consent_records"),
    )
    op.create_index("ix_consent_records_identity_id", "consent_records", ["identity_id"])
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("identifiable", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
    _replace_checks(CHECKS)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE status IN ('erased', 'paused', 'cancelled', "
               "'held_quota')")
    _replace_checks((("outbox", "ck_outbox_status", "status", OUTBOX_STATUSES[:8], True),))
    with op.batch_alter_table("media") as batch:
        batch.drop_column("identifiable")
    op.drop_table("consent_records")
    op.drop_table("disclosure_phrases")
    op.drop_index("ix_safeguarding_officers_area_id", "safeguarding_officers")
    op.drop_table("safeguarding_officers")
    for column in ("identity_id", "member_id", "area_id"):
        op.drop_index(f"ix_safeguarding_cases_{column}", "safeguarding_cases")
    op.drop_table("safeguarding_cases")
