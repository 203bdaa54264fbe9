"""Deadlines, completeness and reminders with a controlled clock, on the real database."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot import reminders as engine
from bot.config import DEFAULT_PLAN
from bot.quiet_hours import QuietHours
from bot.reminders import Clock, run_due
from handlers import deadline_chat
from handlers.flow import Ctx
from handlers.types import State
from storage import conversation, outbox
from storage.completeness import PeriodDue, team_completeness
from storage.db import Database
from storage.deadlines import load_rules, occurrences, period_of
from storage.models import ActivityType, Area, Identity, Member, Outbox, Report, Team, TeamKind
from storage.models_deadlines import ReminderLedger
from storage.plan_file import read_plan_file
from storage.plans import load_plan
from storage.reminders import create_officer_invite, use_officer_invite

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CLOCK = Clock(TZ, QuietHours.parse("21:00-06:30"), "08:00")
VILLAGES = ("nt.bac-ai.phuoc-dai.ta-lu-1", "nt.bac-ai.phuoc-dai.ta-lu-2",
            "nt.bac-ai.phuoc-thanh.da-ba-cai")


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)


def make_team(db: Database, village: str, members: int = 2) -> tuple[int, list[int]]:
    """A communication team in a village with members who each have a web chat."""
    with db.transaction() as s:
        area = s.scalar(select(Area).where(Area.code == village))
        kind = s.scalar(select(TeamKind).where(TeamKind.code == "communication"))
        assert area is not None and kind is not None
        team = Team(code=f"t-{village}", name=f"Tổ {area.name}", name_folded=area.name_folded,
                    kind_id=kind.id, area_id=area.id)
        s.add(team)
        s.flush()
        ids = []
        for i in range(members):
            m = Member(display_name=f"{area.name} {i}", role="leader" if i == 0 else "member",
                       team_id=team.id)
            s.add(m)
            s.flush()
            s.add(Identity(channel="webchat", external_id=f"{village}-{i}", member_id=m.id,
                           consent="given"))
            ids.append(m.id)
        return team.id, ids


def report(db: Database, team_id: int, member_id: int, day: date, at: datetime) -> None:
    with db.transaction() as s:
        type_id = s.execute(select(func.min(ActivityType.id))).scalar_one()
        s.add(Report(number=f"BC-{member_id}-{day}", member_id=member_id, team_id=team_id,
                     activity_type_id=type_id, activity_date=day, total=10, created_at=at))


def reminders_to(db: Database, member_id: int) -> list[str]:
    with db.sessions() as s:
        rows = s.execute(select(Outbox.payload).join(Identity, Identity.id == Outbox.identity_id)
                         .where(Identity.member_id == member_id).order_by(Outbox.id))
        return [p["text"] for (p,) in rows if p.get("purpose") == "reminder"]


def run_through(db: Database, start: datetime, end: datetime, step: timedelta,
                clock: Clock = CLOCK) -> int:
    queued, now = 0, start
    while now <= end:
        queued += run_due(db, clock, now).queued
        now += step
    return queued


@pytest.mark.heavy
def test_a_year_reminds_only_teams_that_have_not_reported(plan_db: Database) -> None:
    _quiet, (q1, q2) = make_team(plan_db, VILLAGES[0])
    busy, (b1, b2) = make_team(plan_db, VILLAGES[1])
    report(plan_db, busy, b1, date(2024, 11, 3), datetime(2024, 11, 3, tzinfo=UTC))
    report(plan_db, busy, b2, date(2025, 2, 1), datetime(2025, 2, 1, tzinfo=UTC))
    run_through(plan_db, local("2025-01-01 00:00"), local("2025-12-31 23:00"),
                timedelta(hours=6))
    for member in (b1, b2):
        assert reminders_to(plan_db, member) == []
    for member in (q1, q2):
        texts = reminders_to(plan_db, member)
        # 25/01 (the 2024 update) and 10/09 (the 2025 report), each at 14, 3 and 1 days.
        assert len(texts) == 6
        assert sum("25/01/2025" in t and "2024" in t for t in texts) == 3
        assert sum("10/09/2025" in t for t in texts) == 3
        assert all("01/01/2025" in t or "01/01/2024" in t for t in texts)


def test_a_report_between_offsets_stops_further_reminders(plan_db: Database) -> None:
    team, (m1, _m2) = make_team(plan_db, VILLAGES[0])
    run_through(plan_db, local("2025-08-20 00:00"), local("2025-08-28 00:00"), timedelta(hours=6))
    assert len(reminders_to(plan_db, m1)) == 1  # 27/08, 14 days before
    report(plan_db, team, m1, date(2025, 8, 30), datetime(2025, 8, 30, tzinfo=UTC))
    run_through(plan_db, local("2025-08-28 00:00"), local("2025-09-12 00:00"), timedelta(hours=6))
    assert len(reminders_to(plan_db, m1)) == 1


def _ctx(db_session: object, member_id: int, now: datetime) -> Ctx:
    identity_id = db_session.scalar(  # type: ignore[attr-defined]
        select(Identity.id).where(Identity.member_id == member_id))
    return Ctx(session=db_session, identity=conversation.identity_view(db_session, identity_id),  # type: ignore[arg-type]
               state=State(), now=now, today=now.astimezone(TZ).date())


def _button(db: Database, member_id: int, label: str) -> str:
    with db.sessions() as s:
        payload = s.execute(select(Outbox.payload).join(Identity, Identity.id == Outbox.identity_id)
                            .where(Identity.member_id == member_id).order_by(Outbox.id.desc())
                            ).scalars().first()
    assert payload is not None
    return next(b["payload"] for b in payload["buttons"] if b["label"] == label)


def press(db: Database, member_id: int, label: str, now: datetime) -> str:
    from bot.dispatcher import render_reply

    payload = _button(db, member_id, label)
    with db.transaction() as s:
        ctx = _ctx(s, member_id, now)
        assert deadline_chat.route(ctx, payload[4:], {"report": lambda c: c.say("REPORT")})
        return "\n".join(render_reply(r, "vi")["text"] for r in ctx.replies)


def test_no_activity_button_records_a_nil_report_and_stops_reminders(plan_db: Database) -> None:
    team, (m1, m2) = make_team(plan_db, VILLAGES[0])
    run_due(plan_db, CLOCK, local("2025-08-27 08:00"))
    assert _button(plan_db, m2, "Không có hoạt động").startswith("cmd:rem:nil:")
    said = press(plan_db, m2, "Không có hoạt động", local("2025-08-28 10:00"))
    assert "không có hoạt động" in said.lower()
    run_through(plan_db, local("2025-08-28 00:00"), local("2025-09-12 00:00"), timedelta(hours=6))
    assert len(reminders_to(plan_db, m1)) == 1
    with plan_db.sessions() as s:
        rule = next(r for r in load_rules(s) if r.code == "annual_report")
        (o,) = occurrences([rule], date(2025, 9, 10), date(2025, 9, 10))
        (row,) = team_completeness(s, [deadline_chat.due_of(o)], team_ids=[team])
    assert row.nil and row.reported and row.reports == 0


def test_report_now_starts_the_report(plan_db: Database) -> None:
    _team, (m1, _m2) = make_team(plan_db, VILLAGES[0])
    run_due(plan_db, CLOCK, local("2025-08-27 08:00"))
    assert press(plan_db, m1, "Báo cáo ngay", local("2025-08-27 09:00")) == "REPORT"


def test_snooze_works_once(plan_db: Database) -> None:
    _team, (m1, _m2) = make_team(plan_db, VILLAGES[0])
    run_due(plan_db, CLOCK, local("2025-08-27 08:00"))
    first = _button(plan_db, m1, "Nhắc lại sau")
    assert "ngày mai" in press(plan_db, m1, "Nhắc lại sau", local("2025-08-27 09:00"))
    with plan_db.transaction() as s:  # the same old button pressed again
        ctx = _ctx(s, m1, local("2025-08-27 09:05"))
        deadline_chat.route(ctx, first[4:], {})
        assert "một lần" in render_reply_text(ctx)
    assert len(reminders_to(plan_db, m1)) == 1
    run_due(plan_db, CLOCK, local("2025-08-28 08:00"))  # not yet a day after the press
    assert len(reminders_to(plan_db, m1)) == 1
    run_due(plan_db, CLOCK, local("2025-08-28 09:01"))
    texts = reminders_to(plan_db, m1)
    assert len(texts) == 2 and "10/09/2025" in texts[1]
    run_due(plan_db, CLOCK, local("2025-08-29 09:01"))
    assert len(reminders_to(plan_db, m1)) == 2
    assert "Nhắc lại sau" not in str(_last_payload(plan_db, m1)["buttons"])


def render_reply_text(ctx: Ctx) -> str:
    from bot.dispatcher import render_reply

    return "\n".join(render_reply(r, "vi")["text"] for r in ctx.replies)


def _last_payload(db: Database, member_id: int) -> Any:
    with db.sessions() as s:
        return s.execute(select(Outbox.payload).join(Identity, Identity.id == Outbox.identity_id)
                         .where(Identity.member_id == member_id).order_by(Outbox.id.desc())
                         ).scalars().first()


def test_quiet_hours_are_respected(plan_db: Database) -> None:
    _team, (m1, _m2) = make_team(plan_db, VILLAGES[0])
    late = replace(CLOCK, remind_at="22:00")  # inside 21:00-06:30: moved to 06:30
    assert run_due(plan_db, late, local("2025-08-27 22:00")).reminders == 0
    assert run_due(plan_db, late, local("2025-08-28 05:00")).reminders == 0
    assert run_due(plan_db, late, local("2025-08-28 06:30")).reminders == 2
    assert len(reminders_to(plan_db, m1)) == 1


@pytest.mark.parametrize(("first_tick", "expected"), [
    ("2025-09-08 10:00", ["3"]),  # down across 14 and 3 days before: the latest one, once
    ("2025-09-10 00:30", []),  # down until the deadline: nothing stale
    ("2025-09-11 08:00", []),
])
def test_downtime_across_an_offset(plan_db: Database, first_tick: str,
                                   expected: list[str]) -> None:
    _team, (m1, _m2) = make_team(plan_db, VILLAGES[0])
    run_through(plan_db, local(first_tick), local(first_tick) + timedelta(hours=2),
                timedelta(minutes=30))
    with plan_db.sessions() as s:
        offsets = s.scalars(select(ReminderLedger.offset_days).where(
            ReminderLedger.member_id == m1, ReminderLedger.kind == "reminder")).all()
    assert [str(o) for o in offsets] == expected
    assert len(reminders_to(plan_db, m1)) == len(expected)


def test_a_crash_mid_run_loses_nothing_and_repeats_nothing(plan_db: Database,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    members = [m for v in VILLAGES for m in make_team(plan_db, v, 3)[1]]
    calls = {"n": 0}
    real = outbox.enqueue

    def dying(*args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] == 4:
            raise SystemExit("killed")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.outbox, "enqueue", dying)
    with pytest.raises(SystemExit):
        run_due(plan_db, CLOCK, local("2025-08-27 08:00"))
    monkeypatch.setattr(engine.outbox, "enqueue", real)
    assert sum(len(reminders_to(plan_db, m)) for m in members) == 0
    run_through(plan_db, local("2025-08-27 08:00"), local("2025-08-27 12:00"),
                timedelta(minutes=15))
    assert [len(reminders_to(plan_db, m)) for m in members] == [1] * len(members)


def test_two_workers_at_once_send_each_reminder_once(plan_db: Database) -> None:
    members = [m for v in VILLAGES for m in make_team(plan_db, v, 4)[1]]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        other = Database(plan_db.url)
        try:
            barrier.wait()
            for minute in range(0, 20, 5):
                run_due(other, CLOCK, local("2025-08-27 08:00") + timedelta(minutes=minute))
        except BaseException as exc:
            errors.append(exc)
        finally:
            other.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [len(reminders_to(plan_db, m)) for m in members] == [1] * len(members)


def test_a_report_at_2330_local_on_9_september_counts_for_10_september(
        plan_db: Database) -> None:
    team, (m1, _m2) = make_team(plan_db, VILLAGES[0])
    at = local("2025-09-09 23:30")
    report(plan_db, team, m1, at.date(), at.astimezone(UTC))  # 16:30 UTC
    with plan_db.transaction() as s:
        code, _name = create_officer_invite(s, "nt.bac-ai.phuoc-dai", "officer_commune",
                                            actor="test", now=at)
        ident = Identity(channel="webchat", external_id="officer", consent="given")
        s.add(ident)
        s.flush()
        assert use_officer_invite(s, code, ident.id, at).status == "ok"
    _other, _ = make_team(plan_db, VILLAGES[1], 1)
    assert run_due(plan_db, CLOCK, local("2025-09-10 08:00")).escalations == 1
    with plan_db.sessions() as s:
        (text,) = [p["text"] for p in s.scalars(select(Outbox.payload))
                   if p.get("purpose") == "escalation"]
    assert "Tổ Tà Lú 2" in text and "Tổ Tà Lú 1" not in text and "1" in text
    assert run_due(plan_db, CLOCK, local("2025-09-11 08:00")).escalations == 0  # weekly
    assert run_due(plan_db, CLOCK, local("2025-09-17 08:00")).escalations == 1


def test_province_digest_once_a_day(plan_db: Database) -> None:
    make_team(plan_db, VILLAGES[0])
    now = local("2025-09-11 07:00")
    with plan_db.transaction() as s:
        code, _ = create_officer_invite(s, "nt", "officer_province", actor="test", now=now)
        ident = Identity(channel="webchat", external_id="admin", consent="given")
        s.add(ident)
        s.flush()
        use_officer_invite(s, code, ident.id, now)
    assert run_due(plan_db, CLOCK, now).digests == 0  # before 08:00
    assert run_due(plan_db, CLOCK, local("2025-09-11 08:00")).digests == 1
    assert run_due(plan_db, CLOCK, local("2025-09-11 15:00")).digests == 0
    assert run_due(plan_db, CLOCK, local("2025-09-12 08:00")).digests == 1
    with plan_db.sessions() as s:
        texts = [p["text"] for p in s.scalars(select(Outbox.payload))
                 if p.get("purpose") == "digest"]
    assert "0/1" in texts[0].replace(" trên ", "/") or "0 trên 1" in texts[0]


def test_a_next_phase_plan_takes_over_and_nothing_outside_a_phase(plan_db: Database) -> None:
    with plan_db.sessions() as s:
        rules = load_rules(s)
        assert occurrences(rules, date(2026, 1, 1), date(2027, 12, 31)) == []
    spec = read_plan_file(DEFAULT_PLAN)
    nxt = replace(spec, code="ninh-thuan-2025-2030", phase_start=date(2025, 7, 1),
                  phase_end=date(2030, 12, 31), sha256="next")
    with plan_db.transaction() as s:
        load_plan(s, nxt)
    with plan_db.sessions() as s:
        rules = load_rules(s)
        found = occurrences(rules, date(2025, 1, 1), date(2026, 12, 31))
        plans = {r.id: r.phase_start for r in rules}
    by_due = {(o.due, o.rule.code): plans[o.rule.id] for o in found}
    assert by_due[(date(2025, 1, 25), "previous_year_update")] == date(2022, 1, 1)
    assert by_due[(date(2025, 9, 10), "annual_report")] == date(2025, 7, 1)
    assert (date(2026, 1, 25), "previous_year_update") in by_due
    assert len(found) == 4


@given(st.dates(date(2000, 1, 1), date(2100, 12, 31)), st.sampled_from(["year", "quarter",
                                                                         "month"]))
def test_periods_contain_their_day_and_the_previous_one_ends_before(day: date,
                                                                     unit: str) -> None:
    period = period_of(unit, day)
    before = period_of(unit, day, -1)
    assert period.start <= day <= period.end
    assert before.end == period.start - timedelta(days=1)
    assert period_of(unit, period.end) == period == period_of(unit, period.start)


def test_admin_monthly_deadline_for_leaders_in_one_district(plan_db: Database) -> None:
    from storage.deadlines import NewDeadline, add_deadline

    _t1, (lead1, mem1) = make_team(plan_db, VILLAGES[0])
    _t2, (lead2, _mem2) = make_team(plan_db, VILLAGES[1])
    with plan_db.transaction() as s:
        add_deadline(s, NewDeadline(code="monthly", name="Báo cáo tháng", recurrence="monthly",
                                    day=25, roles=("leader",), area_codes=("nt.bac-ai",),
                                    offsets=(2,)),
                     plan_code=None, today=date(2025, 3, 1))
    run_through(plan_db, local("2025-03-20 08:00"), local("2025-03-24 08:00"), timedelta(days=1))
    assert len(reminders_to(plan_db, lead1)) == 1 and "03/2025" in reminders_to(plan_db, lead1)[0]
    assert reminders_to(plan_db, mem1) == []
    assert len(reminders_to(plan_db, lead2)) == 1


def test_team_view_pages_and_counts_last_month_when_this_one_has_just_begun(
        plan_db: Database) -> None:
    from bot.dispatcher import render_reply

    team, members = make_team(plan_db, VILLAGES[0], 11)
    report(plan_db, team, members[3], date(2025, 9, 28), datetime(2025, 9, 28, tzinfo=UTC))
    with plan_db.transaction() as s:
        ctx = _ctx(s, members[0], local("2025-10-02 10:00"))
        deadline_chat.show_team(ctx)
        (reply,) = ctx.replies
        text = render_reply(reply, "vi")["text"]
        assert "từ 01/09/2025 đến 02/10/2025" in text and "trang 1/2" in text.lower()
        assert "1 báo cáo" in text
        assert [b.payload for b in reply.buttons] == ["cmd:team:2", "cmd:menu"]
        ctx.replies.clear()
        deadline_chat.route(ctx, "team:2", {})
        assert [b.payload for b in ctx.replies[0].buttons] == ["cmd:team:1", "cmd:menu"]
        ctx2 = _ctx(s, members[0], local("2025-10-20 10:00"))
        deadline_chat.show_team(ctx2)
        later = render_reply(ctx2.replies[0], "vi")["text"]
        assert "từ 01/10/2025 đến 20/10/2025" in later and "1 báo cáo" not in later


def test_completeness_is_one_query(plan_db: Database) -> None:
    from sqlalchemy import event

    teams = [make_team(plan_db, v, 1)[0] for v in VILLAGES]
    report(plan_db, teams[0], 1, date(2025, 5, 1), datetime(2025, 5, 1, tzinfo=UTC))
    dues = [PeriodDue(1, "2025", date(2025, 1, 1), date(2025, 12, 31)),
            PeriodDue(2, "2024", date(2024, 1, 1), date(2024, 12, 31))]
    statements: list[str] = []
    event.listen(plan_db.engine, "before_cursor_execute",
                 lambda *a: statements.append(a[2]))
    with plan_db.sessions() as s:
        rows = team_completeness(s, dues)
    assert len([q for q in statements if "SELECT" in q]) == 1
    assert sorted((r.deadline_id, r.team_id, r.reported) for r in rows) == sorted(
        [(1, teams[0], True), (1, teams[1], False), (1, teams[2], False),
         (2, teams[0], False), (2, teams[1], False), (2, teams[2], False)])


def test_cli_preview_json(plan_db: Database, config: object, monkeypatch: pytest.MonkeyPatch,
                          db_url: str, tmp_path: object) -> None:
    from bot.cli import cli

    make_team(plan_db, VILLAGES[0])
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("DUAN8_ENV_FILE", str(tmp_path) + "/absent.env")
    result = CliRunner().invoke(cli, ["reminders", "preview", "--at", "2025-09-03 08:00",
                                      "--json"], catch_exceptions=False)
    rows = json.loads(result.output[result.output.index("["):])
    assert {(r["deadline"], r["period"], r["team"], r["channel"]) for r in rows} == {
        ("annual_report", "2025", "Tổ Tà Lú 1", "webchat")}
    assert len(rows) == 2 and all(r["member"] for r in rows)
    with plan_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ReminderLedger)) == 0
        assert s.scalar(select(func.count()).select_from(Outbox)) == 0


def test_only_the_scheduler_leader_runs_and_the_job_catches_up_at_start(
        plan_db: Database) -> None:
    from bot.scheduler import JOB_DEFAULTS, ReminderScheduler

    _team, (m1, _m2) = make_team(plan_db, VILLAGES[0])
    first, second = ReminderScheduler(plan_db, CLOCK), ReminderScheduler(plan_db, CLOCK)
    try:
        assert first.tick(local("2025-08-27 08:00")) is not None
        assert second.tick(local("2025-08-27 08:01")) is None  # another worker leads
        assert len(reminders_to(plan_db, m1)) == 1
        first.lease.release()
        assert second.tick(local("2025-09-07 09:00")) is not None  # it takes over
        assert len(reminders_to(plan_db, m1)) == 2
    finally:
        first.stop()
        second.stop()
    # A run missed while down is run however late, once: the ledger decides what is owed.
    assert JOB_DEFAULTS == {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}


def test_the_scheduler_runs_its_job_at_start(plan_db: Database) -> None:
    from bot.scheduler import ReminderScheduler

    ran = threading.Event()
    scheduler = ReminderScheduler(plan_db, CLOCK, tick_seconds=3600)
    scheduler.tick = lambda now=None: ran.set()  # type: ignore[method-assign]
    scheduler.start()
    try:
        assert ran.wait(10)
    finally:
        scheduler.stop()


KILLED_WORKER = """
import sys, time
from datetime import datetime
from zoneinfo import ZoneInfo
from bot import reminders as engine
from bot.quiet_hours import QuietHours
from storage.db import Database
real = engine.outbox.enqueue
count = [0]
def slow(*a, **k):
    count[0] += 1
    if count[0] == 3:
        print("mid-run", flush=True)
        time.sleep(60)
    return real(*a, **k)
engine.outbox.enqueue = slow
tz = ZoneInfo("Asia/Ho_Chi_Minh")
engine.run_due(Database(sys.argv[1]), engine.Clock(tz, QuietHours.parse("off")),
               datetime(2025, 8, 27, 8, 0, tzinfo=tz))
"""


def test_a_worker_killed_mid_run_and_restarted_loses_and_repeats_nothing(
        plan_db: Database) -> None:
    import os
    import signal
    import subprocess
    import sys

    members = [m for v in VILLAGES for m in make_team(plan_db, v, 2)[1]]
    child = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, plan_db.url],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "mid-run"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    assert sum(len(reminders_to(plan_db, m)) for m in members) == 0
    run_due(plan_db, CLOCK, local("2025-08-27 08:00"))
    run_due(plan_db, CLOCK, local("2025-08-27 08:01"))
    assert [len(reminders_to(plan_db, m)) for m in members] == [1] * len(members)


@pytest.mark.parametrize("value", ["8", "24:00", "08:60", "eight"])
def test_a_bad_reminder_time_is_refused_naming_the_variable(value: str, tmp_path: Any) -> None:
    from bot.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="REMINDER_TIME"):
        load_config({"REMINDER_TIME": value, "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
                    instance_path=tmp_path)
    good = load_config({"REMINDER_TIME": "07:30", "DUAN8_ENV_FILE": str(tmp_path / "absent")},
                       instance_path=tmp_path)
    assert good.reminder_time == "07:30"
