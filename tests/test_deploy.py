"""The Procfile's web process, started as a platform starts it, serves the app."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def procfile_command(name: str) -> str:
    """A process's command line, as the Procfile gives it to the platform's shell."""
    for line in (REPO / "Procfile").read_text(encoding="utf-8").splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise LookupError(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_sockets(port: int) -> int:
    """Sockets in LISTEN state on a TCP port, from the kernel's own table."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table, encoding="ascii") as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    count += 1
    return count


def test_the_web_process_serves_with_one_listening_socket_per_worker(db_url, tmp_path):
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # gunicorn's script sits beside this Python
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DUAN8_", "TELEGRAM_", "FB_", "ZALO_", "WEB_"))}
    env.update(PORT=str(port), DATABASE_URL=db_url, WEB_CONCURRENCY="2",
               DUAN8_INSTANCE=str(tmp_path / "instance"),
               DUAN8_ENV_FILE=str(tmp_path / "absent.env"),
               PATH=bin_dir + os.pathsep + env.get("PATH", ""))
    server = subprocess.Popen(["sh", "-c", f"exec {procfile_command('web')}"], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        answered = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if listening_sockets(port) >= 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
        assert answered is not None and answered.status_code == 200
        # Each worker has its own socket, so the kernel spreads connections over both
        # instead of the first worker to wake taking every one.
        assert listening_sockets(port) == 2
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def test_duan8_web_serves_with_the_same_gunicorn_settings_as_the_procfile() -> None:
    from bot import gunicorn_conf
    from bot.serve import gunicorn_app

    app = gunicorn_app(host="127.0.0.1", port=5999, workers=3)
    assert app.cfg.worker_class_str == gunicorn_conf.worker_class == "gthread"
    assert app.cfg.threads == gunicorn_conf.threads
    assert app.cfg.reuse_port is gunicorn_conf.reuse_port is True
    assert (app.cfg.bind, app.cfg.workers) == (["127.0.0.1:5999"], 3)
