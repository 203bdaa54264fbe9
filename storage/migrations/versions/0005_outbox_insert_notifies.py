"""outbox inserts notify: every queued message wakes the senders, with no extra statement

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

On PostgreSQL a statement-level trigger sends NOTIFY on the channel the senders LISTEN to
(storage/notify.py), so whoever queues a message (a webhook, the scheduler, a CLI command) wakes
them when the transaction commits, and the webhook's hot path saves a round trip. PostgreSQL
folds the notifications of one transaction into one. SQLite has no NOTIFY: there the sender
shares an in-process wake-up or polls.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must stay equal to storage.outbox.NOTIFY_CHANNEL; a migration does not import live code.
CHANNEL = "duan8_outbox"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION duan8_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_insert_notifies AFTER INSERT ON outbox"
        " FOR EACH STATEMENT EXECUTE FUNCTION duan8_outbox_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_insert_notifies ON outbox")
    op.execute("DROP FUNCTION IF EXISTS duan8_outbox_notify()")
