"""Migrations from empty, models and migrations agreeing, and SQLite tuned for two writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

from storage import migrate
from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database
from storage.models import Base, Setting


@pytest.fixture
def empty_db(empty_db_url: str) -> Iterator[Database]:
    database = Database(empty_db_url)
    yield database
    database.dispose()


def table_names(database: Database) -> set[str]:
    return set(inspect(database.engine).get_table_names())


def test_upgrade_from_empty_reaches_head(empty_db: Database) -> None:
    assert table_names(empty_db) == set()
    assert migrate.current_revision(empty_db.engine) is None

    migrate.upgrade(empty_db.engine)

    head = migrate.head_revision()
    assert migrate.current_revision(empty_db.engine) == head
    assert table_names(empty_db) == set(Base.metadata.tables) | {"alembic_version"}


def test_models_and_migrations_agree(empty_db: Database) -> None:
    """The equivalent of `alembic check`: autogenerate finds nothing to write."""
    migrate.upgrade(empty_db.engine)
    with empty_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == []


def test_fixture_database_agrees_with_models(db: Database) -> None:
    """The migrated template every other test uses is at head and matches the models too."""
    assert migrate.current_revision(db.engine) == migrate.head_revision()
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_second_upgrade_is_a_no_op(empty_db: Database) -> None:
    migrate.upgrade(empty_db.engine)
    with empty_db.transaction() as session:
        session.add(Setting(key="kept", value="across upgrades"))
    columns = {t: [c["name"] for c in inspect(empty_db.engine).get_columns(t)]
               for t in table_names(empty_db)}

    migrate.upgrade(empty_db.engine)

    assert migrate.current_revision(empty_db.engine) == migrate.head_revision()
    assert {t: [c["name"] for c in inspect(empty_db.engine).get_columns(t)]
            for t in table_names(empty_db)} == columns
    with empty_db.sessions() as session:
        assert session.get(Setting, "kept").value == "across upgrades"


def test_downgrade_to_base_and_up_again(empty_db: Database) -> None:
    migrate.upgrade(empty_db.engine)
    cfg = migrate.alembic_config(empty_db.engine)
    with empty_db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert table_names(empty_db) <= {"alembic_version"}
    assert migrate.current_revision(empty_db.engine) is None

    migrate.upgrade(empty_db.engine)
    assert migrate.current_revision(empty_db.engine) == migrate.head_revision()
    assert table_names(empty_db) == set(Base.metadata.tables) | {"alembic_version"}


# --- SQLite: WAL, busy timeout, foreign keys -----------------------------------------------


def test_sqlite_pragmas_on_every_connection(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite pragmas")
    for _ in range(2):  # a fresh connection and a pooled one
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    assert SQLITE_BUSY_TIMEOUT_MS >= 5000


def test_sqlite_foreign_keys_are_enforced(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    from storage.models import Area

    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(Area(code="orphan", name="Orphan", name_folded="orphan", level="village",
                         parent_id=999_999))
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Area)) == 0


def test_two_writers_never_see_database_is_locked(db: Database) -> None:
    """Like the web process and the worker: separate engines, writing at the same moment.

    Each transaction reads before it writes, the pattern that fails at once with "database is
    locked" when SQLite transactions start deferred.
    """
    per_thread = 200
    databases = [Database(db.url), Database(db.url)]
    start = threading.Barrier(len(databases))
    errors: list[BaseException] = []

    def write(index: int, database: Database) -> None:
        try:
            start.wait(timeout=10)
            for n in range(per_thread):
                with database.transaction() as session:
                    session.scalar(select(func.count()).select_from(Setting))
                    session.add(Setting(key=f"writer{index}.{n}", value=str(n)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i, d)) for i, d in enumerate(databases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for database in databases:
        database.dispose()

    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Setting)) == 2 * per_thread


def test_two_threads_sharing_one_database_object(db: Database) -> None:
    per_thread = 200
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def write(index: int) -> None:
        try:
            start.wait(timeout=10)
            for n in range(per_thread):
                with db.transaction() as session:
                    session.add(Setting(key=f"shared{index}.{n}", value=str(n)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Setting)) == 2 * per_thread
