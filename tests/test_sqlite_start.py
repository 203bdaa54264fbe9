"""Many processes opening a new SQLite file at the same instant all get a WAL connection."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.db import make_engine

# Each child waits for the same wall-clock instant, so their first connections collide on the
# one moment a new file is switched to WAL. The instant is set once all eight have started (on a
# busy machine a fixed second ahead could pass before the last had imported), and they sleep
# until just before it, spinning only the last moment, so as not to take the cores meanwhile.
CHILD = """
import sys, time
from sqlalchemy import text
from storage.db import make_engine
url = sys.argv[1]
print("ready", flush=True)
start = float(sys.stdin.readline())
time.sleep(max(0.0, start - time.time() - 0.005))
while time.time() < start:
    pass
engine = make_engine(url)
with engine.connect() as conn:
    print(conn.execute(text("PRAGMA journal_mode")).scalar())
"""


@pytest.mark.parametrize("round_", range(3))
def test_processes_opening_a_new_file_together_all_connect(tmp_path: Path, round_: int) -> None:
    url = f"sqlite:///{tmp_path / f'new{round_}.db'}"
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, url], cwd=root,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    for proc in procs:  # the instant is set once all have started, however slowly they did
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.time() + 0.1
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start!r}\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == "wal"


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
