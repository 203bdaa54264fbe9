"""Webhook ingestion under gunicorn: the real app against two bare baselines, same machine.

    python bench/webhook.py --db both --seconds 20 --sustained-seconds 60 --burst-seconds 60

Saturation (closed loop, wrk): app A (bare Flask, 200), app B (one committed INSERT … ON
CONFLICT of the raw body) and app C (bot.wsgi:app, Telegram on) each get every request as a new
member's first message; figures are reported as ratios C/B and C/A measured in the same run.
Sustained (open loop, bench/loadgen.py): app C at a fixed 200 req/s. Burst: app C at 500 req/s,
then the database is counted: every 200 answer must have its inbound event and its reply rows.
Each backend gets its own scratch database (SQLite file or PostgreSQL `duan8_bench_…`), dropped
at the end. Results replace this script's sections of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from benchlib import (
    GUNICORN_LABEL,
    SECRET_HEADER,
    TOKEN,
    FakeTelegram,
    Gunicorn,
    Machine,
    ScratchDatabase,
    backend_label,
    chosen_backends,
    fmt,
    machine,
    percentile,
    replace_section,
    scratch_folder,
    service_env,
    table,
    update_body,
    update_template,
    verdict,
)
from loadgen import LoadResult, Target, closed_loop, open_loop
from sqlalchemy import select

from bot.config import load_config
from bot.startup import prepare_database
from storage.db import Database
from storage.models import Identity, InboundEvent, Outbox

WEBHOOK = "/webhooks/telegram"
WRK_LUA = Path(__file__).resolve().parent / "wrk_webhook.lua"
APPS = {"A": "baseline_apps:bare_app", "B": "baseline_apps:durable_app", "C": "bot.wsgi:app"}
APP_NAMES = {"A": "A: bare Flask, 200", "B": "B: one committed INSERT … ON CONFLICT",
             "C": "C: bot.wsgi:app (Telegram webhook)"}
WARMUP_SECONDS = 3.0
TARGET_C_OVER_B = 0.5
TARGET_SUSTAINED_P99_MS = 100.0


class IdBlocks:
    """Hands out disjoint ranges of update ids (and chat ids), so no run repeats an id."""

    SIZE = 100_000_000

    def __init__(self) -> None:
        self.next_block = 1

    def take(self) -> int:
        """The first id of a fresh block."""
        first = self.next_block * self.SIZE
        self.next_block += 1
        return first


@dataclass(frozen=True)
class Saturation:
    """One app's closed-loop figures."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        """Requests per second over the measured duration."""
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str | None:
    """wrk if installed (Debian: apt-get install -y wrk); else the Python generator is used."""
    return shutil.which("wrk")


def install_wrk() -> None:
    """Debian's package, on request only; any failure leaves the Python fallback in charge."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        print("cannot install wrk here (needs root and apt-get)", file=sys.stderr)
        return
    try:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, timeout=300,
                       stdout=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"apt-get install -y wrk failed: {exc}", file=sys.stderr)


def run_wrk(url: str, seconds: float, connections: int, template_file: Path, secret: str,
            first_id: int) -> Saturation:
    """One wrk run with the Lua script; figures come from its done() JSON line."""
    wrk = wrk_path()
    assert wrk is not None
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(WRK_LUA), url + WEBHOOK, "--", str(template_file), secret, str(first_id)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors",
                                   "status_errors", "timeouts"))
    return Saturation(requests=data["requests"], seconds=data["duration_us"] / 1e6,
                      p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000, errors=errors)


def run_python_closed_loop(url: str, seconds: float, connections: int, template: str,
                           secret: str, first_id: int) -> Saturation:
    """The fallback without wrk: same closed loop from loadgen (it costs the server more CPU)."""
    target = Target.of(url + WEBHOOK, {SECRET_HEADER: secret})
    result = asyncio.run(closed_loop(target, connections, seconds,
                                     lambda i: update_body(template, first_id + i)))
    ok = result.latencies()
    return Saturation(requests=len(ok), seconds=seconds, p50_ms=percentile(ok, 0.5) * 1000,
                      p99_ms=percentile(ok, 0.99) * 1000, errors=len(result.samples) - len(ok))


class Bench:
    """One backend's run: scratch database, the fake Bot API nobody calls, ids, settings."""

    def __init__(self, backend: str, db_url: str, folder: Path, api_url: str,
                 args: argparse.Namespace) -> None:
        self.backend = backend
        self.db_url = db_url
        self.folder = folder
        self.args = args
        self.secret = secrets.token_urlsafe(24)
        self.env = service_env(db_url, folder / "instance", api_url, self.secret)
        self.ids = IdBlocks()
        self.template = update_template()
        self.template_file = folder / "update_template.json"
        self.template_file.write_text(self.template, encoding="utf-8")
        self.use_wrk = wrk_path() is not None

    def prepare(self) -> None:
        """Migrate and load the plan once, and make app B's table, before anything is timed."""
        from baseline_apps import create_table

        config = load_config(self.env)
        db = Database(config.database_url)
        prepare_database(config, db)
        create_table(db.engine)
        db.dispose()

    def saturate(self, url: str, seconds: float) -> Saturation:
        """A closed-loop run with fresh ids, by wrk or the Python fallback."""
        first = self.ids.take()
        connections = self.args.connections
        if self.use_wrk:
            return run_wrk(url, seconds, connections, self.template_file, self.secret, first)
        return run_python_closed_loop(url, seconds, connections, self.template, self.secret,
                                      first)

    def saturation(self) -> list[dict[str, Saturation]]:
        """A, B and C served at once and loaded in turn, round after round.

        The machine is shared: a neighbour's burst of CPU would favour whichever app ran
        before it. Short interleaved rounds, in rotated order, put each app's runs next to
        the others' so every round yields its own ratios.
        """
        rounds = max(1, self.args.rounds)
        per_round = max(2.0, self.args.seconds / rounds)
        names = list(APPS)
        with Gunicorn(APPS["A"], self.env, self.folder) as app_a, \
                Gunicorn(APPS["B"], self.env, self.folder) as app_b, \
                Gunicorn(APPS["C"], self.env, self.folder) as app_c:
            urls = {"A": app_a.base_url, "B": app_b.base_url, "C": app_c.base_url}
            for name in names:
                self.saturate(urls[name], WARMUP_SECONDS)
            results: list[dict[str, Saturation]] = []
            for number in range(rounds):
                order = names[number % 3:] + names[:number % 3]
                results.append({})
                for name in order:
                    time.sleep(0.5)
                    results[-1][name] = self.saturate(urls[name], per_round)
                line = ", ".join(f"{k} {v.rate:,.0f} req/s p99 {v.p99_ms:.0f} ms"
                                 for k, v in sorted(results[-1].items()))
                print(f"  {self.backend} saturation round {number + 1}: {line}", flush=True)
        return results

    def fixed_rate(self, url: str, rate: float, seconds: float, first: int, *,
                   timeout: float, drain: float) -> LoadResult:
        """An open-loop run of new members' first messages at `rate`."""
        target = Target.of(url + WEBHOOK, {SECRET_HEADER: self.secret})
        return asyncio.run(open_loop(target, rate, seconds,
                                     lambda i: update_body(self.template, first + i),
                                     timeout=timeout, drain=drain))

    def replies_per_new_member(self, url: str) -> int:
        """How many outbox rows one first message queues, measured rather than assumed."""
        probe = self.ids.take()
        answer = httpx.post(url + WEBHOOK, content=update_body(self.template, probe),
                            headers={SECRET_HEADER: self.secret,
                                     "Content-Type": "application/json"}, timeout=10)
        answer.raise_for_status()
        db = Database(self.db_url)
        try:
            with db.sessions() as session:
                identity = session.scalar(select(Identity.id).where(
                    Identity.channel == "telegram", Identity.external_id == str(probe)))
                return len(session.scalars(select(Outbox.id).where(
                    Outbox.identity_id == identity)).all())
        finally:
            db.dispose()

    def count_burst(self, result: LoadResult, first: int, per_member: int) -> dict[str, int]:
        """Compare what the client was told (200) with what the database holds for the burst."""
        span = range(first, first + result.scheduled)
        answered = {first + s.index for s in result.samples if s.status == 200}
        db = Database(self.db_url)
        try:
            with db.sessions() as session:
                events = [int(e) for e in session.scalars(select(InboundEvent.event_id).where(
                    InboundEvent.channel == "telegram")) if e.isdigit() and int(e) in span]
                identities = [(i, int(x)) for i, x in session.execute(
                    select(Identity.id, Identity.external_id).where(
                        Identity.channel == "telegram")) if x.isdigit() and int(x) in span]
                owners = {i for i, _x in identities}
                outbox_rows = Counter(session.scalars(select(Outbox.identity_id)))
        finally:
            db.dispose()
        stored = set(events)
        rows = {i: outbox_rows.get(i, 0) for i in owners}
        return {
            "sent": result.scheduled,
            "answered_200": len(answered),
            "inbound_events": len(events),
            "lost": len(answered - stored),
            "duplicated_events": len(events) - len(stored),
            "stored_without_200": len(stored - answered),
            "identities": len(identities),
            "duplicated_identities": len(identities) - len({x for _i, x in identities}),
            "outbox_rows": sum(rows.values()),
            "outbox_expected": per_member * len(stored),
            "members_missing_replies": sum(1 for n in rows.values() if n < per_member),
            "duplicated_replies": sum(n - per_member for n in rows.values() if n > per_member),
        }

    def real_app_runs(self) -> tuple[LoadResult | None, tuple[LoadResult, dict[str, int]] | None]:
        """Sustained then burst against one app C server (warmed up first)."""
        sustained = burst = None
        if self.args.sustained_seconds <= 0 and self.args.burst_seconds <= 0:
            return None, None
        with Gunicorn(APPS["C"], self.env, self.folder) as server:
            self.saturate(server.base_url, WARMUP_SECONDS)
            time.sleep(1.0)
            if self.args.sustained_seconds > 0:
                sustained = self.fixed_rate(server.base_url, self.args.rate,
                                            self.args.sustained_seconds, self.ids.take(),
                                            timeout=10.0, drain=15.0)
                print(f"  {self.backend} sustained: {sustained.achieved_rate():,.1f} req/s, "
                      f"p99 {percentile(sustained.latencies(), 0.99) * 1000:.1f} ms", flush=True)
                time.sleep(2.0)
            if self.args.burst_seconds > 0:
                per_member = self.replies_per_new_member(server.base_url)
                first = self.ids.take()
                result = self.fixed_rate(server.base_url, self.args.burst_rate,
                                         self.args.burst_seconds, first, timeout=60.0,
                                         drain=self.args.burst_seconds + 60.0)
                time.sleep(1.0)  # let requests the client gave up on finish their commit
                counts = self.count_burst(result, first, per_member)
                burst = (result, counts)
                print(f"  {self.backend} burst: {counts}", flush=True)
        return sustained, burst


def saturation_md(rounds: list[dict[str, Saturation]], seconds: float, generator: str) -> str:
    """The closed-loop table (all rounds together) and the ratios round by round."""
    rows = []
    totals = {}
    for name in APPS:
        runs = [r[name] for r in rounds]
        requests = sum(r.requests for r in runs)
        totals[name] = requests / sum(r.seconds for r in runs)
        rows.append([APP_NAMES[name], f"{requests:,}", fmt(totals[name], 0),
                     fmt(statistics.median(r.p50_ms for r in runs)),
                     fmt(statistics.median(r.p99_ms for r in runs)),
                     str(sum(r.errors for r in runs)), fmt(totals[name] / totals["A"], 3)])

    def ratio_row(label: str, top: str, bottom: str, target: float | None) -> list[str]:
        """One ratio, round by round, with its median and verdict."""
        each = [r[top].rate / r[bottom].rate for r in rounds if r[bottom].rate]
        middle = statistics.median(each) if each else float("nan")
        return [label, fmt(middle, 3), ", ".join(fmt(x, 3) for x in each),
                f"≥ {target}" if target else "—",
                verdict(middle >= target) if target else "—"]

    ratios = table(["ratio", "median of rounds", "each round", "target", "met"], [
        ratio_row("C/B (real app / minimal durable webhook)", "C", "B", TARGET_C_OVER_B),
        ratio_row("C/A (real app / bare Flask)", "C", "A", None),
    ])
    per_round = seconds / len(rounds)
    return (f"Saturation, closed loop, {generator}: the three apps served at once and loaded in "
            f"turn, {len(rounds)} rounds × {per_round:g} s per app in rotated order ({seconds:g} s "
            f"per app in all) after a {WARMUP_SECONDS:g} s warm-up each; p50/p99 are the median "
            "of the rounds' values:\n\n"
            + table(["app", "requests", "req/s", "p50 ms", "p99 ms", "errors", "÷ A"], rows)
            + "\n\n" + ratios)


def sustained_md(result: LoadResult, rate: float, seconds: float) -> str:
    """The fixed-rate table."""
    lat = result.latencies()
    p50, p99 = percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000
    bad = len(result.samples) - len(lat) + result.unanswered
    rows = [[f"{rate:g} req/s for {seconds:g} s", f"{result.scheduled:,}",
             fmt(result.achieved_rate()), fmt(p50), fmt(p99),
             fmt(percentile(lat, 1.0) * 1000), str(bad),
             fmt(result.max_send_lag * 1000), str(result.retried_on_stale_socket),
             f"≤ {TARGET_SUSTAINED_P99_MS:g} ms",
             verdict(p99 <= TARGET_SUSTAINED_P99_MS and bad == 0)]]
    return ("Sustained, open loop (latency from each request's scheduled send time), app C:\n\n"
            + table(["load", "requests", "achieved req/s", "p50 ms", "p99 ms", "max ms",
                     "not 200", "generator lag max ms", "resent after idle close",
                     "target p99", "met"], rows))


def burst_md(result: LoadResult, counts: dict[str, int], rate: float, seconds: float) -> str:
    """The burst's latency and the row counts that prove nothing was lost or doubled."""
    lat = result.latencies()
    statuses = ", ".join(f"{k or 'no answer'}: {v:,}" for k, v in sorted(result.statuses().items()))
    lost = counts["lost"] + counts["members_missing_replies"]
    duplicated = (counts["duplicated_events"] + counts["duplicated_identities"]
                  + counts["duplicated_replies"])
    rows = [
        ["requests sent / answered 200", f"{counts['sent']:,} / {counts['answered_200']:,}"],
        ["answers by status", statuses + (f"; still open at the end: {result.unanswered}"
                                          if result.unanswered else "")],
        ["achieved req/s (200s)", fmt(result.achieved_rate())],
        ["resent after the server closed an idle keep-alive socket",
         str(result.retried_on_stale_socket)],
        ["p50 / p99 / max latency ms", f"{fmt(percentile(lat, 0.5) * 1000)} / "
         f"{fmt(percentile(lat, 0.99) * 1000)} / {fmt(percentile(lat, 1.0) * 1000)}"],
        ["inbound_events rows for the burst", f"{counts['inbound_events']:,}"],
        ["stored although the client got no 200", f"{counts['stored_without_200']:,}"],
        ["outbox rows (expected = replies per new member × events)",
         f"{counts['outbox_rows']:,} (expected {counts['outbox_expected']:,})"],
        ["**lost** (200 without event, or member without reply)", f"**{lost}**"],
        ["**duplicated** (events, identities, extra replies)", f"**{duplicated}**"],
    ]
    return (f"Burst, open loop at {rate:g} req/s for {seconds:g} s, app C, then the rows "
            "counted:\n\n" + table(["burst", "value"], rows))


def write_section(backend: str, args: argparse.Namespace, generator: str, host: Machine,
                  saturation: list[dict[str, Saturation]] | None, sustained: LoadResult | None,
                  burst: tuple[LoadResult, dict[str, int]] | None) -> None:
    """Replace this backend's webhook section of BENCHMARKS.md."""
    parts = [f"#### Webhook on {backend_label(backend)}", "",
             f"Machine: {host.line()}. Server: {GUNICORN_LABEL}; load generator on the "
             "same machine.", ""]
    if saturation:
        parts += [saturation_md(saturation, args.seconds, generator), ""]
    if sustained is not None:
        parts += [sustained_md(sustained, args.rate, args.sustained_seconds), ""]
    if burst is not None:
        parts += [burst_md(burst[0], burst[1], args.burst_rate, args.burst_seconds), ""]
    replace_section(f"webhook:{backend}", "\n".join(parts))


def main() -> None:
    """Parse flags, run each backend in turn, write the report."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="saturation run per app (0 skips saturation)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="interleaved saturation rounds (each app gets --seconds in all)")
    parser.add_argument("--connections", type=int, default=16,
                        help="closed-loop connections (wrk -c)")
    parser.add_argument("--rate", type=float, default=200.0, help="sustained rate, req/s")
    parser.add_argument("--sustained-seconds", type=float, default=60.0, help="0 skips it")
    parser.add_argument("--burst-rate", type=float, default=500.0)
    parser.add_argument("--burst-seconds", type=float, default=60.0, help="0 skips it")
    parser.add_argument("--install-wrk", action="store_true",
                        help="apt-get install -y wrk first when it is missing (needs root)")
    parser.add_argument("--no-report", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args()

    if wrk_path() is None and args.install_wrk:
        install_wrk()
    if wrk_path() is None:
        print("wrk not found (Debian: apt-get install -y wrk); saturation uses the Python "
              "closed-loop generator instead", file=sys.stderr)
    generator = (f"wrk -t1 -c{args.connections}" if wrk_path()
                 else f"Python closed loop, {args.connections} connections (wrk not installed)")
    for backend in chosen_backends(args.db):
        print(f"webhook benchmark on {backend}", flush=True)
        host = machine()  # the date the run started
        with ScratchDatabase(backend) as scratch, scratch_folder() as folder, \
                FakeTelegram(TOKEN) as fake:
            bench = Bench(backend, scratch.url, folder, fake.url, args)
            bench.prepare()
            saturation = bench.saturation() if args.seconds > 0 else None
            sustained, burst = bench.real_app_runs()
            if fake.calls_to("sendMessage"):
                print("  warning: the web process called the Bot API", file=sys.stderr)
        if not args.no_report:
            write_section(backend, args, generator, host, saturation, sustained, burst)


if __name__ == "__main__":
    main()
