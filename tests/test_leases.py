"""One worker polls a platform at a time; another takes over when it stops or dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bot.worker import poll_exclusively
from storage.db import Database
from storage.leases import Lease

PG = bool(os.environ.get("DUAN8_TEST_DATABASE_URL"))
REPO = Path(__file__).resolve().parent.parent


def test_a_lease_has_one_holder_until_it_is_released(db: Database) -> None:
    first, second = Lease(db, "poll-telegram"), Lease(db, "poll-telegram")
    other = Lease(db, "poll-zalo_bot")
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert other.try_acquire(), "another platform's lease is a different lock"
        assert first.still_held()
        first.release()
        assert not first.held
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        for lease in (first, second, other):
            lease.release()


def test_a_killed_holder_leaves_the_lease_to_the_next_worker(db: Database) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from storage.db import Database\n"
         "from storage.leases import Lease\n"
         "lease = Lease(Database(sys.argv[1]), 'poll-telegram')\n"
         "print('held' if lease.try_acquire() else 'refused', flush=True)\n"
         "time.sleep(120)\n", db.url],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    mine = Lease(db, "poll-telegram")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert not mine.try_acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 15
        while not mine.try_acquire():
            assert time.monotonic() < deadline, "the dead holder's lease was never freed"
            time.sleep(0.1)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        mine.release()


@pytest.mark.skipif(not PG, reason="a PostgreSQL session holds the lease")
def test_a_holder_notices_when_its_database_session_is_gone(db: Database) -> None:
    lease = Lease(db, "poll-telegram")
    assert lease.try_acquire()
    admin = create_engine(db.url, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"))
    finally:
        admin.dispose()
    assert not lease.still_held()
    assert not lease.held
    assert lease.try_acquire(), "free again once its session ended"
    lease.release()


class RecordingPoller:
    """Stands in for a platform poller: notes when it runs, polls until stopped."""

    def __init__(self, name: str, running: list[str], overlaps: list[str]) -> None:
        self.name = name
        self.running = running
        self.overlaps = overlaps
        self.started = 0

    async def run(self, stop: threading.Event) -> None:
        self.started += 1
        if self.running:
            self.overlaps.append(f"{self.name} beside {self.running}")
        self.running.append(self.name)
        try:
            while not stop.is_set():
                await asyncio.sleep(0.02)
        finally:
            self.running.remove(self.name)


def test_of_two_workers_one_polls_and_the_other_takes_over_when_it_stops(db: Database) -> None:
    running: list[str] = []
    overlaps: list[str] = []
    first, second = (RecordingPoller("first", running, overlaps),
                     RecordingPoller("second", running, overlaps))
    stop_first, stop_second = threading.Event(), threading.Event()

    async def scenario() -> None:
        tasks = [asyncio.create_task(poll_exclusively(
            db, "telegram", first, stop_first, retry_seconds=0.1, check_seconds=0.1))]
        for _ in range(100):  # the second starts once the first holds the lease and polls
            if first.started:
                break
            await asyncio.sleep(0.02)
        tasks.append(asyncio.create_task(poll_exclusively(
            db, "telegram", second, stop_second, retry_seconds=0.1, check_seconds=0.1)))
        await asyncio.sleep(1.0)
        assert running == ["first"] and second.started == 0
        stop_first.set()  # the first worker shuts down and gives the lease up
        await asyncio.wait_for(tasks[0], 5)
        for _ in range(50):
            if running == ["second"]:
                break
            await asyncio.sleep(0.1)
        assert running == ["second"]
        stop_second.set()
        await asyncio.wait_for(tasks[1], 5)

    asyncio.run(scenario())
    assert overlaps == []
    assert (first.started, second.started) == (1, 1)
