"""The `duan8` command: every command answers --help, and `admin create` stores only a hash."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from cli_helpers import run_duan8, without
from click.testing import CliRunner
from sqlalchemy import select
from werkzeug.security import check_password_hash

from bot.cli import cli
from storage.db import Database
from storage.models import AdminUser, Area, AuditLog, Base


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and subcommand under `group`, found from the group itself."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))


COMMANDS = sorted(command_paths(cli))


def test_the_design_commands_exist() -> None:
    for path in [("run",), ("web",), ("worker",), ("db", "upgrade"), ("plan", "load"),
                 ("plan", "show"), ("admin", "create")]:
        assert path in COMMANDS


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "duan8")
def test_every_command_answers_help(path: tuple[str, ...], tmp_path: Path) -> None:
    # A broken configuration proves --help needs neither the settings nor the database.
    runner = CliRunner()
    result = runner.invoke(cli, [*path, "--help"], obj=None, catch_exceptions=False,
                           env={"DATABASE_URL": "not a url", "TZ_NAME": "Nowhere/Land",
                                "DUAN8_INSTANCE": str(tmp_path / "instance")})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert " ".join(path) in result.output
    assert not (tmp_path / "instance").exists()


# A developer's own settings, left out of what the commands see.
UNSET = {"PLAN_FILE", "TZ_NAME", "PORT", "SECRET_KEY", "DUAN8_ENV_FILE", "DATABASE_URL",
         "DUAN8_INSTANCE"}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(extra)
    return env


def run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS`, run in this process."""
    return run_duan8(*args, cwd=tmp_path,
                     env=without(UNSET, DUAN8_INSTANCE=str(tmp_path / "instance"), **extra))


def test_python_dash_m_bot_help(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bot", "--help"], cwd=tmp_path,
                            env=clean_env(DUAN8_INSTANCE=str(tmp_path / "instance"),
                                          DATABASE_URL="not a url"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage:")
    for name in ("run", "web", "worker", "db", "plan", "admin"):
        assert f"\n  {name} " in result.stdout
    assert result.stderr == ""
    # The short option, in this process: the same page as the long one.
    long = run(tmp_path, "--help", DATABASE_URL="not a url")
    assert long.returncode == 0 and long.stdout.startswith("Usage:")
    assert run(tmp_path, "-h").stdout == long.stdout


def test_the_command_starts_without_the_platforms_or_the_web_stack(tmp_path: Path) -> None:
    """Every `duan8` command loads the command tree; the platform libraries, the web framework
    and the PostgreSQL driver (about half its start-up) load only in commands that use them."""
    heavy = ("telegram", "aiohttp", "httpx", "flask", "psycopg")
    script = f"import sys, bot.cli; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path,
                            env=clean_env(DUAN8_INSTANCE=str(tmp_path / "instance")),
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_version(tmp_path: Path) -> None:
    from bot import __version__

    result = run(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.strip().endswith(__version__)


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "duan8"
    if not script.exists():
        pytest.skip("the duan8 console script is not installed in this environment")
    result = subprocess.run([str(script), "plan", "--help"], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "load" in result.stdout and "show" in result.stdout


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr


# --- admin create --------------------------------------------------------------------------

PASSWORD = "Mật khẩu bí mật 2025"


def all_text(db: Database) -> str:
    """Every value of every row, as text: where a leaked password would show up."""
    parts = []
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            parts += [repr(tuple(row)) for row in conn.execute(select(table))]
    return "\n".join(parts)


def test_admin_create_stores_a_hash_and_audits(db: Database, db_url: str,
                                               tmp_path: Path) -> None:
    result = run(tmp_path, "admin", "create", "chi.hoa", "--password", PASSWORD,
                 DATABASE_URL=db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "admin chi.hoa created"

    with db.sessions() as session:
        admin = session.scalar(select(AdminUser).where(AdminUser.username == "chi.hoa"))
        assert admin is not None
        assert (admin.role, admin.area_id, admin.active) == ("province", None, True)
        assert admin.password_hash != PASSWORD
        assert check_password_hash(admin.password_hash, PASSWORD)
        # scrypt at werkzeug's work factor (other tests sign in against cheaper hashes)
        assert admin.password_hash.startswith("scrypt:32768:8:1$")
        assert not check_password_hash(admin.password_hash, PASSWORD + "x")
        first_hash = admin.password_hash
        audit = session.execute(
            select(AuditLog.actor, AuditLog.action, AuditLog.object_type, AuditLog.object_id,
                   AuditLog.detail).where(AuditLog.action.like("admin.%"))).all()
        assert [tuple(a) for a in audit] == [
            ("cli", "admin.create", "admin", "chi.hoa", {"role": "province"})]
    assert PASSWORD not in all_text(db)
    assert "bí mật" not in all_text(db)

    # Run again: the password is reset, never a second admin.
    new_password = "another long passphrase"
    again = run(tmp_path, "admin", "create", "chi.hoa", "--password", new_password,
                DATABASE_URL=db_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "admin chi.hoa updated"
    with db.sessions() as session:
        admins = session.scalars(select(AdminUser)).all()
        assert len(admins) == 1
        assert admins[0].password_hash != first_hash
        assert check_password_hash(admins[0].password_hash, new_password)
        assert not check_password_hash(admins[0].password_hash, PASSWORD)
        actions = session.scalars(select(AuditLog.action).where(
            AuditLog.action.like("admin.%")).order_by(AuditLog.id)).all()
        assert actions == ["admin.create", "admin.reset"]
    assert new_password not in all_text(db)


def test_admin_create_limited_to_an_area(db: Database, db_url: str, tmp_path: Path) -> None:
    result = run(tmp_path, "admin", "create", "xa.phuocdai", "--role", "commune",
                 "--area", "nt.bac-ai.phuoc-dai", "--password", PASSWORD, DATABASE_URL=db_url)
    assert result.returncode == 0, result.stderr
    with db.sessions() as session:
        admin = session.scalar(select(AdminUser).where(AdminUser.username == "xa.phuocdai"))
        assert admin is not None
        area = session.get(Area, admin.area_id)
        assert area is not None
        assert (admin.role, area.code) == ("commune", "nt.bac-ai.phuoc-dai")


@pytest.mark.parametrize(("args", "message"), [
    (("--area", "nt.no-such-place"), "no area with code"),
    (("--role", "king"), "Invalid value for '--role'"),
])
def test_admin_create_refuses_bad_options(db: Database, db_url: str, tmp_path: Path,
                                          args: tuple[str, ...], message: str) -> None:
    result = run(tmp_path, "admin", "create", "someone", "--password", PASSWORD, *args,
                 DATABASE_URL=db_url)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    with db.sessions() as session:
        assert session.scalars(select(AdminUser)).all() == []


def test_admin_create_refuses_a_short_password(db: Database, db_url: str,
                                               tmp_path: Path) -> None:
    result = run(tmp_path, "admin", "create", "someone", "--password", "short",
                 DATABASE_URL=db_url)
    assert result.returncode == 2
    assert "at least 10 characters" in result.stderr
    with db.sessions() as session:
        assert session.scalars(select(AdminUser)).all() == []
