"""Reply latency, webhook to Bot API: the real web app and a worker, laid out as deployed.

Part of `bench/sender.py` (its third measurement): one new member's message at a time, from
the POST to the fake recording that chat's sendMessage.
"""

from __future__ import annotations

import argparse
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from benchlib import (
    GUNICORN_LABEL,
    SECRET_HEADER,
    TOKEN,
    FakeTelegram,
    Gunicorn,
    fmt,
    free_port,
    percentile,
    service_env,
    table,
    update_body,
    update_template,
    verdict,
)

from bot.channels.telegram.polling import MODE_KEY
from bot.config import Config, load_config
from bot.dispatcher import Wakeup
from bot.startup import prepare_database
from storage import settings
from storage.db import Database

TARGET_LATENCY_P95 = 1.0
WEBHOOK = "/webhooks/telegram"


@dataclass(frozen=True)
class Latency:
    """One deployment layout's reply latencies, in seconds."""

    layout: str
    replies: list[float]
    answers: list[float]
    missing: int


@contextmanager
def worker_thread(config: Config, db: Database, wakeup: Wakeup | None) -> Iterator[None]:
    """bot.worker.Worker's run loop in a thread, as `duan8 worker` or `duan8 run` runs it."""
    from bot.serve import run_worker

    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(config, db, stop, wakeup), daemon=True,
                              name="bench-worker")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=15)


@contextmanager
def in_process_web(config: Config, db: Database, wakeup: Wakeup) -> Iterator[str]:
    """The web app on werkzeug's threaded server in this process, as `duan8 run` serves it."""
    from werkzeug.serving import make_server

    from bot.app import create_app

    port = free_port()
    server = make_server("127.0.0.1", port, create_app(config, db=db, wakeup=wakeup),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="bench-web")
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def measure_replies(fake: FakeTelegram, url: str, secret: str, count: int, first: int,
                    pause: float) -> tuple[list[float], list[float], int]:
    """One new member at a time: POST, then wait for that chat's sendMessage at the fake."""
    template = update_template()
    replies, answers, missing = [], [], 0
    headers = {SECRET_HEADER: secret, "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for number in range(first, first + count):
            seen = len(fake.calls_to("sendMessage"))
            sent_at = time.monotonic()
            answer = client.post(WEBHOOK, content=update_body(template, number))
            answered_at = time.monotonic()
            call = None
            deadline = sent_at + 5.0
            while call is None and time.monotonic() < deadline:
                try:
                    fake.wait_for_calls("sendMessage", seen + 1,
                                        timeout=max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    break
                call = next((c for c in fake.calls_to("sendMessage")
                             if c.params.get("chat_id") == number), None)
                seen += 1
            if answer.status_code != 200 or call is None:
                missing += 1
            else:
                replies.append(call.time - sent_at)
                answers.append(answered_at - sent_at)
            time.sleep(pause)
    return replies, answers, missing


def latency_runs(backend: str, db_url: str, folder: Path,
                 args: argparse.Namespace) -> list[Latency]:
    """The layouts the README deploys: `duan8 run` on SQLite, gunicorn + worker on PostgreSQL."""
    results = []
    with FakeTelegram(TOKEN) as fake:
        secret = secrets.token_urlsafe(24)
        env = service_env(db_url, folder / "instance", fake.url, secret)
        config = load_config(env)
        db = Database(config.database_url)
        prepare_database(config, db)
        with db.transaction() as session:
            settings.put(session, MODE_KEY, "webhook")  # no getUpdates polling in the worker
        first = 200_000_000
        layouts: list[tuple[str, int]] = []
        if backend == "sqlite":
            layouts.append(("duan8 run: werkzeug threaded + worker thread, shared wakeup",
                            args.latency_requests))
            if args.split_requests > 0:
                layouts.append((f"{GUNICORN_LABEL} + separate worker (no cross-process "
                                "wakeup on SQLite)", args.split_requests))
        else:
            layouts.append((f"{GUNICORN_LABEL} + separate worker (LISTEN/NOTIFY)",
                            args.latency_requests))
        for index, (layout, count) in enumerate(layouts):
            first += 10_000_000
            if index == 0 and backend == "sqlite":
                wakeup = Wakeup()
                with worker_thread(config, db, wakeup), in_process_web(config, db, wakeup) as url:
                    measure_replies(fake, url, secret, 5, first - 1_000, args.pause)
                    measured = measure_replies(fake, url, secret, count, first, args.pause)
            else:
                worker_db = Database(config.database_url)
                with worker_thread(config, worker_db, None), \
                        Gunicorn("bot.wsgi:app", env, folder) as server:
                    measure_replies(fake, server.base_url, secret, 5, first - 1_000, args.pause)
                    measured = measure_replies(fake, server.base_url, secret, count, first,
                                               args.pause)
                worker_db.dispose()
            replies, answers, missing = measured
            results.append(Latency(layout, replies, answers, missing))
            print(f"  {backend} latency [{layout}]: p50 {percentile(replies, 0.5) * 1000:.0f} ms,"
                  f" p95 {percentile(replies, 0.95) * 1000:.0f} ms, missing {missing}", flush=True)
        db.dispose()
    return results


def latency_md(runs: list[Latency], pause: float) -> str:
    """The reply latency table."""
    rows = []
    for run in runs:
        p95 = percentile(run.replies, 0.95)
        rows.append([run.layout, str(len(run.replies)), fmt(percentile(run.answers, 0.5) * 1000),
                     fmt(percentile(run.replies, 0.5) * 1000),
                     fmt(p95 * 1000), fmt(percentile(run.replies, 1.0) * 1000),
                     str(run.missing), f"≤ {TARGET_LATENCY_P95 * 1000:.0f} ms",
                     verdict(p95 <= TARGET_LATENCY_P95 and run.missing == 0)])
    return (f"Reply latency, webhook POST → sendMessage recorded by the fake (one new member at a "
            f"time, {pause * 1000:.0f} ms pause):\n\n"
            + table(["layout", "replies", "webhook answer p50 ms", "reply p50 ms", "reply p95 ms",
                     "max ms", "missing", "target p95", "met"], rows))
