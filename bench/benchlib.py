"""Shared pieces of the benchmarks: scratch databases, gunicorn, machine facts, the report file."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType

import httpx
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
REPORT = REPO / "BENCHMARKS.md"
PAYLOADS = REPO / "tests" / "payloads" / "telegram"

# The fake Bot API lives with the tests, which are not an installed package.
sys.path.insert(0, str(REPO / "tests"))
from fakes.telegram_api import FakeTelegram  # noqa: E402

# Every app under test is served as the Procfile serves the real one (bot/gunicorn_conf.py:
# gthread, a listening socket per worker), with the worker count fixed to this machine's cores.
GUNICORN_SETTINGS: tuple[str, ...] = ("--config", "python:bot.gunicorn_conf", "--workers", "2")
GUNICORN_LABEL = "bot/gunicorn_conf.py: gthread, 2 workers × 4 threads, a socket per worker"
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TOKEN = "424242:BENCH-duan8-token"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def pg_admin_url() -> str:
    """Where scratch PostgreSQL databases are created; overridable for other machines."""
    return os.environ.get("DUAN8_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)


def postgres_available() -> bool:
    """Skip the PostgreSQL half gracefully when no server answers."""
    engine = create_engine(pg_admin_url(), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def chosen_backends(choice: str) -> list[str]:
    """The --db flag as a list, dropping PostgreSQL with a note when it is not reachable."""
    wanted = ["sqlite", "postgres"] if choice == "both" else [choice]
    if "postgres" in wanted and not postgres_available():
        print(f"PostgreSQL not reachable at {pg_admin_url()}: skipping it", file=sys.stderr)
        wanted.remove("postgres")
    return wanted


class ScratchDatabase:
    """A database made for one benchmark run and always dropped afterwards, never `test`."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.folder = Path(tempfile.mkdtemp(prefix="duan8_bench_"))
        self.name = f"duan8_bench_{secrets.token_hex(4)}"
        self.url = ""

    def __enter__(self) -> ScratchDatabase:
        """Create the database (PostgreSQL) or pick the file (SQLite)."""
        if self.backend == "sqlite":
            self.url = f"sqlite:///{self.folder / 'duan8.db'}"
            return self
        admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        self.url = make_url(pg_admin_url()).set(database=self.name).render_as_string(
            hide_password=False)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Drop the database and remove the folder, whatever happened."""
        if self.backend == "postgres":
            admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)


def service_env(db_url: str, instance: Path, api_url: str, secret: str,
                **extra: str) -> dict[str, str]:
    """The environment bot.wsgi reads, with Telegram on; no .env file can leak in."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DUAN8_", "TELEGRAM_", "DATABASE_", "FB_", "ZALO_"))}
    env.update({
        "DATABASE_URL": db_url, "DUAN8_INSTANCE": str(instance),
        "DUAN8_ENV_FILE": str(instance / "no.env"), "SECRET_KEY": secrets.token_urlsafe(32),
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": secret,
        "TELEGRAM_API_URL": api_url, "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def free_port() -> int:
    """An ephemeral loopback port for a server started next."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gunicorn:
    """One app under the shared gunicorn settings, in its own process group, stopped on exit."""

    def __init__(self, app_spec: str, env: dict[str, str], log_dir: Path,
                 health_path: str = "/healthz") -> None:
        self.app_spec = app_spec
        self.env = env
        self.port = free_port()
        self.health_path = health_path
        self.log = log_dir / f"gunicorn-{app_spec.replace(':', '-')}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Where this server listens on loopback."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Gunicorn:
        """Start gunicorn and wait until it answers its health URL."""
        command = [sys.executable, "-m", "gunicorn", *GUNICORN_SETTINGS,
                   "--bind", f"127.0.0.1:{self.port}", "--pythonpath", str(BENCH_DIR),
                   "--log-level", "warning", "--error-logfile", str(self.log), self.app_spec]
        self.process = subprocess.Popen(command, cwd=REPO, env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        try:
            self._wait_ready(timeout=60.0)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Poll the health URL so timing never starts before the workers serve."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.app_spec} exited: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + self.health_path, timeout=2.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {self.app_spec} not ready in {timeout:.0f} s: "
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The end of gunicorn's log, to explain a failure without opening files."""
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """SIGTERM the arbiter, which stops its workers; kill if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # the arbiter stops its own workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def update_template() -> str:
    """tests/payloads/telegram/text.json with __ID__ where the update id and chat id go."""
    update = json.loads((PAYLOADS / "text.json").read_text(encoding="utf-8"))
    marker = 987_654_321_987
    update["update_id"] = marker
    update["message"]["chat"]["id"] = marker
    update["message"]["from"]["id"] = marker
    return json.dumps(update, ensure_ascii=False).replace(str(marker), "__ID__")


def update_body(template: str, number: int) -> bytes:
    """A new member's first message: update id and chat id both `number`."""
    return template.replace("__ID__", str(number)).encode()


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values so an empty run cannot look fast."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Machine:
    """The facts a reader needs to compare figures across runs."""

    cores: int
    model: str
    ram_gib: float
    date: str
    python: str

    def line(self) -> str:
        """One line for the report's table header."""
        return (f"{self.cores} × {self.model}, {self.ram_gib:.1f} GiB RAM, "
                f"Python {self.python}; run {self.date}")


def machine() -> Machine:
    """Read nproc, the CPU model and RAM the same way `nproc` and /proc do."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) / 1024 / 1024
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Machine(cores=cores or 0, model=model, ram_gib=ram,
                   date=datetime.now(UTC).strftime("%a %b %d %H:%M:%S UTC %Y"),
                   python=platform.python_version())


def postgres_version() -> str:
    """The server version, so PostgreSQL figures say what they ran on."""
    engine = create_engine(pg_admin_url())
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
    finally:
        engine.dispose()


def backend_label(backend: str) -> str:
    """Human name of a backend, with the PostgreSQL version."""
    if backend == "postgres":
        return f"PostgreSQL {postgres_version()}"
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"


def replace_section(key: str, body: str, report: Path = REPORT) -> None:
    """Write `body` between this key's markers so a rerun replaces only its own figures."""
    begin, end = f"<!-- bench:{key}:begin -->", f"<!-- bench:{key}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    current = report.read_text(encoding="utf-8") if report.exists() else "# Benchmarks\n"
    if begin in current and end in current:
        head, _, rest = current.partition(begin)
        _, _, tail = rest.partition(end)
        updated = head + block + tail
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    report.write_text(updated, encoding="utf-8")
    print(f"updated {report.relative_to(REPO)} section {key}")


def fmt(value: float, digits: int = 1) -> str:
    """A figure for a table; NaN prints as a dash."""
    return "—" if value != value else f"{value:,.{digits}f}"


def verdict(met: bool) -> str:
    """Yes or no, loud enough to spot in a table."""
    return "**yes**" if met else "**no**"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table from already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def serve_fake_in_process(conn: Connection, token: str,
                          limits: dict[str, float] | None = None) -> None:
    """Child process: a FakeTelegram steered over a pipe, so it has its own GIL (and its
    clock for rate limits is not held up by the client's threads); `limits` go to
    `FakeTelegram.rate_limit`, none means unlimited."""
    with FakeTelegram(token) as fake:
        if limits:
            fake.rate_limit(**limits)
        conn.send(fake.url)
        while conn.poll(900):  # bounded: a parent that vanished stops the child too
            command = conn.recv()
            if command == "stop":
                break
            if command == "clear":
                fake.clear()
                conn.send(True)
            elif command == "chats":  # the chat of every accepted send, to count repeats
                conn.send([chat for _at, chat in fake.accepted_sends()])
            elif command == "stats":
                conn.send({"accepted": len(fake.accepted_sends()),
                           "calls": len(fake.calls),
                           "too_many_requests": fake.too_many_requests,
                           "achieved": fake.achieved_rate(), "peak_1s": fake.peak_rate(1.0)})


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A temporary folder for instance files and logs, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="duan8_bench_run_"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
