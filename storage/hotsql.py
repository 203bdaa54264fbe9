"""The few statements every message runs, on the transaction's own DBAPI cursor.

Profiling the webhook under load showed SQLAlchemy's per-statement machinery (execution
context, bind and result processors, result metadata) costing three times what SQLite itself
spends on the identity upsert and the event claim: about 150 µs of a message's 1 ms of CPU.
These statements are fixed strings with plain parameters, so they skip that machinery and go
to the driver directly, inside the same connection and transaction as the Session's other
work. Values cross as the mapped columns store them (see storage.models.UTCDateTime and the
engine's JSON serializer), so rows written here read back the same through the ORM.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from storage.db import json_dumps

_NAMED = re.compile(r"(?<![:\w]):(\w+)")
# Parameters of these types go to either driver as they are.
_AS_IS = frozenset({str, int, bool, float, type(None)})


class HotStatement:
    """One SQL text in SQLite's `:name` style and psycopg's `%(name)s` style."""

    __slots__ = ("postgres", "sqlite")

    def __init__(self, sql: str) -> None:
        self.sqlite = sql
        self.postgres = _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))

    def __repr__(self) -> str:
        return f"HotStatement({self.sqlite!r})"


def is_postgres(session: Session) -> bool:
    """The dialect decides the parameter style and how times and JSON travel."""
    return session.get_bind().dialect.name == "postgresql"


def _bind(value: Any, postgres: bool) -> Any:
    """A parameter as the column types in storage.models would have sent it."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        # SQLite keeps SQLAlchemy's DATETIME text: naive UTC with six digits of microseconds.
        return value if postgres else value.replace(tzinfo=None).isoformat(
            sep=" ", timespec="microseconds")
    if isinstance(value, dict | list):
        if postgres:
            # Imported here: only a PostgreSQL connection needs the driver, and loading it
            # cost every `duan8` command on SQLite a twentieth of a second.
            from psycopg.types.json import Json

            return Json(value, dumps=json_dumps)
        return json_dumps(value)
    return value


def fetch(session: Session, statement: HotStatement,
          params: Mapping[str, Any]) -> list[Sequence[Any]]:
    """Run one statement in the session's transaction and return its rows as tuples."""
    postgres = is_postgres(session)
    # session.connection() begins the transaction the usual way (BEGIN IMMEDIATE on SQLite).
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(statement.postgres if postgres else statement.sqlite,
                       {key: value if type(value) in _AS_IS else _bind(value, postgres)
                        for key, value in params.items()})
        return list(cursor.fetchall()) if cursor.description is not None else []
    finally:
        cursor.close()


def read_time(value: Any) -> datetime | None:
    """A stored instant as an aware UTC datetime, from SQLite's text or psycopg's datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_json(value: Any) -> Any:
    """A JSON column's value, from SQLite's text or psycopg's already parsed object."""
    return json.loads(value) if isinstance(value, str | bytes) else value
