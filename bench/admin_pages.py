"""Admin pages at scale: the dashboard and the report list with 1,000,000 reports and 100,000
members on PostgreSQL, for a province admin and a district officer.

    .venv/bin/python bench/admin_pages.py [--reports 1000000] [--members 100000]

Each page is rendered through the real app (sign-in, scope, audit, template) with Flask's test
client, so the figure is the server's own time without a network; the baseline is the raw SQL
aggregate the dashboard wraps, run on the same database in the same run. Writes the
`admin-pages` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import date

from benchlib import (
    fmt,
    machine,
    pg_admin_url,
    postgres_available,
    postgres_version,
    replace_section,
    scratch_folder,
    table,
    verdict,
)
from sqlalchemy import create_engine, make_url, select, text

from bot.admin import dashboard
from bot.app import create_app, db_of
from bot.config import load_config
from bot.startup import prepare_database
from storage.members import ensure_village_team
from storage.models import Area
from storage.people import create_admin

PASSWORD = "bench password 12345"
ROUNDS = 7


def _fill(url: str, reports: int, members: int) -> None:
    """Teams for every village, members spread over them, reports dated over a year: set-based
    SQL, so a million rows take seconds, not the app's per-message path."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO members (display_name, role, team_id, locale, created_at)
            SELECT 'Thành viên ' || g, 'member',
                   (SELECT id FROM teams ORDER BY id OFFSET (g % (SELECT count(*) FROM teams))
                    LIMIT 1), 'vi', now()
            FROM generate_series(1, :n) AS g"""), {"n": members})
        conn.execute(text("""
            INSERT INTO reports (number, member_id, team_id, activity_type_id, activity_date,
                                 area_id, place_text, total, women, ethnic, children,
                                 topic_text, notes, status, channel, created_at)
            SELECT 'BC-' || lpad(g::text, 7, '0'), m.id, m.team_id,
                   (SELECT min(id) FROM activity_types) + (g % 8),
                   DATE '2025-01-01' + (g % 365), t.area_id, '', 10 + g % 50, 5 + g % 20,
                   g % 15, g % 10, '', '', 'submitted', 'webchat', now()
            FROM generate_series(1, :n) AS g
            JOIN members m ON m.id = (SELECT min(id) FROM members) + (g % :members)
            JOIN teams t ON t.id = m.team_id"""), {"n": reports, "members": members})
        conn.execute(text("ANALYZE"))
    engine.dispose()


def _timed(call: Callable[[], object]) -> float:
    samples = []
    for _round in range(ROUNDS):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    if not postgres_available():
        raise SystemExit("no PostgreSQL at " + pg_admin_url())
    admin_url = make_url(pg_admin_url())
    name = f"duan8_bench_admin_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        with scratch_folder() as folder:
            config = load_config({"DATABASE_URL": url, "DUAN8_ENV_FILE": str(folder / "none")},
                                 instance_path=folder)
            app = create_app(config)
            db = db_of(app)
            prepare_database(config, db)
            with db.transaction() as session:
                for area_id in session.scalars(select(Area.id).where(Area.level == "village")):
                    ensure_village_team(session, area_id)
                create_admin(session, "tinh", PASSWORD, role="province", area_code=None)
                create_admin(session, "huyen", PASSWORD, role="district", area_code="nt.bac-ai")
            started = time.perf_counter()
            _fill(url, args.reports, args.members)
            fill_seconds = time.perf_counter() - started
            raw = create_engine(url)

            def baseline() -> None:
                with raw.connect() as conn:
                    conn.execute(text(
                        "SELECT count(*), sum(total), sum(women), sum(ethnic), sum(children)"
                        " FROM reports WHERE activity_date >= DATE '2025-01-01'")).all()

            base = _timed(baseline)
            # The reports are dated in 2025, inside the plan's phase: "today" is set there too,
            # so the dashboard's completeness has each deadline's current period to count.
            dashboard._today = lambda: date(2025, 8, 1)  # type: ignore[attr-defined]
            rows = []
            for who in ("tinh", "huyen"):
                client = app.test_client()
                page = client.get("/admin/login").text
                token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
                assert token
                client.post("/admin/login", data={"username": who, "password": PASSWORD,
                                                  "csrf_token": token.group(1)})
                for path, label in (("/admin/?from=2025-01-01&to=2025-12-31", "dashboard"),
                                    ("/admin/reports", "report list"),
                                    ("/admin/plan", "plan"),
                                    ("/admin/reports?page=100", "report list, page 101")):
                    assert client.get(path).status_code == 200
                    seconds = _timed(lambda p=path, c=client: c.get(p))
                    rows.append(["province admin" if who == "tinh" else "district officer",
                                 label, fmt(seconds * 1000, 0), fmt(seconds / base, 1),
                                 verdict(seconds < 1.0)])
            raw.dispose()
            db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    body = "\n".join([
        "## Admin pages at scale (`bench/admin_pages.py`)",
        "",
        f"{machine().line()}; PostgreSQL {postgres_version()}. {args.reports:,} reports, "
        f"{args.members:,} members (filled with set-based SQL in {fmt(fill_seconds, 0)} s). "
        f"Median of {ROUNDS} renders through the app (sign-in, scope, audit row, template); "
        f"baseline: the raw SQL sum over all reports of the year, {fmt(base * 1000, 0)} ms. "
        "The dashboard holds the seven indicators' progress per area, participants, "
        "completeness of every team for each deadline's current period and the latest "
        "reports.",
        "",
        table(["reader", "page", "ms", "× raw SQL", "< 1 s"], rows),
    ])
    replace_section("admin-pages", body)


if __name__ == "__main__":
    main()
