"""Fixtures on a real database: SQLite by default, PostgreSQL when DUAN8_TEST_DATABASE_URL is set.

On PostgreSQL the suite creates its own database and drops it at the end, so runs never see each
other's rows; each test starts from empty tables.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from db_files import copy_database
from flask import Flask
from hypothesis import settings
from sqlalchemy import create_engine, make_url, text

from bot.config import DEFAULT_PLAN, Config, load_config
from storage import migrate
from storage.db import Database
from storage.models import Base
from storage.plan_file import read_plan_file
from storage.plans import load_plan

PG_URL = os.environ.get("DUAN8_TEST_DATABASE_URL", "")

# Property tests check what is computed, not how fast: on a shared, loaded machine one example
# can take several times its usual time, and Hypothesis' 200 ms deadline then fails a correct
# test. Speed has its own benchmarks.
settings.register_profile("duan8", deadline=None)
settings.load_profile("duan8")


def pytest_report_header() -> str:
    return f"duan8 database: {'postgresql' if PG_URL else 'sqlite'}"


# Modules whose tests run real processes against real time: a web server cutting off slow
# bodies at its deadlines, workers killed mid-send, senders pacing to a platform's limits. Under
# `make test` (pytest-xdist) they are one unit of work, run one after another by one test
# process, so no two of them run at once; being the largest unit it is handed out first, so
# their waits overlap the other processes' work instead of ending the run.
REAL_TIME_MODULES = frozenset({
    "test_broadcast_crash.py", "test_deploy.py", "test_deploy_bodies.py", "test_ratelimit.py",
    "test_sender.py",
})


BROWSER_MODULES = frozenset({"test_browser.py", "test_admin_browser.py"})


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist load` (what `-n` gives), with the real-time modules kept together, and the browser
    modules together.

    Every other test is a unit of its own, as under `load`. (`--dist loadgroup` would do this
    with markers, but it renames test ids, which pytest 9.2 no longer lets it do.)
    """
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class RealTimeTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
            if module in REAL_TIME_MODULES:
                return "real-time"
            # One process runs the browser modules, so each launches Chromium once (`chromium`).
            return "browser" if module in BROWSER_MODULES else nodeid

    return RealTimeTogether(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `heavy` run first (the scheduler below keeps the order of single tests):
    a run whose last test is one of seconds leaves the other process with nothing to do."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database each test starts from."""
    if PG_URL:
        admin_url = make_url(PG_URL).set(drivername="postgresql+psycopg")
        name = f"duan8_test_{secrets.token_hex(4)}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        database = Database(url)
        migrate.upgrade(database.engine)
        database.dispose()
        try:
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite:///{path}")
    migrate.upgrade(database.engine)
    database.dispose()
    yield str(path)


def _empty_all_tables(url: str) -> None:
    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def db_url(database_template: str, tmp_path: Path) -> str:
    """A URL to an empty, fully migrated database of the backend under test."""
    if PG_URL:
        _empty_all_tables(database_template)
        return database_template
    path = tmp_path / "duan8.db"
    shutil.copyfile(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def started_template(database_template: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite: the migrated template with the shipped plan loaded as a first start loads it."""
    if PG_URL:
        return ""
    path = tmp_path_factory.mktemp("started") / "started.db"
    shutil.copyfile(database_template, path)
    database = Database(f"sqlite:///{path}")
    with database.transaction() as session:
        load_plan(session, read_plan_file(DEFAULT_PLAN), actor="startup")
    database.dispose()
    return str(path)


@pytest.fixture
def started_db_url(db_url: str, started_template: str) -> str:
    """`db_url` as after the service's first start: migrated, the shipped plan loaded.

    On SQLite a copy of a file, instead of a plan load per test; on PostgreSQL the plan is
    loaded into the emptied database, as start-up loads it.
    """
    if started_template:
        shutil.copyfile(started_template, make_url(db_url).database or "")
        return db_url
    database = Database(db_url)
    with database.transaction() as session:
        load_plan(session, read_plan_file(DEFAULT_PLAN), actor="startup")
    database.dispose()
    return db_url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def plan_db(db: Database, db_url: str, started_template: str) -> Database:
    """The database with the shipped Ninh Thuận plan loaded, as the service's first start loads it.

    On SQLite a copy of the started template (nothing has opened `db` yet); on PostgreSQL a load.
    """
    if started_template:
        db.dispose()
        copy_database(started_template, make_url(db_url).database or "")
        return db
    with db.transaction() as session:
        load_plan(session, read_plan_file(DEFAULT_PLAN), actor="startup")
    return db


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    """A configuration as a fresh deployment would have it, isolated from the real env."""
    return load_config(
        {"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
        instance_path=tmp_path / "instance",
    )


@pytest.fixture(scope="module")
def module_app(database_template: str, started_template: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app for a module's conversations; each test takes it as `started_app`.

    Building an app and warming its engine (SQLAlchemy compiles each statement once per engine)
    cost some 45 ms a test, as much as the conversation many tests then hold. Nothing else of
    the app outlives a test: `started_app` gives every test a database as after the first start.
    """
    from bot.app import create_app, db_of

    tmp = tmp_path_factory.mktemp("module-app")
    url = database_template if PG_URL else f"sqlite:///{tmp / 'duan8.db'}"
    if started_template:
        shutil.copyfile(started_template, tmp / "duan8.db")
    app = create_app(load_config({"DATABASE_URL": url, "DUAN8_ENV_FILE": str(tmp / "absent.env")},
                                 instance_path=tmp / "instance"))
    yield app
    db_of(app).dispose()


@pytest.fixture
def started_app(module_app: Flask, started_template: str) -> Flask:
    """The module's app on a database reset to just after the service's first start (migrated,
    the shipped plan loaded, nothing else) and an empty media folder."""
    from bot.app import config_of, db_of

    db = db_of(module_app)
    db.dispose()  # no connection of the last test's outlives it
    if started_template:
        copy_database(started_template, make_url(db.url).database or "")
    else:
        _empty_all_tables(db.url)
        with db.transaction() as session:
            load_plan(session, read_plan_file(DEFAULT_PLAN), actor="startup")
    shutil.rmtree(config_of(module_app).media_path, ignore_errors=True)
    return module_app


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium for a browser test module (each launch costs a few seconds of CPU); every
    test opens its own pages through `browser`, each page in a context of its own."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """The module's Chromium; what a test opened in it is closed after the test."""
    yield chromium
    for context in chromium.contexts:
        context.close()


@pytest.fixture
def empty_db_url(tmp_path: Path) -> Iterator[str]:
    """A URL to a database of the backend under test with no tables at all (not migrated)."""
    if PG_URL:
        admin_url = make_url(PG_URL).set(drivername="postgresql+psycopg")
        name = f"duan8_empty_{secrets.token_hex(4)}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    yield f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(scope="module")
def shared_plan_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One database per test module with the shipped plan loaded, for tests that only read.

    It is a database of its own (not the one `db` empties), so it costs one plan load per
    module instead of one per test. Tests that write must use `plan_db` instead.
    """
    if PG_URL:
        admin_url = make_url(PG_URL).set(drivername="postgresql+psycopg")
        name = f"duan8_shared_{secrets.token_hex(4)}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('shared') / 'shared.db'}"
    database = Database(url)
    try:
        migrate.upgrade(database.engine)
        with database.transaction() as session:
            load_plan(session, read_plan_file(DEFAULT_PLAN))
        yield database
    finally:
        database.dispose()
        if PG_URL:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
