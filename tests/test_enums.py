"""Closed value sets: the enums, the CHECK constraints built from them, and migration 0006."""

from __future__ import annotations

import importlib.util
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import CheckConstraint, text
from sqlalchemy.exc import IntegrityError

from storage import migrate
from storage.db import Database
from storage.enums import Consent, OutboxStatus, PhotoError, Role
from storage.models import Area, Base, InviteCode, Team, TeamKind

VERSIONS = Path(__file__).resolve().parent.parent / "storage" / "migrations" / "versions"
MIGRATION = VERSIONS / "0006_closed_value_sets_checked.py"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Latest:
    """The CHECK definitions as of the newest migration: a later revision that redefines a
    constraint (an enum that grew) declares it again in a CHECKS tuple of the same shape."""

    def __init__(self) -> None:
        latest: dict[str, tuple[str, str, str, tuple[str, ...], bool]] = {}
        self.conditions: dict[str, object] = {}
        for path in sorted(VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py")):
            module = _load(path)
            for check in getattr(module, "CHECKS", ()):
                latest[check[1]] = check
                self.conditions[check[1]] = module._condition
        self.CHECKS = tuple(latest.values())

    def _condition(self, column: str, values: tuple[str, ...]) -> str:
        condition = next(iter(self.conditions.values()))
        return condition(column, values)  # type: ignore[operator, no-any-return]


def _migration() -> _Latest:
    return _Latest()


ENUM_OF = {"ck_outbox_status": OutboxStatus, "ck_invite_codes_role": Role,
           "ck_members_role": Role, "ck_identities_consent": Consent}


def test_the_migration_lists_what_the_enums_hold() -> None:
    checks = {name: values for _table, name, _column, values, _all in _migration().CHECKS}
    assert checks == {name: tuple(enum) for name, enum in ENUM_OF.items()}


def test_the_models_declare_the_same_checks_as_the_migration() -> None:
    migration = _migration()
    declared = {
        str(c.name): (table.name, str(c.sqltext))
        for table in Base.metadata.tables.values() for c in table.constraints
        if isinstance(c, CheckConstraint) and c.name in ENUM_OF
    }
    assert declared == {
        name: (table, migration._condition(column, values))
        for table, name, column, values, _all in migration.CHECKS
    }


@pytest.mark.parametrize("enum", [OutboxStatus, Consent, Role, PhotoError])
def test_members_are_the_strings_stored(enum: type[StrEnum]) -> None:
    for member in enum:
        assert member == member.value and f"{member}" == member.value
        assert enum(member.value) is member


def _identity(db: Database) -> int:
    with db.engine.begin() as conn:
        return int(conn.execute(text(
            "INSERT INTO identities (channel, external_id, locale, consent, created_at)"
            " VALUES ('web', :external_id, 'vi', 'pending', CURRENT_TIMESTAMP) RETURNING id"
        ), {"external_id": uuid.uuid4().hex}).scalar_one())


def _queue(db: Database, identity_id: int, status: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO outbox (identity_id, channel, payload, status, priority, attempts,"
            " next_attempt_at, created_at) VALUES (:id, 'web', '{}', :status, 0, 0,"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"id": identity_id, "status": status})


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=st.one_of(st.sampled_from(list(OutboxStatus)),
                        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_ ", max_size=16)))
def test_the_outbox_takes_exactly_the_enums_statuses(db: Database, status: str) -> None:
    identity_id = _identity(db)
    if status in set(OutboxStatus):
        _queue(db, identity_id, status)
    else:
        with pytest.raises(IntegrityError):
            _queue(db, identity_id, status)


def test_a_capitalised_status_or_an_unknown_invite_role_is_refused(db: Database) -> None:
    with pytest.raises(IntegrityError):
        _queue(db, _identity(db), "PENDING")
    with db.transaction() as session:
        area = Area(code="a", name="A", name_folded="a", level="village")
        kind = TeamKind(code="communication", name="Tổ")
        session.add_all([area, kind])
        session.flush()
        team = Team(code="t", name="T", name_folded="t", kind_id=kind.id, area_id=area.id)
        session.add(team)
        session.flush()
        session.add(InviteCode(code="ABC", team_id=team.id, role=Role.LEADER,
                               expires_at=datetime.now(UTC)))
    with db.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(text("UPDATE invite_codes SET role = 'admin'"))


def test_consent_and_member_role_are_checked_on_every_database(db: Database) -> None:
    """A CHECK on PostgreSQL (0006), a trigger on SQLite (0019): the same refusal."""
    _identity(db)
    with db.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(text("UPDATE identities SET consent = 'maybe'"))
    with db.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(text("INSERT INTO members (display_name, role, locale, created_at)"
                          " VALUES ('x', 'admin', 'vi', CURRENT_TIMESTAMP)"))
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE identities SET consent = 'given'"))
        conn.execute(text("INSERT INTO members (display_name, role, locale, created_at)"
                          " VALUES ('y', 'leader', 'vi', CURRENT_TIMESTAMP)"))


def test_the_sqlite_triggers_list_what_the_enums_hold() -> None:
    module = _load(next(VERSIONS.glob("0019_*.py")))
    assert {name: values for _t, name, _c, values in module.TRIGGER_CHECKS} == {
        "ck_members_role": tuple(Role), "ck_identities_consent": tuple(Consent)}


def test_upgrading_to_0006_keeps_queued_messages_and_people(empty_db_url: str) -> None:
    database = Database(empty_db_url)
    try:
        migrate.upgrade(database.engine, "0005")
        identity_id = _identity(database)
        _queue(database, identity_id, OutboxStatus.OUTSIDE_WINDOW)
        with database.engine.begin() as conn:
            conn.execute(text("INSERT INTO conversation_states (identity_id, flow, step, draft,"
                              " updated_at) VALUES (:id, 'report', 'date', '{}',"
                              " CURRENT_TIMESTAMP)"), {"id": identity_id})
        migrate.upgrade(database.engine, "0006")
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT identity_id, status FROM outbox")).all() == [
                (identity_id, "outside_window")]
            assert conn.execute(text("SELECT count(*) FROM conversation_states")).scalar() == 1
        with pytest.raises(IntegrityError):
            _queue(database, identity_id, "held")
        migrate.upgrade(database.engine, "head")
    finally:
        database.dispose()
