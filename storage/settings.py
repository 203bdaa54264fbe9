"""Small durable values (a poller's offset, a channel's mode) kept beside the data."""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.models import Setting, utcnow


def get(session: Session, key: str) -> str | None:
    """A stored value, or None."""
    row = session.get(Setting, key)
    return row.value if row is not None else None


def put(session: Session, key: str, value: str) -> None:
    """Store a value in the caller's transaction."""
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value, updated_at=utcnow()))
    else:
        row.value, row.updated_at = value, utcnow()


def delete(session: Session, key: str) -> None:
    """Forget a value in the caller's transaction; forgetting an absent one is no error."""
    row = session.get(Setting, key)
    if row is not None:
        session.delete(row)
