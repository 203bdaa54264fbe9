"""One SQLite database's content put into another's file, as tests reset and snapshot them."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path


def copy_database(source: str | Path, target: str | Path) -> None:
    """Make `target` hold what `source` holds; close your own connections to both first.

    When neither has a WAL file (every connection closed cleanly, so SQLite checkpointed and
    removed it) this is a file copy. Otherwise a connection a test left open still holds the
    file and its WAL: a file copied over it would meet the old WAL, so the copy goes through
    SQLite's backup API instead (slower, hence only then).
    """
    if any(Path(f"{path}-wal").exists() for path in (source, target)):
        from_db, to_db = sqlite3.connect(source), sqlite3.connect(target)
        try:
            from_db.backup(to_db)
        finally:
            to_db.close()
            from_db.close()
    else:
        shutil.copyfile(source, target)
