"""Many processes opening a new SQLite file at the same instant all get a WAL connection."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.db import make_engine

# Each child waits for the same wall-clock instant, so their first connections collide on the
# one moment a new file is switched to WAL. The instant is set once all eight are ready (on a
# busy machine a fixed second ahead could pass before the last had imported), and they sleep
# until just before it, spinning only the last moment, so as not to take the cores meanwhile.
# The same eight children meet at three new files in turn: three collisions for the start-up
# cost of eight processes, not twenty-four.
CHILD = """
import sys, time
from sqlalchemy import text
from storage.db import make_engine
for url in sys.argv[1:]:
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    time.sleep(max(0.0, start - time.time() - 0.005))
    while time.time() < start:
        pass
    engine = make_engine(url)
    with engine.connect() as conn:
        print(conn.execute(text("PRAGMA journal_mode")).scalar(), flush=True)
    engine.dispose()
"""
ROUNDS = 3


@pytest.mark.heavy
def test_processes_opening_a_new_file_together_all_connect(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / f'new{round_}.db'}" for round_ in range(ROUNDS)]
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, *urls], cwd=root,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    try:
        for round_ in range(ROUNDS):
            for proc in procs:  # the instant is set once all are ready, however slow
                assert proc.stdout is not None
                line = proc.stdout.readline().strip()
                assert line == "ready", (round_, line, proc.poll())
            start = time.time() + 0.1
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(f"{start!r}\n")
                proc.stdin.flush()
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "wal", (round_, proc.poll())
    except BaseException:
        for proc in procs:
            proc.kill()
            proc.communicate()
        raise
    for proc in procs:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err


def test_an_existing_wal_file_is_not_switched_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    # A writer holding the file must not stop a new connection from opening.
    writer = engine.connect()
    transaction = writer.begin()  # BEGIN IMMEDIATE: the write lock is held from here
    try:
        other = make_engine(url)
        raw = other.raw_connection()  # connecting runs the pragmas; no transaction begins
        try:
            assert raw.cursor().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            raw.close()
            other.dispose()
    finally:
        transaction.rollback()
        writer.close()
        engine.dispose()
