"""Retention with a controlled clock: drafts warned then deleted, old words pruned, reports kept."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import app_fixtures
import pytest
from chat_helpers import WebChatUser, png_bytes
from sqlalchemy import func, select

from bot.app import db_of
from bot.config import ConfigError, load_config
from bot.retention import run_retention
from messages_vi import _, render
from storage.members import create_invite, ensure_village_team
from storage.models import ConversationState, InboundEvent, Media, Outbox, Report, utcnow
from storage.search import area_id_by_code

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


app, config = app_fixtures.app, app_fixtures.config  # the module-app fixtures


def member_with_draft(app) -> WebChatUser:
    with db_of(app).transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session,
                                                            "nt.bac-ai.phuoc-dai.ta-lu-1"))
        code, _team = create_invite(session, team.code, role="member", days=30, max_uses=5,
                                    actor="test", now=utcnow())
    user = WebChatUser(app)
    user.send("xin chào")
    user.press(vi("Agree"))
    user.send(code)
    user.send("Pinăng Thị Hoa")
    user.press(vi("Report an activity"))
    for value in ("truyen thong", "hom nay", "ta lu 1", "30", "20", "10", "0", "tao hon"):
        user.send(value)
    user.photos(png_bytes(seed=3))
    return user


def at_local(days: float, hour: int = 10) -> datetime:
    base = datetime.combine(utcnow().astimezone(TZ).date(), datetime.min.time(), tzinfo=TZ)
    return base + timedelta(days=days, hours=hour)


def draft_state(app) -> ConversationState:
    with db_of(app).sessions() as session:
        return session.scalars(select(ConversationState)).one()


def outbox_texts(app) -> list[str]:
    with db_of(app).sessions() as session:
        return [p.get("text", "") for p in session.scalars(select(Outbox.payload)
                                                             .order_by(Outbox.id))]


def test_a_draft_is_warned_once_then_deleted_with_its_photos(app, config):
    member_with_draft(app)
    db = db_of(app)
    assert run_retention(config, db, at_local(10))[0] == 0  # too early to warn
    warned, _pruned = run_retention(config, db, at_local(28))
    assert warned == 1
    assert vi("Your unfinished report will be deleted on {date}. Continue it now?",
              date=(draft_state(app).updated_at + timedelta(days=30)).astimezone(TZ).date()
              ) in outbox_texts(app)[-1]
    assert run_retention(config, db, at_local(28.5))[0] == 0  # once
    assert run_retention(config, db, at_local(28, hour=23))[0] == 0  # never in quiet hours
    _warned, pruned = run_retention(config, db, at_local(31))
    assert pruned.drafts == 1 and pruned.photos == 1
    state = draft_state(app)
    assert (state.flow, state.draft) == ("", {})
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Media)) == 0
    assert list(config.media_path.rglob("*.png")) == []


def test_old_event_keys_and_words_go_while_reports_and_counts_stay(app, config):
    user = member_with_draft(app)
    user.press(vi("Done"))
    user.press(vi("No notes"))
    user.press(vi("Send"))
    db = db_of(app)
    _warned, pruned = run_retention(config, db, at_local(91))
    assert pruned.inbound_events > 0 and pruned.payloads > 0
    assert set(outbox_texts(app)) == {""}
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 0
        assert session.scalar(select(Report.total)) == 30
        assert session.scalar(select(func.count()).select_from(Media)) == 1  # kept with report
    assert run_retention(config, db, at_local(92))[1].payloads == 0  # nothing left to prune


def test_retention_settings_are_checked(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "DUAN8_ENV_FILE": str(tmp_path / "x")}
    assert load_config({**env, "RETENTION_DRAFT_DAYS": "7"},
                       instance_path=tmp_path).retention.draft_days == 7
    for name, value in (("RETENTION_DRAFT_DAYS", "0"), ("RETENTION_PAYLOAD_DAYS", "soon"),
                        ("RETENTION_WARN_DAYS", "40")):
        with pytest.raises(ConfigError, match=name):
            load_config({**env, name: value}, instance_path=tmp_path)


def test_the_scheduler_leader_runs_retention_and_others_do_not(app, config):
    from bot.reminders import Clock
    from bot.scheduler import ReminderScheduler

    member_with_draft(app)
    db = db_of(app)
    clock = Clock(config.tz, config.quiet_hours, config.reminder_time)
    leader = ReminderScheduler(db, clock, config=config)
    try:
        pruned = leader.retention(at_local(31))
        assert pruned is not None and pruned.drafts == 1
        if not config.is_sqlite:  # on PostgreSQL a second worker finds the lease taken
            other = ReminderScheduler(db, clock, config=config)
            assert other.retention(at_local(32)) is None
            other.lease.release()
    finally:
        leader.lease.release()
