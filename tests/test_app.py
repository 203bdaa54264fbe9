"""The app factory, /healthz, and what every process does before serving."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import __version__
from bot.app import config_of, create_app, db_of
from bot.config import DEFAULT_PLAN, Config
from bot.startup import prepare_database
from storage import migrate
from storage.db import Database
from storage.models import Area, AuditLog, Plan


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_healthz_ok(config: Config) -> None:
    app = create_app(config)
    assert config_of(app) is config
    prepare_database(config, db_of(app))
    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == "reachable"
    assert body["migration"] == body["migration_head"] == migrate.head_revision()
    assert body["version"] == __version__
    db_of(app).dispose()


def test_app_uses_the_configured_secret(config: Config) -> None:
    app = create_app(config)
    assert app.config["SECRET_KEY"] == config.secret_key
    assert (config.instance_path / "secret_key").read_text(encoding="utf-8") == config.secret_key
    db_of(app).dispose()


@pytest.mark.parametrize("url", [
    "sqlite:////proc/duan8-nowhere/duan8.db",
    "postgresql+psycopg://postgres@127.0.0.1:1/duan8",
])
def test_healthz_with_unreachable_database(config: Config, url: str) -> None:
    app = create_app(dataclasses.replace(config, database_url=url))
    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error"
    assert body["database"] == "unreachable"
    assert body["version"] == __version__
    assert "migration" not in body
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "OperationalError" not in text
    db_of(app).dispose()


def test_healthz_before_migrations_is_degraded(config: Config, empty_db_url: str) -> None:
    app = create_app(dataclasses.replace(config, database_url=empty_db_url))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["database"]) == ("degraded", "reachable")
    assert body["migration"] is None
    assert body["migration_head"] == migrate.head_revision()
    db_of(app).dispose()


# --- prepare_database ----------------------------------------------------------------------


def test_prepare_database_on_an_empty_database_loads_the_plan_once(
    config: Config, empty_db_url: str
) -> None:
    fresh = dataclasses.replace(config, database_url=empty_db_url)
    assert fresh.plan_file == DEFAULT_PLAN
    database = Database(empty_db_url)
    try:
        assert migrate.current_revision(database.engine) is None
        prepare_database(fresh, database)
        assert migrate.current_revision(database.engine) == migrate.head_revision()
        assert count(database, Plan) == 1
        assert count(database, Area) == 101

        prepare_database(fresh, database)
        assert count(database, Plan) == 1
        assert count(database, Area) == 101
        with database.sessions() as session:
            actions = session.execute(select(AuditLog.actor, AuditLog.action)).all()
            assert [tuple(a) for a in actions] == [("startup", "plan.load")]
    finally:
        database.dispose()


def test_prepare_database_keeps_an_admins_plan(config: Config, db: Database,
                                              tmp_path: Path) -> None:
    """Once a plan is loaded, start-up never reloads the file over it."""
    prepare_database(config, db)
    with db.transaction() as session:
        plan = session.scalar(select(Plan))
        assert plan is not None
        plan.name = "Đã sửa bởi quản trị viên"
    prepare_database(config, db)
    with db.sessions() as session:
        assert session.scalar(select(Plan.name)) == "Đã sửa bởi quản trị viên"
    assert count(db, Plan) == 1


def test_prepare_database_with_plan_file_off(config: Config, empty_db_url: str) -> None:
    database = Database(empty_db_url)
    try:
        prepare_database(dataclasses.replace(config, database_url=empty_db_url,
                                             plan_file=None), database)
        assert migrate.current_revision(database.engine) == migrate.head_revision()
        assert count(database, Plan) == 0
        assert count(database, Area) == 0
    finally:
        database.dispose()


def test_prepare_database_loads_the_configured_plan_file(config: Config, db: Database,
                                                         tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(DEFAULT_PLAN.read_text(encoding="utf-8").replace(
        "  code: ninh-thuan-2022-2025\n", "  code: other-plan\n"), encoding="utf-8")
    prepare_database(dataclasses.replace(config, plan_file=other), db)
    with db.sessions() as session:
        assert session.scalars(select(Plan.code)).all() == ["other-plan"]


@pytest.mark.heavy
def test_two_processes_starting_together_load_one_plan(empty_db_url: str, tmp_path: Path) -> None:
    """Web replicas starting at once on an empty database: one migrates and loads, one waits."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PLAN_FILE", "TZ_NAME", "PORT", "SECRET_KEY", "DUAN8_ENV_FILE"}}
    env.update(DATABASE_URL=empty_db_url, DUAN8_INSTANCE=str(tmp_path / "instance"))
    # What every process runs before serving (`duan8 run`, `web`, `worker`, gunicorn's app).
    start = ("from bot.config import load_config; from bot.startup import prepare_database; "
             "from storage.db import Database; config = load_config(); "
             "prepare_database(config, Database(config.database_url))")
    procs = [subprocess.Popen([sys.executable, "-c", start], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    database = Database(empty_db_url)
    try:
        assert count(database, Plan) == 1
        assert count(database, Area) == 101
    finally:
        database.dispose()
