"""A send journal: each platform call is written down before it is made and when it returns.

The sender records a batch's outcomes in the database once the whole batch is through, so a
worker killed with SIGKILL leaves rows that went out but are still `sending`; when their lease
ends another round would send them again. Each worker therefore appends, with one unbuffered
write per event, "b <row>" before a call and "d <row> <platform id>" when the platform took it,
to a file of its own under the instance directory. Such writes live in the kernel once made,
so they survive the process being killed (not the machine losing power: that is not the failure
this guards against). A worker starting up takes over the files of workers that are gone (their
flock is released with them), marks every "d" row still `sending` as sent, and deletes the
file. What is left in doubt is only the calls that were on the wire at the kill: begun, never
answered; those are sent again when their lease ends (at least once, never lost).

Writes are few: one "b" line names every row of a claimed batch before its first call (a row
named there and never sent is merely retried, as any unrecorded row is), and the "d" lines of
the answers that arrive in one turn of the event loop go out in one write at the start of the
next turn, before anything else runs. A kill in between leaves those rows in doubt, as if
their answers were still on the wire. One write per event cost about a tenth of a bulk send's
CPU.

Files of a live worker are rotated: once a file is large, new events go to a fresh one, and the
old one is deleted when every row begun in it has been recorded in the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

ROTATE_BYTES = 4 * 1024 * 1024


@dataclass(eq=False)  # kept by identity, as a key of the unwritten answers
class _File:
    path: Path
    fd: int
    size: int = 0
    outstanding: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Leftovers:
    """What dead workers' journals say: rows the platform took, and rows left in doubt."""

    sent: dict[int, str | None]
    in_doubt: set[int]
    files: list[Path]


class SendJournal:
    def __init__(self, directory: Path, *, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.directory = directory
        self.rotate_bytes = rotate_bytes
        self._files: list[_File] = []
        self._where: dict[int, _File] = {}
        self._answers: dict[_File, list[str]] = {}  # "d" lines not yet written
        self._flush_due = False
        # The event loop notes answers while the database thread reports what it recorded.
        self._lock = threading.Lock()

    def _current(self) -> _File:
        if not self._files or self._files[-1].size >= self.rotate_bytes:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._files.append(_File(path, fd))
        return self._files[-1]

    def _write(self, file: _File, line: str) -> None:
        data = line.encode()
        os.write(file.fd, data)
        file.size += len(data)

    def begin(self, row_id: int) -> None:
        """Just before the platform call."""
        self.begin_many([row_id])

    def begin_many(self, row_ids: list[int]) -> None:
        """Before the first of these rows' platform calls: one line for all of them."""
        if not row_ids:
            return
        with self._lock:
            file = self._current()
            file.outstanding.update(row_ids)
            for row_id in row_ids:
                self._where[row_id] = file
            self._write(file, "b " + " ".join(map(str, row_ids)) + "\n")

    def done(self, row_id: int, platform_id: str | None) -> None:
        """The platform took the message: written at the next turn of the running event loop
        (with the other answers of this turn), or at once outside one."""
        with self._lock:
            file = self._where.get(row_id) or self._current()
            self._answers.setdefault(file, []).append(f"d {row_id} {platform_id or '-'}\n")
            if self._flush_due:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._flush()
                return
            self._flush_due = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the answers noted so far, one write per file."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        self._flush_due = False
        answers, self._answers = self._answers, {}
        for file, lines in answers.items():
            self._write(file, "".join(lines))

    def recorded(self, row_ids: list[int]) -> None:
        """These rows' outcomes are committed: older files with nothing open are deleted.

        Called from the thread that wrote them to the database, while the event loop notes
        answers: the lock keeps a file from being closed under an answer not yet written.
        """
        with self._lock:
            self._flush()
            for row_id in row_ids:
                file = self._where.pop(row_id, None)
                if file is not None:
                    file.outstanding.discard(row_id)
            current = self._files[-1] if self._files else None
            for file in [f for f in self._files if f is not current and not f.outstanding]:
                os.close(file.fd)
                file.path.unlink(missing_ok=True)
                self._files.remove(file)

    def close(self) -> None:
        """A clean stop: everything was recorded, so the files go."""
        with self._lock:
            self._flush()
            for file in self._files:
                os.close(file.fd)
                if not file.outstanding:
                    file.path.unlink(missing_ok=True)
            self._files.clear()

    def leftovers(self) -> Leftovers:
        """Read the journals of workers that are gone (their files can be locked)."""
        sent: dict[int, str | None] = {}
        begun: set[int] = set()
        files = []
        mine = {f.path for f in self._files}
        if not self.directory.is_dir():
            return Leftovers({}, set(), [])
        for path in sorted(self.directory.glob("*.log")):
            if path in mine or not _abandoned(path):
                continue
            files.append(path)
            for line in path.read_text(encoding="ascii", errors="replace").splitlines():
                parts = line.split(" ")
                if len(parts) >= 2 and parts[1].isdigit():
                    if parts[0] == "b":
                        begun.update(int(p) for p in parts[1:] if p.isdigit())
                    elif parts[0] == "d":
                        value = parts[2] if len(parts) > 2 and parts[2] != "-" else None
                        sent[int(parts[1])] = value
        return Leftovers(sent, begun - set(sent), files)


def _abandoned(path: Path) -> bool:
    """Whether no live process holds this journal (a flock we can take is not held)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the lock
    return True
