"""Export at scale: `duan8 export` of a year on PostgreSQL at two sizes, time and peak memory.

    .venv/bin/python bench/export.py                      # 100,000 and 1,000,000 reports
    .venv/bin/python bench/export.py --sizes 20000 200000 --no-report

A scratch database gets the shipped plan, one team of each kind per village and synthetic
reports of one year (a photo on every tenth). At each size the exporting process is run as
deployed (`python -m bot export`, xlsx then csv), with its wall time and peak resident memory
(the child's ru_maxrss); the baseline, in the same run, is a raw COPY of the very statement
the reports sheet reads, streamed to nothing by a separate process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import (
    REPO,
    ScratchDatabase,
    backend_label,
    machine,
    postgres_available,
    replace_section,
    table,
)
from sqlalchemy import create_engine, text

COPY_SCRIPT = """
import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn, conn.cursor() as cur:
    size = 0
    with cur.copy("COPY (" + sys.stdin.read() + ") TO STDOUT") as copy:
        for block in copy:
            size += len(block)
print(size)
"""


def prepare(url: str) -> None:
    """Migrate, load the shipped plan and make one team of each kind per village."""
    from bot.config import DEFAULT_PLAN
    from storage import migrate
    from storage.db import Database
    from storage.plan_file import read_plan_file
    from storage.plans import load_plan

    database = Database(url)
    migrate.upgrade(database.engine)
    with database.transaction() as session:
        load_plan(session, read_plan_file(DEFAULT_PLAN))
        session.execute(text("""
            INSERT INTO teams (code, name, name_folded, kind_id, area_id, active, created_at)
            SELECT 't-' || a.id || '-' || k.code, k.name || ' ' || a.name, lower(a.code),
                   k.id, a.id, true, now()
            FROM areas a CROSS JOIN team_kinds k WHERE a.level = 'village'"""))
    database.dispose()


def add_reports(url: str, first: int, last: int) -> float:
    """Insert reports numbered first..last in one statement on the server; seconds taken."""
    engine = create_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("""
            WITH t AS (SELECT array_agg(id ORDER BY id) AS ids,
                              array_agg(area_id ORDER BY id) AS areas FROM teams),
                 a AS (SELECT array_agg(id ORDER BY id) AS ids FROM activity_types),
                 p AS (SELECT array_agg(id ORDER BY id) AS ids FROM topics)
            INSERT INTO reports (number, team_id, activity_type_id, activity_date, area_id,
                                 place_text, total, women, ethnic, children, topic_id,
                                 topic_text, notes, status, channel, created_at)
            SELECT 'BC-' || lpad(g::text, 7, '0'),
                   t.ids[1 + (g * 7919) % cardinality(t.ids)],
                   a.ids[1 + g % cardinality(a.ids)],
                   date '2025-01-01' + ((g * 37) % 365)::int,
                   t.areas[1 + (g * 7919) % cardinality(t.ids)], '',
                   10 + g % 1500, 5 + g % 700, 3 + g % 900, g % 40,
                   p.ids[1 + g % cardinality(p.ids)], '', 'not exported',
                   CASE WHEN g % 50 = 0 THEN 'returned' ELSE 'submitted' END, 'telegram',
                   now()
            FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g, t, a, p"""),
            {"first": first, "last": last})
        conn.execute(text("""
            INSERT INTO media (report_id, storage_key, content_type, size, sha256, created_at,
                               status, fetch_attempts)
            SELECT id, 'k-' || id, 'image/jpeg', 1000, repeat('0', 64), now(), 'ready', 0
            FROM reports WHERE id BETWEEN :first AND :last AND id % 10 = 0"""),
            {"first": first, "last": last})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE reports"))
        conn.execute(text("ANALYZE media"))
    engine.dispose()
    return time.perf_counter() - started


def run_with_peak(args: list[str], env: dict[str, str], stdin: str | None = None
                  ) -> tuple[float, float, str]:
    """Run a child to the end: (seconds, its own peak resident MiB from wait4, stdout)."""
    started = time.perf_counter()
    child = subprocess.Popen(args, env=env, cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if stdin is not None and child.stdin is not None:
        child.stdin.write(stdin.encode())
    if child.stdin is not None:
        child.stdin.close()
    assert child.stdout is not None and child.stderr is not None
    out = child.stdout.read().decode()
    err = child.stderr.read().decode()
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"{args[:4]} failed: {err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def copy_sql(url: str) -> str:
    """The reports sheet's statement for the whole province in 2025, with literal values."""
    from sqlalchemy.dialects import postgresql

    from storage.db import Database
    from storage.export import export_statement
    from storage.progress import ReportPeriod, area_subtree

    database = Database(url)
    with database.sessions() as session:
        tree = area_subtree(session)
    database.dispose()
    statement: Any = export_statement(tree, ReportPeriod.year(2025))
    return str(statement.compile(dialect=postgresql.dialect(),
                                 compile_kwargs={"literal_binds": True}))


def measure(url: str, size: int, folder: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in {"PLAN_FILE", "DUAN8_ENV_FILE"}}
    env.update(DATABASE_URL=url, DUAN8_INSTANCE=str(folder / "instance"))
    psycopg_url = url.replace("postgresql+psycopg://", "postgresql://")
    figures: dict[str, float] = {"size": size}
    figures["copy_s"], figures["copy_mib"], _ = run_with_peak(
        [sys.executable, "-c", COPY_SCRIPT, psycopg_url], env, copy_sql(url))
    for fmt in ("xlsx", "csv"):
        out = folder / f"export-{size}.{fmt}"
        seconds, peak, stdout = run_with_peak(
            [sys.executable, "-m", "bot", "export", "--year", "2025", "--format", fmt,
             "--out", str(out)], env)
        figures[f"{fmt}_s"], figures[f"{fmt}_mib"] = seconds, peak
        figures[f"{fmt}_mb_file"] = out.stat().st_size / 1e6
        print(f"{size:>9,} {fmt}: {seconds:.1f} s, peak {peak:.0f} MiB ({stdout.strip()})",
              flush=True)
        out.unlink()
    print(f"{size:>9,} COPY baseline: {figures['copy_s']:.1f} s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100_000, 1_000_000],
                        metavar=("SMALL", "LARGE"))
    parser.add_argument("--no-report", action="store_true", help="Leave BENCHMARKS.md alone.")
    options = parser.parse_args()
    if not postgres_available():
        sys.exit("PostgreSQL is not reachable (DUAN8_BENCH_PG_URL)")
    small, large = sorted(options.sizes)
    results = []
    with ScratchDatabase("postgres") as scratch:
        prepare(scratch.url)
        print(f"inserting {small:,} reports…", flush=True)
        add_reports(scratch.url, 1, small)
        results.append(measure(scratch.url, small, scratch.folder))
        print(f"inserting {large - small:,} more…", flush=True)
        add_reports(scratch.url, small + 1, large)
        results.append(measure(scratch.url, large, scratch.folder))
        label = backend_label("postgres")
    if options.no_report:
        return
    rows = []
    for r in results:
        rows.append([f"{int(r['size']):,}", f"{r['copy_s']:.1f}",
                     f"{r['xlsx_s']:.1f}", f"{r['xlsx_s'] / r['copy_s']:.1f}×",
                     f"{r['xlsx_mib']:.0f}", f"{r['xlsx_mb_file']:.0f}",
                     f"{r['csv_s']:.1f}", f"{r['csv_s'] / r['copy_s']:.1f}×",
                     f"{r['csv_mib']:.0f}", f"{r['copy_mib']:.0f}"])
    a, b = results
    growth = b["size"] / a["size"]
    body = "\n".join([
        f"Run on {machine().line()}; {label}.",
        "",
        table(["reports", "COPY s", "xlsx s", "xlsx / COPY", "xlsx peak MiB", "xlsx MB",
               "csv s", "csv / COPY", "csv peak MiB", "COPY peak MiB"], rows),
        "",
        f"Rows ×{growth:.0f}: xlsx time ×{b['xlsx_s'] / a['xlsx_s']:.1f}, csv time "
        f"×{b['csv_s'] / a['csv_s']:.1f}, COPY time ×{b['copy_s'] / a['copy_s']:.1f}; "
        f"peak memory xlsx {a['xlsx_mib']:.0f} → {b['xlsx_mib']:.0f} MiB, csv "
        f"{a['csv_mib']:.0f} → {b['csv_mib']:.0f} MiB (target: under 200 MB at any size).",
    ])
    replace_section("export-postgres", body)


if __name__ == "__main__":
    main()
