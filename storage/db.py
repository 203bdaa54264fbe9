"""Engines and sessions: SQLite tuned for a web process and a worker writing at once."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

try:  # POSIX; elsewhere writers of other processes fall back to SQLite's busy wait
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 15_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer overlap; the busy timeout waits instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _enable_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch a new file to WAL, waiting out a second process doing the same.

    WAL is a property of the file, so only the first connection ever changes it. That change
    needs the file to itself, and SQLite answers "database is locked" at once rather than call
    the busy handler (it would deadlock two connections upgrading their shared locks), so two
    replicas starting together on a new file retry here within the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.01
    while True:
        try:
            row = cursor.execute("PRAGMA journal_mode").fetchone()
            if row and str(row[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _sqlite_begin_immediate(conn: Any) -> None:
    """Take the write lock at BEGIN, so two writers queue on the busy timeout, never deadlock."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings each backend needs."""
    # Vietnamese stays readable (and a third of the size) in JSON columns.
    kwargs.setdefault("json_serializer", json_dumps)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        # pysqlite's own transaction handling defers BEGIN; we issue it ourselves.
        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # Sessions speak UTC whatever the server's TimeZone; a dead host fails in seconds.
    kwargs.setdefault("connect_args", {"connect_timeout": 5, "options": "-c timezone=UTC"})
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine, "checkin", _note_idle)
        dialect = engine.dialect
        event.listen(engine, "checkout",
                     lambda dbapi_connection, record, _proxy: _ping_if_idle(
                         dialect, dbapi_connection, record))
    return engine


# A pooled connection used moments ago is alive but for a server restart in those moments, and
# then the request fails once, the pool is invalidated, and the platform resends the webhook.
# pool_pre_ping would spend a round trip on every checkout: a tenth of a webhook's CPU.
PING_AFTER_IDLE_SECONDS = 5.0


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dialect: Dialect, dbapi_connection: Any, record: Any) -> None:
    """Ping a connection that sat idle; a dead one is replaced before anyone uses it."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, dbapi_connection, None):
            # The pool discards this connection and checks out another (SQLAlchemy's
            # documented use of DisconnectionError in a checkout listener).
            raise DisconnectionError(str(exc)) from exc
        raise


def json_dumps(value: Any) -> str:
    """JSON as every JSON column is written (engines here, and storage.hotsql's statements)."""
    return json.dumps(value, ensure_ascii=False)


class WriterQueue:
    """Writers to one SQLite file wait their turn in line instead of polling its lock.

    SQLite lets one writer in at a time; the others sleep in its busy handler with a growing
    back-off (up to 100 ms a try), so under load the lock often stands free while every
    writer sleeps. A thread lock orders writers inside a process and an flock on a file next
    to the database orders processes (gunicorn workers, `duan8 worker`); both wake the next
    writer as soon as the lock is released. The busy timeout stays as the backstop for
    writers outside the queue (migrations, another program).
    """

    def __init__(self, lock_path: str | None) -> None:
        self._lock_path = lock_path if fcntl is not None else None
        self._thread_lock = threading.RLock()
        self._local = threading.local()
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the write turn; a nested call from the same thread is already inside."""
        with self._thread_lock:
            depth = getattr(self._local, "depth", 0)
            self._local.depth = depth + 1
            fd = self._file() if depth == 0 else None
            try:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    if fd is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                self._local.depth = depth

    def _file(self) -> int | None:
        """The lock file, opened again in a forked child (an flock is per open file)."""
        if self._lock_path is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd


_QUEUES: dict[str, WriterQueue] = {}
_QUEUES_LOCK = threading.Lock()


def writer_queue(engine: Engine) -> WriterQueue:
    """One queue per database file in a process, so two engines on one file share the line."""
    path = beside_database(engine, ".writer-lock")
    if path is None:
        return WriterQueue(None)
    with _QUEUES_LOCK:
        return _QUEUES.setdefault(path, WriterQueue(path))


def beside_database(engine: Engine, suffix: str) -> str | None:
    """A lock file's path beside an SQLite database file; None for an in-memory database."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + suffix


class Database:
    """One engine and its session factory, shared by the web app, the worker and the CLI."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.writers = writer_queue(self.engine) if self.engine.dialect.name == "sqlite" else None

    @property
    def is_sqlite(self) -> bool:
        """SQLite has no row locks or LISTEN/NOTIFY; callers pick simpler paths there."""
        return self.engine.dialect.name == "sqlite"

    def ping(self) -> None:
        """Round-trip to the database; raises when it cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together or not at all."""
        if self.writers is None:
            with self.sessions() as session, session.begin():
                yield session
            return
        # Every transaction here writes (BEGIN IMMEDIATE), so each one takes a turn.
        with self.writers.turn(), self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close pooled connections (tests and forked workers)."""
        self.engine.dispose()


def lock_exclusively(session: Session, key: int) -> None:
    """Serialise one piece of work across processes for the rest of this transaction.

    PostgreSQL takes an advisory lock; SQLite's BEGIN IMMEDIATE already serialises writers.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched (its result is a cursor result)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)
