"""Process-long leases: a job that must not run twice at once (polling a platform) runs in one
process, and another takes it over when that process stops or dies.

A platform answers a second `getUpdates` caller with 409 Conflict and the two keep cutting each
other off, so with several workers exactly one may poll. PostgreSQL holds a session-level
advisory lock on a connection kept for the purpose; SQLite an flock on a file beside the
database. Both end with the process (a killed worker's connection closes, its files close), so
nothing needs expiring by hand.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

from sqlalchemy import text

from storage.db import Database, beside_database

try:  # POSIX; elsewhere only one process per SQLite file is supported anyway
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


def lease_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a lease's name."""
    digest = hashlib.blake2b(f"duan8:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Lease:
    """One named lease; `try_acquire` never waits, `still_held` notices a lost connection."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self._connection: Any = None  # PostgreSQL: the session holding the advisory lock
        self._fd: int | None = None  # SQLite: the open, flocked file

    @property
    def held(self) -> bool:
        """Whether this object believes it holds the lease (see still_held to check)."""
        return self._connection is not None or self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True if this process now holds it."""
        if self.held:
            return True
        if self.db.is_sqlite:
            return self._flock()
        # AUTOCOMMIT: a lock held for hours must not keep a transaction open with it.
        connection = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                       {"key": lease_key(self.name)}).scalar_one()
        except Exception:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def still_held(self) -> bool:
        """False once the lock's session is gone (database restarted, connection cut)."""
        if self._fd is not None:
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1")).scalar_one()
        except Exception as exc:
            log.warning("lease %s lost with its connection: %s", self.name, exc)
            self._drop_connection()
            return False
        return True

    def release(self) -> None:
        """Give the lease up so another process takes it now rather than after a death."""
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops its flock
            self._fd = None
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                         {"key": lease_key(self.name)})
            except Exception as exc:
                log.warning("could not unlock lease %s (%s); closing its session", self.name,
                            exc)
                self._drop_connection()
                return
            connection, self._connection = self._connection, None
            connection.close()

    def _drop_connection(self) -> None:
        """Close the session for good: it must not go back to the pool holding the lock."""
        connection, self._connection = self._connection, None
        connection.invalidate()
        connection.close()

    def _flock(self) -> bool:
        path = beside_database(self.db.engine, f".lease-{self.name}")
        if fcntl is None or path is None:
            self._fd = os.open(os.devnull, os.O_RDONLY)  # one process has the database
            return True
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True
