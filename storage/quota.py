"""What a platform's per-conversation message quota counts: rows delivered since a member wrote."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Outbox


def delivered_since(
    session: Session, identity_id: int, channel: str, since: datetime, *, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    """Rows sent to one identity on one channel after `since`, as (id, payload).

    One query on the outbox's identity index (no ORDER BY, so the planner never prefers a walk
    of the primary key); the caller counts platform messages from the payloads, since a row may
    have been several messages and an acknowledgement none.
    """
    rows = session.execute(
        select(Outbox.id, Outbox.payload)
        .where(Outbox.identity_id == identity_id, Outbox.channel == channel,
               Outbox.status == "sent", Outbox.sent_at > since)
        .limit(limit)
    )
    return [(row[0], dict(row[1])) for row in rows]
