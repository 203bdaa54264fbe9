"""Broadcasts at scale: fan-out to 100,000 members, sending them, memory, and a kill at 50 %.

    python bench/broadcast.py --db both [--members 100000] [--send] [--paced 600]
        [--paced-hogs 2] [--kill 10000]

1. Fan-out: `Broadcaster.step` (the worker's code: batches of 2,000, one transaction each,
   unique key per member) for N synthetic members with one Telegram identity each. Baseline
   in the same run: one `INSERT INTO outbox … SELECT` of the same N rows, the least work the
   database can do to write them.
2. With --send: the N rows drained by one OutboxSender against the lean Bot API of
   bench/lean_bot_api.py in its own process, no limits (messages/s), against the same run's
   raw client (TelegramSender.send() on pre-built messages, no database); with --paced R, R
   rows against the fake enforcing Telegram's 30/s (achieved / 30, 429 count), while
   --paced-hogs busy processes (default 2, one per core here) load the machine.
3. Peak memory: the resident set (ru_maxrss) of the child process that fanned out and sent.
4. Kill at 50 %: a worker process (broadcaster + sender) killed with SIGKILL once half the rows
   are sent, a new one started; members missed and members reached twice, counted by the fake.
Each backend gets its own scratch database, dropped at the end; figures are printed and, unless
--no-report, replace this script's section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from benchlib import (  # noqa: E402
    TOKEN,
    ScratchDatabase,
    backend_label,
    chosen_backends,
    fmt,
    machine,
    replace_section,
    scratch_folder,
    table,
)
from broadcast_helpers import TA_LU_1, add_members, team_in  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from bot.config import Config, load_config  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Outbox  # noqa: E402

SECTION = "broadcast"


def config_for(db_url: str, folder: Path, api_url: str = "http://127.0.0.1:9") -> Config:
    return load_config({"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(folder / "none"),
                        "QUIET_HOURS": "off", "TELEGRAM_BOT_TOKEN": TOKEN,
                        "TELEGRAM_API_URL": api_url}, instance_path=folder / "instance")


def prepare(db_url: str, members: int) -> None:
    from bot.config import DEFAULT_PLAN
    from storage.plan_file import read_plan_file
    from storage.plans import load_plan

    db = Database(db_url)
    migrate.upgrade(db.engine)
    with db.transaction() as session:
        load_plan(session, read_plan_file(DEFAULT_PLAN))
    add_members(db, team_in(db, TA_LU_1), members, chunk=10_000)
    db.dispose()


def new_broadcast(db: Database) -> int:
    from storage import broadcasts
    from storage import content as library

    with db.transaction() as session:
        item = library.add_item(session, title="Tài liệu", text="Nội dung tài liệu truyền thông",
                                use_in_village=True)
        return broadcasts.create_broadcast(session, item, broadcasts.Audience())


def baseline_insert(db: Database) -> float:
    """One INSERT … SELECT of a row per member: the database's own floor for this write."""
    started = time.monotonic()
    with db.transaction() as session:
        session.execute(text(
            "INSERT INTO outbox (identity_id, channel, payload, status, priority, attempts,"
            " next_attempt_at, created_at, kind, dedupe_key)"
            " SELECT i.id, i.channel, :payload, 'pending', 10, 0, :now, :now, 'baseline',"
            " 'x:' || i.member_id FROM identities i"), {"payload": '{"text": "x"}',
                                                       "now": "2026-12-01 00:00:00"})
    seconds = time.monotonic() - started
    with db.transaction() as session:
        session.execute(text("DELETE FROM outbox WHERE kind = 'baseline'"))
    return seconds


def child(conn: Any, db_url: str, folder: str, api_url: str, send: bool) -> None:
    """Fan out (and send) in a process of its own, so its peak memory is its own."""
    from bot.broadcaster import Broadcaster
    from bot.channels.telegram.outbound import TelegramSender, make_bot
    from bot.ratelimit import UNLIMITED
    from bot.send_journal import SendJournal
    from bot.sender import OutboxSender

    db = Database(db_url)
    config = config_for(db_url, Path(folder), api_url)
    bid = new_broadcast(db)
    started = time.monotonic()
    Broadcaster(config, db).step()
    fan_out = time.monotonic() - started
    send_seconds = raw = float("nan")
    cpu_used = [float("nan")]
    with db.sessions() as session:
        rows_wanted = session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.broadcast_id == bid)) or 0
    if send:
        async def drain() -> float:
            bot = make_bot(config)
            await bot.initialize()
            channel = TelegramSender(bot)
            channel.limits = UNLIMITED
            # With the send journal, as `duan8 worker` runs it: its writes are part of the cost.
            sender = OutboxSender(db, [channel], journal=SendJournal(Path(folder) / "sendlog"))
            stop = threading.Event()
            cpu = time.process_time()
            began = time.monotonic()
            task = asyncio.create_task(sender.run(stop))
            while True:
                await asyncio.sleep(0.2)
                with db.sessions() as session:
                    left = session.scalar(select(func.count()).select_from(Outbox).where(
                        Outbox.broadcast_id == bid, Outbox.status.in_(["pending", "sending"])))
                if not left:
                    break
            seconds = time.monotonic() - began
            cpu_used[0] = time.process_time() - cpu
            stop.set()
            await task
            await bot.shutdown()
            return seconds

        send_seconds = asyncio.run(drain())
        from sender import raw_client_rate

        # Baseline: TelegramSender.send() alone on pre-built messages, same concurrency.
        raw = asyncio.run(raw_client_rate(config, min(rows_wanted, 20_000), 64, 90_000_000))
    with db.sessions() as session:
        rows = session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.broadcast_id == bid)) or 0
        sent = session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.broadcast_id == bid, Outbox.status == "sent")) or 0
    conn.send({"fan_out": fan_out, "rows": rows, "sent": sent, "send": send_seconds, "raw": raw,
               "cpu_us": cpu_used[0] * 1e6 / max(sent, 1),
               "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def run_child(db_url: str, folder: Path, api_url: str, send: bool) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    parent, conn = context.Pipe()
    process = context.Process(target=child, args=(conn, db_url, str(folder), api_url, send))
    process.start()
    result = parent.recv()
    process.join()
    return dict(result)


WORKER = """
import asyncio, threading
from bot.broadcaster import Broadcaster
from bot.channels.telegram.outbound import TelegramSender, make_bot
from bot.config import load_config
from bot.dispatcher import Wakeup
from bot.ratelimit import UNLIMITED
from bot.send_journal import SendJournal
from bot.sender import OutboxSender, SenderSettings
from datetime import timedelta
from storage.db import Database

async def main():
    config = load_config()
    db = Database(config.database_url)
    bot = make_bot(config)
    await bot.initialize()
    channel = TelegramSender(bot)
    channel.limits = UNLIMITED
    wakeup = Wakeup()
    sender = OutboxSender(db, [channel], wakeup, SenderSettings(lease=timedelta(seconds=3)),
                          SendJournal(config.instance_path / "sendlog"))
    await asyncio.to_thread(sender.recover)
    stop = threading.Event()
    await asyncio.gather(sender.run(stop), Broadcaster(config, db, wakeup).run(stop))

asyncio.run(main())
"""


def kill_at_half(db_url: str, folder: Path, rows: int) -> dict[str, Any]:
    """A worker killed once half the broadcast is sent, then a new one; the fake counts."""
    from sender import FakeProcess

    db = Database(db_url)
    with db.transaction() as session:
        session.execute(text("DELETE FROM outbox"))
        session.execute(text("DELETE FROM identities WHERE id > :n"), {"n": rows})
        session.execute(text("DELETE FROM members WHERE id NOT IN"
                             " (SELECT member_id FROM identities)"))
    bid = new_broadcast(db)
    with FakeProcess() as fake:
        env = {**os.environ, "DATABASE_URL": db_url, "TELEGRAM_BOT_TOKEN": TOKEN,
               "TELEGRAM_API_URL": fake.url, "DUAN8_INSTANCE": str(folder / "kill"),
               "DUAN8_ENV_FILE": str(folder / "none"), "QUIET_HOURS": "off",
               "PYTHONPATH": str(ROOT)}

        def sent() -> int:
            with db.sessions() as session:
                return session.scalar(select(func.count()).select_from(Outbox).where(
                    Outbox.broadcast_id == bid, Outbox.status == "sent")) or 0

        proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env)
        while sent() < rows // 2:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env)
        deadline = time.monotonic() + 600
        while sent() < rows and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait()
        calls = fake.ask("chats")
    counts: dict[int, int] = {}
    for chat in calls:
        counts[chat] = counts.get(chat, 0) + 1
    return {"missed": rows - len(counts), "twice": sum(n - 1 for n in counts.values()),
            "sent": sent()}


def _spin(seconds: float) -> None:
    """Keep one core busy for a while: the load the paced run is measured under."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def paced(db_url: str, folder: Path, rows: int, hogs: int = 0) -> dict[str, Any]:
    from sender import FakeProcess

    from bot.channels.telegram.outbound import TelegramSender, make_bot
    from bot.sender import OutboxSender

    db = Database(db_url)
    with db.transaction() as session:
        session.execute(text("DELETE FROM outbox"))
        session.execute(text("DELETE FROM identities WHERE id > :n"), {"n": rows})
    bid = new_broadcast(db)
    with FakeProcess(limits={"global_per_second": 30.0, "per_chat_per_second": 1.0}) as fake:
        config = config_for(db_url, folder, fake.url)
        from bot.broadcaster import Broadcaster

        Broadcaster(config, db).step()

        async def drain() -> float:
            bot = make_bot(config)
            await bot.initialize()
            sender = OutboxSender(db, [TelegramSender(bot)])
            stop = threading.Event()
            task = asyncio.create_task(sender.run(stop))
            began = time.monotonic()
            while True:
                await asyncio.sleep(0.1)
                with db.sessions() as session:
                    left = session.scalar(select(func.count()).select_from(Outbox).where(
                        Outbox.broadcast_id == bid, Outbox.status != "sent"))
                if not left:
                    break
            seconds = time.monotonic() - began
            stop.set()
            await task
            await bot.shutdown()
            return seconds

        # Busy processes (bounded in time) on the same cores: the sender's calls then reach
        # the fake after delays that vary, as on a loaded machine.
        context = multiprocessing.get_context("spawn")
        spinners = [context.Process(target=_spin, args=(rows / 30 + 30,), daemon=True)
                    for _ in range(hogs)]
        for spinner in spinners:
            spinner.start()
        try:
            seconds = asyncio.run(drain())
        finally:
            for spinner in spinners:
                spinner.terminate()
                spinner.join()
        stats = fake.ask("stats")
    # The fake's own clock, first to last accepted send: start-up is not the sender's rate.
    achieved = float(stats["achieved"] or rows / seconds)
    return {"rate": achieved, "ratio": achieved / 30.0, "too_many": stats["too_many_requests"],
            "seconds": seconds, "hogs": hogs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--send", action="store_true", help="also send the rows (unlimited)")
    parser.add_argument("--paced", type=int, default=0, help="rows against the 30/s fake")
    parser.add_argument("--paced-hogs", type=int, default=2,
                        help="busy processes on the machine during the paced run")
    parser.add_argument("--kill", type=int, default=0, help="rows for the kill-at-50%% run")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    rows = []
    for backend in chosen_backends(args.db):
        with ScratchDatabase(backend) as scratch, scratch_folder() as folder:
            prepare(scratch.url, args.members)
            db = Database(scratch.url)
            base = baseline_insert(db)
            api = "http://127.0.0.1:9"
            if args.send:
                from sender import FakeProcess

                with FakeProcess(lean=True) as fake:  # the lean Bot API: not the limit
                    result = run_child(scratch.url, folder, fake.url, True)
            else:
                result = run_child(scratch.url, folder, api, False)
            line = {"backend": backend_label(backend), "base": base, **result}
            if args.kill:  # before the paced run, which keeps fewer members
                line["kill"] = kill_at_half(scratch.url, folder, args.kill)
            if args.paced:
                line["paced"] = paced(scratch.url, folder, min(args.paced, args.kill or
                                                                  args.paced), args.paced_hogs)
            db.dispose()
            print(line, flush=True)
            rows.append(line)
    body = report(rows, args)
    print(body)
    if not args.no_report:
        replace_section(SECTION, body)


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [f"`python bench/broadcast.py --db {args.db} --members {args.members}"
             + (" --send" if args.send else "") + (f" --paced {args.paced}" if args.paced else "")
             + (f" --kill {args.kill}" if args.kill else "") + "`", "",
             f"Machine: {machine().line()}.", ""]
    head = ["database", "members", "fan-out s", "members/s", "baseline INSERT…SELECT s",
            "fan-out / baseline", "send msg/s (1 worker)", "raw client msg/s", "send / raw",
            "sender CPU µs/msg", "peak RSS MB"]
    cells = []
    for r in rows:
        send_rate = r["sent"] / r["send"] if r["send"] == r["send"] and r["send"] else 0
        cells.append([r["backend"], f"{r['rows']:,}", fmt(r["fan_out"]),
                      f"{r['rows'] / r['fan_out']:,.0f}", fmt(r["base"], 2),
                      fmt(r["fan_out"] / r["base"]),
                      f"{send_rate:,.0f}" if send_rate else "—",
                      f"{r['raw']:,.0f}" if r["raw"] == r["raw"] else "—",
                      fmt(send_rate / r["raw"], 2) if send_rate and r["raw"] == r["raw"] else "—",
                      fmt(r["cpu_us"], 0) if r.get("cpu_us", 0) == r.get("cpu_us") else "—",
                      fmt(r["peak_mb"], 0)])
    lines.append(table(head, cells))
    for r in rows:
        if "paced" in r:
            p = r["paced"]
            lines.append(f"\n{r['backend']}: {args.paced} broadcast rows against the fake "
                         f"enforcing 30/s, with {p['hogs']} busy processes on the machine: "
                         f"{p['rate']:.1f} msg/s = {p['ratio']:.2f} × the "
                         f"limit, {p['too_many']} answers 429.")
        if "kill" in r:
            k = r["kill"]
            lines.append(f"\n{r['backend']}: worker killed (SIGKILL) at 50 % of {args.kill} "
                         f"rows, a new one started: {k['missed']} members missed, "
                         f"{k['twice']} reached twice.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
