"""The one door between platform channels and storage: the state a channel keeps.

A channel turns platform requests into `Incoming` and outbox rows into platform calls; what it
must remember between requests (a poller's offset, webhook or polling, the numbered choices a
chat was shown, the message a reply quotes, uploaded attachments, tokens) goes through
`ChannelPort`, so no other module in bot/channels/ opens a session or imports storage
(tests/test_channel_port_rule.py keeps it so). Memories that belong to one member's message
travel on `Incoming.memories` and are written by the dispatcher in the message's own
transaction, so a retried (duplicate) event leaves nothing behind.

The value types channels exchange with the shared sender are re-exported here for the same
reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from storage import media, outbox, settings, throttle
from storage.conversation import get_identity_id
from storage.db import Database, lock_exclusively
from storage.media import MediaFile
from storage.models import utcnow
from storage.outbox import PRIORITY_REPLY, OutboundMessage

__all__ = ["PRIORITY_REPLY", "ChannelPort", "Choice", "Database", "Delivered", "KeptValues",
           "MediaFile", "Memory", "OutboundMessage", "decode_choices", "encode_choices",
           "utcnow", "write_memories"]


# A button a chat was shown as a numbered line, {"label": …, "payload": …}: what typing its
# number presses.
Choice = dict[str, str]


@dataclass(frozen=True)
class Memory:
    """A small value a channel keeps per chat, written with the message that brought it."""

    key: str
    value: str


@dataclass(frozen=True)
class Delivered:
    """A reply the sender delivered, as a page that polls for its chat reads it."""

    id: int
    payload: dict[str, Any]
    sent_at: datetime | None


def encode_choices(choices: Iterable[Choice]) -> str:
    return json.dumps(list(choices), ensure_ascii=False)


def decode_choices(raw: str | None) -> list[Choice]:
    """The stored choices; [] when none or unreadable."""
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    if not isinstance(value, list):
        return []
    return [{"label": str(b.get("label") or ""), "payload": b["payload"]} for b in value
            if isinstance(b, dict) and isinstance(b.get("payload"), str)]


def write_memories(session: Session, memories: Iterable[Memory]) -> None:
    """In the dispatcher's transaction: the per-message memories an `Incoming` carries."""
    for memory in memories:
        settings.put(session, memory.key, memory.value)


class KeptValues:
    """Named values read and written inside one transaction that holds a lock (see `locked`)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, key: str) -> str | None:
        return settings.get(self._session, key)

    def put(self, key: str, value: str) -> None:
        settings.put(self._session, key, value)


class ChannelPort:
    """Typed access to what channels keep, each call its own short transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- small named values: offsets, modes, quote ids, long URLs

    def value(self, key: str) -> str | None:
        with self.db.sessions() as session:
            return settings.get(session, key)

    def keep(self, key: str, value: str) -> None:
        with self.db.transaction() as session:
            settings.put(session, key, value)

    def forget(self, key: str, *, only_if: str) -> None:
        """Drop a kept value, unless another process has replaced it meanwhile."""
        with self.db.transaction() as session:
            if settings.get(session, key) == only_if:
                settings.delete(session, key)

    @contextmanager
    def locked(self, lock_key: int) -> Iterator[KeptValues]:
        """One transaction holding a cross-process lock: what it writes commits together.

        Zalo's token refresh reads the pair, calls Zalo and writes the new pair inside one of
        these, so two processes never spend the same refresh token.
        """
        with self.db.transaction() as session:
            lock_exclusively(session, lock_key)
            yield KeptValues(session)

    def poll_offset(self, key: str) -> int:
        """The next update a poller asks for; 0 before the first."""
        return int(self.value(key) or 0)

    def save_poll_offset(self, key: str, offset: int) -> None:
        self.keep(key, str(offset))

    def polling_wanted(self, mode_key: str) -> bool:
        """Polling is the default; setting a webhook switches it off."""
        return self.value(mode_key) != "webhook"

    def set_mode(self, mode_key: str, *, webhook: bool) -> None:
        """Remember webhook or polling, so every worker process agrees after a restart."""
        self.keep(mode_key, "webhook" if webhook else "polling")

    # --- numbered choices

    def shown_choices(self, key: str) -> list[Choice]:
        """The numbered choices this chat saw last."""
        return decode_choices(self.value(key))

    def remember_choices(self, key: str, choices: Iterable[Choice]) -> None:
        """What a typed number presses from now on (an empty list forgets)."""
        self.keep(key, encode_choices(choices))

    # --- a chat's delivered replies (web chat's page reads them)

    def delivered(self, channel: str, external_id: str,
                  after_id: int) -> tuple[list[Delivered], int]:
        """Replies delivered to this chat after row `after_id`, and how many are still due."""
        with self.db.sessions() as session:
            identity_id = get_identity_id(session, channel, external_id)
            if identity_id is None:
                return [], 0
            rows = outbox.delivered_since(session, identity_id, after_id)
            pending = outbox.pending_count(session, identity_id)
        return [Delivered(row_id, payload, sent_at) for row_id, payload, sent_at in rows], pending

    # --- shared rate limits (web chat): counted in the database, so every web process agrees

    def hit_limits(self, checks: Sequence[tuple[throttle.Limit, str]],
                   now: datetime) -> timedelta | None:
        """Count one event against each (limit, key), or say how long to wait if one is full."""
        with self.db.transaction() as session:
            return throttle.hit(session, checks, now)

    # --- what was sent to a chat (Zalo's free replies are counted per member message)

    def sent_since(self, identity_id: int, channel: str, since: datetime, *,
                   limit: int) -> list[tuple[int, dict[str, Any]]]:
        """(row id, payload) of rows sent to this identity on this channel after `since`."""
        with self.db.sessions() as session:
            return outbox.sent_since(session, identity_id, channel, since, limit=limit)

    # --- stored photos (a platform that uploads them reads the file)

    def stored_photo(self, media_id: int) -> MediaFile | None:
        """A photo in the media store, or None when it is not there (erased)."""
        with self.db.sessions() as session:
            return media.media_file(session, media_id)
