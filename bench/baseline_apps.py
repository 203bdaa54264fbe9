"""Baselines for the webhook benchmark, served by the same gunicorn settings as bot.wsgi:app.

`bare_app` (app A) answers 200 and does nothing: the cost of gunicorn, Flask and the loopback.
`durable_app` (app B) does the least a durable webhook must do: check the secret, read the
update id, and commit one `INSERT … ON CONFLICT DO NOTHING` of the raw body. It uses
storage.db.make_engine, so SQLite gets the same WAL, busy_timeout and BEGIN IMMEDIATE as the
service, and PostgreSQL the same pool.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

from flask import Flask, abort, jsonify, request
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
)
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import make_engine

WEBHOOK = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

metadata = MetaData()
# BIGINT on PostgreSQL; INTEGER on SQLite, where it holds 64 bits anyway.
raw_updates = Table(
    "bench_raw_updates", metadata,
    Column("update_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)


def create_table(engine: Engine) -> None:
    """Made once by the benchmark before gunicorn starts, so two workers never race on DDL."""
    metadata.create_all(engine)


def _health() -> Any:
    """Readiness probe for the benchmark's start-up wait."""
    return jsonify(status="ok")


def make_bare_app() -> Flask:
    """App A: the floor any Flask endpoint under this gunicorn can reach."""
    app = Flask("bench_bare")
    app.add_url_rule("/healthz", "health", _health)

    @app.post(WEBHOOK)
    def webhook() -> Any:
        """Answer at once: no secret check, no parsing, no storage."""
        return jsonify(ok=True)

    return app


def make_durable_app(database_url: str, secret: str) -> Flask:
    """App B: verify, parse, one committed insert keyed by update_id, answer."""
    app = Flask("bench_durable")
    engine = make_engine(database_url)
    insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)
    expected = secret.encode()
    app.add_url_rule("/healthz", "health", _health)

    @app.post(WEBHOOK)
    def webhook() -> Any:
        """Verify, parse, insert, commit, answer."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            abort(403)
        body = request.get_data()
        try:
            update_id = json.loads(body)["update_id"]
        except (ValueError, KeyError, TypeError):
            return jsonify(ok=False, error="not a Telegram update"), 400
        if not isinstance(update_id, int):
            return jsonify(ok=False, error="not a Telegram update"), 400
        statement = (insert(raw_updates)
                     .values(update_id=update_id, channel="telegram", body=body)
                     .on_conflict_do_nothing(index_elements=["update_id"]))
        with engine.begin() as conn:
            conn.execute(statement)
        return jsonify(ok=True)

    return app


bare_app = make_bare_app()


def __getattr__(name: str) -> Flask:
    """Build app B only when gunicorn asks for it, from the environment the benchmark set."""
    if name == "durable_app":
        app = make_durable_app(os.environ["DATABASE_URL"], os.environ["TELEGRAM_WEBHOOK_SECRET"])
        globals()["durable_app"] = app
        return app
    raise AttributeError(name)
