"""The sender as deployed: `duan8 worker` processes draining one PostgreSQL outbox together.

A worker sends from one event loop, so it uses one core; the README deploys one worker per core
for large broadcasts. This runs N real `python -m bot worker` processes (Telegram on, webhook
mode so nobody polls, `TELEGRAM_RATE_LIMIT=unlimited`) against a Bot API in its own process,
queues the rows in one transaction (its commit wakes the workers through NOTIFY) and times the
drain until no row is pending or leased. Also reported: each worker's CPU seconds per message,
read from /proc, so the figure can be read apart from the machine's noise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import REPO, service_env
from sqlalchemy import func, insert, select

from storage import outbox
from storage.db import Database
from storage.models import Identity, Outbox, utcnow

READY_LINE = "sender delivering for"

# A reply as the service queues it: a paragraph and two buttons.
PAYLOAD: dict[str, Any] = {
    "text": "Xin chào! Tôi là trợ lý của các tổ truyền thông cộng đồng thuộc Dự án 8.\n\n"
            "Bạn có đồng ý không?",
    "buttons": [{"label": "Đồng ý", "payload": "consent.ask:yes"},
                {"label": "Không đồng ý", "payload": "consent.ask:no"}],
    "media": [],
}



def queue_rows(db: Database, count: int, first_chat: int) -> list[int]:
    """`count` reply rows to `count` new chats, written as the dispatcher writes them."""
    now = utcnow()
    chats = [str(first_chat + i) for i in range(count)]
    with db.transaction() as session:
        session.execute(insert(Identity), [
            {"channel": "telegram", "external_id": chat, "consent": "given", "locale": "vi",
             "created_at": now, "last_inbound_at": now} for chat in chats])
        ids = session.scalars(select(Identity.id).where(
            Identity.channel == "telegram", Identity.external_id.in_(chats))
            .order_by(Identity.id)).all()
        return [outbox.enqueue(session, identity_id, "telegram", dict(PAYLOAD), now=now)
                for identity_id in ids]



def work_left(db: Database) -> bool:
    """Whether any row is pending or leased: one probe of the sender's own index, because the
    check runs in the measured process every 50 ms (counting every row by status there took
    about a tenth of the sender's CPU at 10,000 rows)."""
    with db.sessions() as session:
        return session.scalar(select(Outbox.id).where(
            Outbox.status.in_(("pending", "sending"))).limit(1)) is not None


def sent_between(db: Database, first_id: int, last_id: int) -> int:
    """Rows of one run that ended as sent."""
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.status == "sent", Outbox.id.between(first_id, last_id))) or 0


@dataclass(frozen=True)
class WorkersRate:
    """One drain by `workers` worker processes."""

    workers: int
    rows: int
    seconds: float
    sent: int
    cpu_seconds: float  # all workers together, during the drain

    @property
    def rate(self) -> float:
        """Messages per second from the commit to the last row written back."""
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_message(self) -> float:
        """Worker CPU per message sent, in microseconds."""
        return self.cpu_seconds / self.sent * 1e6 if self.sent else float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (Linux /proc), 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkerProcesses:
    """N `python -m bot worker` processes, started and stopped (SIGTERM) together."""

    def __init__(self, count: int, db_url: str, api_url: str, folder: Path) -> None:
        self.count = count
        self.env = service_env(db_url, folder / "instance", api_url, "unused-secret",
                               PLAN_FILE="off", TELEGRAM_RATE_LIMIT="unlimited")
        self.logs = [folder / f"worker-{count}-{i}.log" for i in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> WorkerProcesses:
        """Start the workers and wait until each one's sender runs."""
        for log in self.logs:
            with log.open("wb") as out:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "bot", "worker"], cwd=REPO, env=self.env,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 60
        try:
            while not all(READY_LINE in log.read_text(errors="replace") for log in self.logs):
                if time.monotonic() > deadline or any(p.poll() is not None
                                                      for p in self.processes):
                    raise RuntimeError("a worker did not start: " + self.logs[0].read_text()[-800:])
                time.sleep(0.1)
        except BaseException:
            self.__exit__()
            raise
        return self

    def cpu_seconds(self) -> float:
        """CPU used so far by all the workers."""
        return sum(_cpu_seconds(p.pid) for p in self.processes)

    def __exit__(self, *exc_info: object) -> None:
        """SIGTERM (the worker's own clean stop), then SIGKILL for a straggler."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def workers_rate(db: Database, api_url: str, folder: Path, count: int, rows: int,
                 first_chat: int) -> WorkersRate:
    """Warm the workers up, then time `rows` new rows from their commit to the last one sent."""
    with WorkerProcesses(count, db.url, api_url, folder) as workers:
        queue_rows(db, 200 * count, first_chat)  # connections opened, code paths warm
        _wait_drained(db, deadline=60)
        cpu_before = workers.cpu_seconds()
        queued = queue_rows(db, rows, first_chat + 1_000_000)
        started = time.monotonic()
        _wait_drained(db, deadline=max(60.0, rows / 50))
        seconds = time.monotonic() - started
        cpu = workers.cpu_seconds() - cpu_before
    return WorkersRate(workers=count, rows=rows, seconds=seconds,
                       sent=sent_between(db, min(queued), max(queued)), cpu_seconds=cpu)


def _wait_drained(db: Database, deadline: float) -> None:
    """Until nothing is pending or leased (an index probe every 20 ms), or the deadline."""
    end = time.monotonic() + deadline
    while work_left(db) and time.monotonic() < end:
        time.sleep(0.02)
