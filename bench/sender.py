"""The outbox sender against the fake Telegram Bot API: paced rate, raw throughput, reply latency.

    python bench/sender.py --db both

1. Paced: the fake enforces Telegram's flood limits (30/s overall, 1/s per chat); 600 rows to
   600 chats go through OutboxSender + TelegramSender. Achieved rate / 30 and the 429 count.
2. Unlimited: the fake in its own process without limits, TelegramSender's limits replaced by
   bot.ratelimit.UNLIMITED; messages/s of the sender, against the same run's raw client path
   (TelegramSender.send() on pre-built messages, same concurrency, no database) so the ratio
   shows what the outbox (claim, record) costs apart from the HTTP client.
3. Reply latency: the real web app and a worker with Telegram on; one new member's message at a
   time, from the POST to the fake recording sendMessage for that chat.
Each backend gets its own scratch database, dropped at the end; results replace this script's
sections of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lean_bot_api
from benchlib import (
    TOKEN,
    ScratchDatabase,
    backend_label,
    chosen_backends,
    fmt,
    machine,
    replace_section,
    scratch_folder,
    serve_fake_in_process,
    service_env,
    table,
    verdict,
)
from loadgen import Target, closed_loop
from sender_latency import latency_md, latency_runs
from sender_workers import PAYLOAD, WorkersRate, queue_rows, sent_between, work_left, workers_rate
from sqlalchemy import func, select

from bot.channels.telegram.outbound import TelegramSender, make_bot
from bot.channels.telegram.polling import MODE_KEY
from bot.config import Config, load_config
from bot.ratelimit import UNLIMITED
from bot.sender import OutboxSender, SenderSettings
from bot.startup import prepare_database
from storage import settings
from storage.db import Database
from storage.models import Outbox
from storage.outbox import OutboundMessage

FAKE_GLOBAL_LIMIT = 30.0
TARGET_PACED_RATIO = 0.95
TARGET_UNLIMITED_PG = 2000.0
def config_for(db_url: str, folder: Path, api_url: str, secret: str = "") -> Config:
    """The service's configuration with Telegram on and the Bot API at `api_url`."""
    env = service_env(db_url, folder / "instance", api_url, secret or secrets.token_urlsafe(16),
                      PLAN_FILE="off")
    return load_config(env)


def outbox_statuses(db: Database) -> Counter[str]:
    """Rows by status, to check that everything queued ended as sent."""
    with db.sessions() as session:
        return Counter(dict(session.execute(
            select(Outbox.status, func.count()).group_by(Outbox.status)).all()))


async def drain(db: Database, sender: OutboxSender, deadline: float) -> float:
    """The sender's own loop (`run`, lanes and all) until nothing is pending or leased.

    Returns the seconds until the last row was written back; the check is a count every
    50 ms, so the figure is at most that much late.
    """
    stop = threading.Event()
    started = time.monotonic()
    running = asyncio.create_task(sender.run(stop))
    finished = started
    try:
        while time.monotonic() - started < deadline:
            await asyncio.sleep(0.05)
            if not await asyncio.to_thread(work_left, db):
                finished = time.monotonic()
                break
            if running.done():
                running.result()  # raises what stopped the sender
                break
    finally:
        stop.set()
        sender.wakeup.notify()
        await asyncio.wait_for(running, 30)
    return (finished if finished > started else time.monotonic()) - started


class FakeProcess:
    """The fake Bot API in a child process, so its GIL is not the client's."""

    def __init__(self, lean: bool = False, limits: dict[str, float] | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        if lean:
            target, args = lean_bot_api.serve_in_process, (child, TOKEN)
        else:
            target, args = serve_fake_in_process, (child, TOKEN, limits)
        self.process = context.Process(target=target, args=args, daemon=True,
                                       name="lean-bot-api" if lean else "fake-telegram")

    def __enter__(self) -> FakeProcess:
        """Start the child and learn its URL."""
        self.process.start()
        if not self.conn.poll(30):
            raise RuntimeError("the fake Bot API process did not start")
        self.url: str = self.conn.recv()
        return self

    def ask(self, command: str) -> Any:
        """Send a command and wait (bounded) for its answer."""
        self.conn.send(command)
        if not self.conn.poll(30):
            raise RuntimeError(f"the fake Bot API did not answer {command!r}")
        return self.conn.recv()

    def __exit__(self, *exc_info: object) -> None:
        """Ask the child to stop; terminate it if it does not."""
        self.conn.send("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)


# --- 1. paced --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paced:
    """The paced run's figures."""

    rows: int
    seconds: float
    accepted: int
    achieved: float
    peak_1s: float
    too_many_requests: int
    statuses: Counter[str]


async def paced_run(db: Database, folder: Path, rows: int) -> Paced:
    """Telegram's limits enforced by the fake, Telegram's pacing in the sender.

    The fake runs in its own process: it stamps each request's arrival for its sliding-second
    limit, and in the sender's process those stamps waited on the sender's threads for the GIL,
    bunching arrivals the sender had spaced (a few 429s in one run out of ten).
    """
    limits = {"global_per_second": FAKE_GLOBAL_LIMIT, "per_chat_per_second": 1.0,
              "per_group_per_minute": 20.0}
    with FakeProcess(limits=limits) as fake:
        config = config_for(db.url, folder, fake.url)
        queue_rows(db, rows, first_chat=1_000_000)
        bot = make_bot(config)
        await bot.initialize()
        try:
            sender = OutboxSender(db, [TelegramSender(bot)])
            seconds = await drain(db, sender, deadline=max(60.0, rows / 20))
        finally:
            await bot.shutdown()
        stats = fake.ask("stats")
        return Paced(rows=rows, seconds=seconds, accepted=stats["accepted"],
                     achieved=stats["achieved"], peak_1s=stats["peak_1s"],
                     too_many_requests=stats["too_many_requests"], statuses=outbox_statuses(db))


# --- 2. unlimited ----------------------------------------------------------------------------


def prebuilt_messages(count: int, first_chat: int) -> list[OutboundMessage]:
    """What claim_due would hand the channel, built without a database."""
    return [OutboundMessage(id=i + 1, identity_id=i + 1, channel="telegram",
                            external_id=str(first_chat + i), payload=dict(PAYLOAD), attempts=1)
            for i in range(count)]


async def raw_client_rate(config: Config, count: int, in_flight: int, first_chat: int) -> float:
    """TelegramSender.send() alone, as many at once as the sender allows: the HTTP client path."""
    bot = make_bot(config)
    await bot.initialize()
    channel = TelegramSender(bot)
    gate = asyncio.Semaphore(in_flight)

    async def one(message: OutboundMessage) -> bool:
        """One send under the in-flight gate."""
        async with gate:
            return (await channel.send(message)).ok

    try:
        started = time.monotonic()
        results = await asyncio.wait_for(
            asyncio.gather(*(one(m) for m in prebuilt_messages(count, first_chat))), 120)
        elapsed = time.monotonic() - started
    finally:
        await bot.shutdown()
    return sum(results) / elapsed


async def fake_capacity(api_url: str, seconds: float = 2.0) -> float:
    """sendMessage on raw keep-alive sockets (bench/loadgen): shows the fake is not the limit."""
    target = Target.of(f"{api_url}/bot{TOKEN}/sendMessage")
    result = await closed_loop(target, 8, seconds, lambda i: json.dumps(
        {"chat_id": 40_000_000 + i, "text": PAYLOAD["text"]}).encode())
    return len(result.ok()) / seconds


@dataclass(frozen=True)
class SenderRate:
    """The sender at one in-flight setting, bracketed by the raw client at the same setting."""

    in_flight: int
    rows: int
    seconds: float
    sent: int
    accepted: int
    raw_before: float
    raw_after: float

    @property
    def rate(self) -> float:
        """Messages per second over the whole drain."""
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def raw(self) -> float:
        """The baseline: mean of the runs just before and just after."""
        return (self.raw_before + self.raw_after) / 2


async def sender_rate(db: Database, fake: FakeProcess, config: Config, rows: int, in_flight: int,
                      first_chat: int) -> SenderRate:
    """Raw client, sender, raw client again: the baseline brackets the measurement."""
    before = await raw_client_rate(config, rows, in_flight, first_chat)
    queued = queue_rows(db, rows, first_chat=first_chat + 10_000_000)
    fake.ask("clear")
    bot = make_bot(config)
    await bot.initialize()
    try:
        channel = TelegramSender(bot)
        channel.limits = UNLIMITED  # the fake has no limits; measure the outbox, not pacing
        sender = OutboxSender(db, [channel], settings=SenderSettings(in_flight=in_flight))
        seconds = await drain(db, sender, deadline=max(60.0, rows / 50))
    finally:
        await bot.shutdown()
    accepted = fake.ask("stats")["accepted"]
    after = await raw_client_rate(config, rows, in_flight, first_chat + 20_000_000)
    sent = sent_between(db, min(queued), max(queued))
    return SenderRate(in_flight=in_flight, rows=rows, seconds=seconds, sent=sent,
                      accepted=accepted, raw_before=before, raw_after=after)


@dataclass(frozen=True)
class Unlimited:
    """The unlimited run: the sender at two in-flight settings against the test suite's fake,
    then worker processes against the lean Bot API, and both servers' capacity."""

    default: SenderRate
    low: SenderRate | None
    fake_capacity: float
    lean_capacity: float = float("nan")
    lean_raw: tuple[float, float] = (float("nan"), float("nan"))
    workers: tuple[WorkersRate, ...] = ()


async def unlimited_run(db: Database, folder: Path, rows: int, low_in_flight: int,
                        worker_counts: tuple[int, ...]) -> Unlimited:
    """The sender at its default in-flight and at a low one, each against its raw client; then
    (PostgreSQL) `duan8 worker` processes against the lean Bot API."""
    with FakeProcess() as fake:
        config = config_for(db.url, folder, fake.url)
        await raw_client_rate(config, 200, SenderSettings().in_flight, 11_000_000)  # warm up
        capacity = await fake_capacity(fake.url)
        default = await sender_rate(db, fake, config, rows, SenderSettings().in_flight,
                                    20_000_000)
        low = None
        if low_in_flight > 0:
            low = await sender_rate(db, fake, config, rows, low_in_flight, 50_000_000)
    if not worker_counts or db.is_sqlite:  # SQLite serves one process: no worker scale-out
        return Unlimited(default=default, low=low, fake_capacity=capacity)
    with db.transaction() as session:
        settings.put(session, MODE_KEY, "webhook")  # the workers must not poll getUpdates
    with FakeProcess(lean=True) as lean:
        config = config_for(db.url, folder, lean.url)
        in_flight = SenderSettings().in_flight
        await raw_client_rate(config, 200, in_flight, 12_000_000)
        lean_capacity = await fake_capacity(lean.url)
        before = await raw_client_rate(config, rows, in_flight, 60_000_000)
        runs = []
        for index, count in enumerate(worker_counts):
            runs.append(await asyncio.to_thread(workers_rate, db, lean.url, folder, count,
                                                rows, 70_000_000 + index * 5_000_000))
            print(f"  {count} worker(s): {runs[-1].rate:,.0f} msg/s", flush=True)
        after = await raw_client_rate(config, rows, in_flight, 65_000_000)
    return Unlimited(default=default, low=low, fake_capacity=capacity,
                     lean_capacity=lean_capacity, lean_raw=(before, after), workers=tuple(runs))


# --- report ----------------------------------------------------------------------------------


def paced_md(paced: Paced) -> str:
    """The paced table."""
    ratio = paced.achieved / FAKE_GLOBAL_LIMIT
    rows = [[f"{paced.rows:,} rows → {paced.rows:,} chats", f"{paced.accepted:,}",
             fmt(paced.seconds), fmt(paced.achieved, 2), fmt(paced.peak_1s, 0),
             fmt(ratio, 3), str(paced.too_many_requests),
             ", ".join(f"{k}: {v}" for k, v in sorted(paced.statuses.items())),
             verdict(ratio >= TARGET_PACED_RATIO and paced.too_many_requests == 0)]]
    return ("Paced (fake enforces 30 msg/s overall, 1/s per chat; sender uses Telegram's limits, "
            "29/s):\n\n" + table(["load", "accepted by fake", "seconds", "achieved msg/s",
                                   "peak in 1 s", "achieved ÷ 30 (target ≥ 0.95)",
                                   "429s (target 0)", "outbox end state", "met"], rows))


def unlimited_md(backend: str, run: Unlimited) -> str:
    """The unlimited table: the sender against its raw-client baseline, per in-flight setting."""
    rows = []
    for index, rate in enumerate(r for r in (run.default, run.low) if r is not None):
        ratio = rate.rate / rate.raw if rate.raw else float("nan")
        default = " (default)" if index == 0 else ""
        rows += [
            [f"outbox sender in this process, {rate.in_flight} in flight{default}",
             f"{rate.sent:,} of {rate.rows:,}", fmt(rate.rate, 0), fmt(ratio, 3), "—", "—"],
            [f"baseline: raw client, TelegramSender.send(), {rate.in_flight} in flight, "
             "no database", f"{rate.rows:,} before, {rate.rows:,} after",
             f"{fmt(rate.raw_before, 0)} / {fmt(rate.raw_after, 0)}", "1", "—", "—"],
        ]
    rows.append(["reference: the fake itself, raw keep-alive sockets (bench/loadgen), 8 conns",
                 "2 s closed loop", fmt(run.fake_capacity, 0), "—", "—", "—"])
    text = ("Unlimited, against the test suite's fake (`tests/fakes/telegram_api.py`, in its own "
            "process, no limits; sender limits = bot.ratelimit.UNLIMITED; "
            f"{run.default.rows:,} rows to as many chats):\n\n"
            + table(["path", "messages", "msg/s", "÷ raw client", "target", "met"], rows))
    if not run.workers:
        return text
    raw = sum(run.lean_raw) / 2
    lean_rows = []
    for workers in run.workers:
        judged = workers.workers == max(w.workers for w in run.workers)
        lean_rows.append([
            f"`duan8 worker` × {workers.workers}", f"{workers.sent:,} of {workers.rows:,}",
            fmt(workers.rate, 0), fmt(workers.rate / raw if raw else float("nan"), 3),
            fmt(workers.cpu_us_per_message, 0),
            f"≥ {TARGET_UNLIMITED_PG:,.0f}/s" if judged else "—",
            verdict(workers.rate >= TARGET_UNLIMITED_PG) if judged else "—"])
    lean_rows += [
        ["baseline: raw client, TelegramSender.send(), 64 in flight, no database, one process",
         f"{run.default.rows:,} before, {run.default.rows:,} after",
         f"{fmt(run.lean_raw[0], 0)} / {fmt(run.lean_raw[1], 0)}", "1", "—", "—", "—"],
        ["reference: the lean Bot API itself, raw keep-alive sockets, 8 conns",
         "2 s closed loop", fmt(run.lean_capacity, 0), "—", "—", "—", "—"]]
    return (text + "\n\nUnlimited, as deployed: `duan8 worker` processes (Telegram on, "
            "`TELEGRAM_RATE_LIMIT=unlimited`) draining one outbox, against the lean Bot API "
            "(`bench/lean_bot_api.py`, its own process); rows queued in one transaction, timed "
            "from its commit to the last row written back; CPU from /proc:\n\n"
            + table(["path", "messages", "msg/s", "÷ raw client", "worker CPU µs/msg",
                     "target", "met"], lean_rows))


def main() -> None:
    """Parse flags, run the three measurements per backend, write the report."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--paced-rows", type=int, default=600, help="0 skips the paced run")
    parser.add_argument("--rows", type=int, default=5000, help="unlimited run; 0 skips it")
    parser.add_argument("--low-in-flight", type=int, default=4,
                        help="also run the sender at this in-flight setting; 0 skips it")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                        help="worker process counts for the deployed run (PostgreSQL); none skips")
    parser.add_argument("--latency-requests", type=int, default=200, help="0 skips latency")
    parser.add_argument("--split-requests", type=int, default=50,
                        help="SQLite with gunicorn and a separate worker (informative); 0 skips")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between messages")
    parser.add_argument("--no-report", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request

    for backend in chosen_backends(args.db):
        print(f"sender benchmark on {backend}", flush=True)
        parts = [f"#### Sender on {backend_label(backend)}", "",
                 f"Machine: {machine().line()}. Bot API client: python-telegram-bot "
                 f"{_ptb_version()} over aiohttp {_aiohttp_version()} (make_bot, pool 64).", ""]
        for name, wanted in (("paced", args.paced_rows), ("unlimited", args.rows)):
            if wanted <= 0:
                continue
            with ScratchDatabase(backend) as scratch, scratch_folder() as folder:
                db = Database(scratch.url)
                prepare_database(config_for(scratch.url, folder, "http://127.0.0.1:9"), db)
                if name == "paced":
                    paced = asyncio.run(paced_run(db, folder, wanted))
                    print(f"  {backend} paced: {paced}", flush=True)
                    parts += [paced_md(paced), ""]
                else:
                    run = asyncio.run(unlimited_run(db, folder, wanted, args.low_in_flight,
                                                    tuple(args.workers)))
                    print(f"  {backend} unlimited: {run}", flush=True)
                    parts += [unlimited_md(backend, run), ""]
                db.dispose()
        if args.latency_requests > 0:
            with ScratchDatabase(backend) as scratch, scratch_folder() as folder:
                runs = latency_runs(backend, scratch.url, folder, args)
            parts += [latency_md(runs, args.pause), ""]
        if not args.no_report:
            replace_section(f"sender:{backend}", "\n".join(parts))


def _ptb_version() -> str:
    """The client library's version, since its speed is what the figures show."""
    import telegram

    return str(telegram.__version__)


def _aiohttp_version() -> str:
    """The HTTP transport under it (bot/channels/telegram/aiohttp_request.py)."""
    import aiohttp

    return str(aiohttp.__version__)


if __name__ == "__main__":
    main()
