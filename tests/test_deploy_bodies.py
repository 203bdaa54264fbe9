"""Slow and large bodies against the Procfile's web server: no stall, no unbounded read."""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import PG_URL
from test_deploy import REPO, free_port, procfile_command

from bot import gunicorn_conf

# The body limits the web process runs with here (WEB_BODY_*): shorter than the defaults, so
# the cut-offs come sooner; the bounds below are computed from them.
BODY_SECONDS, IDLE_SECONDS = 3, 1

HEADERS = ("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "X-Telegram-Bot-Api-Secret-Token: s3cret-s3cret\r\nContent-Length: {length}\r\n\r\n")


@pytest.fixture(scope="module")
def server(database_template: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """One web process for the module: every test sends it bodies it refuses, and none needs
    the state of a fresh one (a start costs two or three seconds of two cores)."""
    tmp_path = tmp_path_factory.mktemp("web")
    if PG_URL:
        db_url = database_template
    else:
        shutil.copyfile(database_template, tmp_path / "duan8.db")
        db_url = f"sqlite:///{tmp_path / 'duan8.db'}"
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DUAN8_", "TELEGRAM_", "FB_", "ZALO_", "WEB_"))}
    env.update(PORT=str(port), DATABASE_URL=db_url, WEB_CONCURRENCY="2",
               DUAN8_INSTANCE=str(tmp_path / "instance"),
               DUAN8_ENV_FILE=str(tmp_path / "absent.env"),
               TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_WEBHOOK_SECRET="s3cret-s3cret",
               TELEGRAM_API_URL="http://127.0.0.1:9",
               WEB_BODY_SECONDS=str(BODY_SECONDS), WEB_BODY_IDLE_SECONDS=str(IDLE_SECONDS),
               PATH=bin_dir + os.pathsep + env.get("PATH", ""))
    proc = subprocess.Popen(["sh", "-c", f"exec {procfile_command('web')}"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while not healthy and time.monotonic() < deadline and proc.poll() is None:
            try:
                healthy = httpx.get(f"http://127.0.0.1:{port}/healthz",
                                    timeout=2).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.05)
        assert healthy, "the web process did not start"
        yield port, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def _answer(sock: socket.socket, limit: float) -> tuple[str, float]:
    """The status line the server sent (or "closed"), and when it came."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        data = sock.recv(200)
    except (TimeoutError, ConnectionResetError):
        data = b""
    line = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "closed"
    return line, time.monotonic() - start


def _workers_rss(pid: int) -> int:
    """Resident memory (kB) of the server's processes."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            stat = (entry / "stat").read_text().split()
        except OSError:
            continue
        if int(stat[4]) == os.getpgid(pid):  # the session's process group
            total += next(int(line.split()[1]) for line in status.splitlines()
                          if line.startswith("VmRSS"))
    return total


def test_slow_bodies_are_cut_off_and_do_not_stall_the_web_tier(server):
    port, _proc = server
    # Twice as many slow clients as the web tier has threads (2 workers x 4): each sends its
    # headers and one byte of a 1,000-byte body, then nothing.
    slow = []
    for _n in range(16):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(HEADERS.format(path="/webhooks/telegram", length=1000).encode() + b"{")
        slow.append(sock)
    time.sleep(0.5)
    started = time.monotonic()
    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
    waited = time.monotonic() - started
    assert health.status_code == 200
    # Each thread is given back within the body's silence limit, not 30 s or never. The
    # kernel spreads connections over the workers' SO_REUSEPORT sockets unevenly: at worst all
    # 16 and the health check queue on one worker's 4 threads, 5 silences one after another.
    rounds = math.ceil((len(slow) + 1) / gunicorn_conf.threads)
    assert waited < IDLE_SECONDS * rounds + 2, waited
    answers = [_answer(sock, 20) for sock in slow]
    for sock in slow:
        sock.close()
    assert all(line.startswith("HTTP/1.1 408") or line == "closed" for line, _t in answers), \
        answers
    assert sum(line.startswith("HTTP/1.1 408") for line, _t in answers) >= 8


def test_a_trickled_body_is_cut_off_at_its_deadline(server):
    port, _proc = server
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(HEADERS.format(path="/webhooks/telegram", length=100_000).encode())
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            try:
                sock.sendall(b" ")
            except OSError:
                return
            time.sleep(IDLE_SECONDS / 4)  # never silent long enough for the idle limit

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    line, _t = _answer(sock, BODY_SECONDS + 15)
    stop.set()
    sock.close()
    assert line.startswith("HTTP/1.1 408") or line == "closed", line
    assert time.monotonic() - started < BODY_SECONDS + 5


def test_large_bodies_are_refused_before_they_are_read(server):
    port, proc = server
    before = _workers_rss(proc.pid)
    socks = []
    for index in range(32):
        sock = socket.create_connection(("127.0.0.1", port))
        path = "/chat/api/photos" if index % 2 else "/webhooks/telegram"
        sock.sendall(HEADERS.format(path=path, length=60 * 1024 * 1024).encode())
        socks.append(sock)
    chunk = b"x" * 65536
    for sock in socks:  # each starts sending its 60 MB
        sock.setblocking(False)
        for _n in range(16):
            try:
                sock.send(chunk)
            except (BlockingIOError, OSError):
                break
    answers = []
    for sock in socks:
        sock.setblocking(True)
        answers.append(_answer(sock, 10)[0])
        sock.close()
    assert all(line.startswith("HTTP/1.1 413") or line == "closed" for line in answers), answers
    assert sum(line.startswith("HTTP/1.1 413") for line in answers) >= 16
    # Nothing near 32 x 60 MB was held: the processes grew by a few MB at most.
    assert _workers_rss(proc.pid) - before < 64 * 1024
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
