"""Content items, audiences, fan-out, pause/resume/cancel and status, on both databases."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from broadcast_helpers import DA_MAI_TREN, TA_LU_1, add_members, team_in
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.broadcaster import Broadcaster, BroadcasterSettings
from bot.cli import cli
from bot.config import load_config
from storage import broadcasts, outbox, proactive
from storage import content as library
from storage.broadcasts import Audience
from storage.db import Database
from storage.models import Identity, Member, Outbox, Team, utcnow
from storage.models_content import ContentAck

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def make_item(db: Database, **extra) -> int:
    with db.transaction() as session:
        return library.add_item(session, title="Phòng chống tảo hôn",
                                text="Tảo hôn gây hại cho sức khỏe của trẻ em gái.",
                                topic_code="harmful_customs", **extra)


def config_for(db: Database, tmp_path: Path, quiet: str = "off"):
    return load_config({"DATABASE_URL": db.url, "DUAN8_ENV_FILE": str(tmp_path / "none"),
                        "QUIET_HOURS": quiet}, instance_path=tmp_path / "instance")


def fan_out(db: Database, tmp_path: Path, *, batch: int = 3, quiet: str = "off") -> None:
    broadcaster = Broadcaster(config_for(db, tmp_path, quiet), db,
                              settings=BroadcasterSettings(batch=batch))
    while broadcaster.step():
        pass


def rows_of(db: Database, broadcast_id: int) -> list[Outbox]:
    with db.sessions() as session:
        return list(session.scalars(select(Outbox).where(Outbox.broadcast_id == broadcast_id)))


def test_an_edit_after_sending_does_not_rewrite_what_was_sent(plan_db, tmp_path):
    add_members(plan_db, team_in(plan_db, TA_LU_1), 2)
    item = make_item(plan_db)
    with plan_db.transaction() as session:
        sent = broadcasts.create_broadcast(session, item, Audience())
    fan_out(plan_db, tmp_path)
    with plan_db.transaction() as session:
        assert library.edit_item(session, item, text="Nội dung đã sửa.") == 2
    with plan_db.sessions() as session:
        assert library.get_item(session, item).text == "Nội dung đã sửa."
        assert library.get_item(session, item, version=1).text.startswith("Tảo hôn")
        status = broadcasts.broadcast_status(session, sent)
    assert status.title == "Phòng chống tảo hôn"
    for row in rows_of(plan_db, sent):
        assert "Tảo hôn gây hại" in row.payload["text"]
        assert [b["label"] for b in row.payload["buttons"]] == ["Đã nhận"]


def test_unknown_topic_and_empty_text_are_refused(plan_db):
    with plan_db.transaction() as session, pytest.raises(library.ContentError, match="topic"):
        library.add_item(session, title="x", text="y", topic_code="nope")
    with plan_db.transaction() as session, pytest.raises(library.ContentError):
        library.add_item(session, title=" ", text="y")


def test_fan_out_writes_one_row_per_member_in_batches_and_never_twice(plan_db, tmp_path):
    team = team_in(plan_db, TA_LU_1)
    members = add_members(plan_db, team, 10)
    add_members(plan_db, team, 2, channel="facebook", start=100)
    item = make_item(plan_db)
    with plan_db.transaction() as session:
        bid = broadcasts.create_broadcast(session, item, Audience())
        counted = broadcasts.count_audience(session, Audience())
    assert counted.total == 12 and counted.by_channel == {"facebook": 2, "telegram": 10}
    fan_out(plan_db, tmp_path, batch=4)
    first = rows_of(plan_db, bid)
    assert len(first) == 12 and all(r.priority == 10 and r.kind == "broadcast" for r in first)
    # A worker that died after writing rows but before keeping its place: the work is redone
    # from the start, and the unique key keeps every member at one row.
    with plan_db.transaction() as session:
        row = session.get_one(broadcasts.Broadcast, bid)
        row.status, row.cursor, row.queued_total = "fanning_out", 0, 0
    fan_out(plan_db, tmp_path, batch=4)
    again = rows_of(plan_db, bid)
    assert len(again) == 12
    assert {r.dedupe_key for r in again} >= {f"b:{bid}:{m}" for m in members}
    with plan_db.sessions() as session:
        status = broadcasts.broadcast_status(session, bid)
    assert status.counts()["queued"] == 12 and status.audience_total == 12


def test_a_member_without_a_usable_channel_is_counted_unreachable(plan_db, tmp_path):
    team = team_in(plan_db, TA_LU_1)
    add_members(plan_db, team, 3)
    blocked = add_members(plan_db, team, 1, start=50)
    with plan_db.transaction() as session:
        session.execute(Identity.__table__.update().where(Identity.member_id == blocked[0])
                        .values(unreachable_reason="blocked"))
        bid = broadcasts.create_broadcast(session, make_item_in(session), Audience())
    fan_out(plan_db, tmp_path)
    with plan_db.sessions() as session:
        counts = broadcasts.broadcast_status(session, bid).counts()
    assert counts["audience"] == 4 and counts["queued"] == 3 and counts["unreachable"] == 1


def make_item_in(session) -> int:
    return library.add_item(session, title="Bình đẳng giới", text="Nam nữ bình đẳng.",
                            use_in_village=True)


def test_the_preferred_channel_is_the_one_the_member_wrote_on_last(plan_db, tmp_path):
    (member,) = add_members(plan_db, team_in(plan_db, TA_LU_1), 1, channel="facebook",
                            age=timedelta(days=3))
    with plan_db.transaction() as session:
        session.add(Identity(channel="zalo", external_id="z1", member_id=member,
                             consent="given", last_inbound_at=utcnow() - timedelta(hours=2)))
        bid = broadcasts.create_broadcast(session, make_item_in(session), Audience())
    fan_out(plan_db, tmp_path)
    assert [r.channel for r in rows_of(plan_db, bid)] == ["zalo"]


def test_pause_holds_rows_resume_releases_them_cancel_stops_them(plan_db, tmp_path):
    add_members(plan_db, team_in(plan_db, TA_LU_1), 5)
    with plan_db.transaction() as session:
        bid = broadcasts.create_broadcast(session, make_item_in(session), Audience())
    fan_out(plan_db, tmp_path)
    with plan_db.transaction() as session:
        broadcasts.pause(session, bid)
    assert Counter(r.status for r in rows_of(plan_db, bid)) == {"paused": 5}
    with plan_db.transaction() as session:
        broadcasts.resume(session, bid, now=utcnow())
    assert Counter(r.status for r in rows_of(plan_db, bid)) == {"pending": 5}
    with plan_db.transaction() as session:
        sent = rows_of(plan_db, bid)[0].id
        session.get_one(Outbox, sent).status = "sent"
    with plan_db.transaction() as session:
        assert broadcasts.cancel(session, bid, now=utcnow()) == 4
        status = broadcasts.broadcast_status(session, bid)
    assert Counter(r.status for r in rows_of(plan_db, bid)) == {"cancelled": 4, "sent": 1}
    assert status.state == "cancelled" and status.sent == 1 and status.queued == 0


def test_a_paused_fan_out_stops_and_resumes_where_it_was(plan_db, tmp_path):
    add_members(plan_db, team_in(plan_db, TA_LU_1), 7)
    with plan_db.transaction() as session:
        bid = broadcasts.create_broadcast(session, make_item_in(session), Audience())
    config = config_for(plan_db, tmp_path)
    broadcaster = Broadcaster(config, plan_db, settings=BroadcasterSettings(batch=3))
    batches = 0

    def pause_after_first(members: int) -> None:
        nonlocal batches
        batches += 1
        if batches == 1:
            with plan_db.transaction() as session:
                broadcasts.pause(session, bid)

    assert broadcaster.step(progress=pause_after_first)
    assert len(rows_of(plan_db, bid)) == 3 and not broadcaster.step()
    with plan_db.transaction() as session:
        broadcasts.resume(session, bid, now=utcnow())
    while broadcaster.step():
        pass
    assert Counter(r.status for r in rows_of(plan_db, bid)) == {"pending": 7}


def test_quiet_hours_move_the_rows_to_the_end_of_the_window(plan_db, tmp_path):
    add_members(plan_db, team_in(plan_db, TA_LU_1), 2)
    late = datetime(2026, 12, 1, 22, 15, tzinfo=VN)
    with plan_db.transaction() as session:
        bid = broadcasts.create_broadcast(session, make_item_in(session), Audience(),
                                          send_at=late - timedelta(minutes=5))
    broadcaster = Broadcaster(config_for(plan_db, tmp_path, "21:00-06:30"), plan_db)
    import bot.broadcaster as module

    original = module.utcnow
    module.utcnow = lambda: late  # type: ignore[assignment]
    try:
        assert broadcaster.step()
    finally:
        module.utcnow = original  # type: ignore[assignment]
    expected = datetime(2026, 12, 2, 6, 30, tzinfo=VN)
    assert {r.next_attempt_at for r in rows_of(plan_db, bid)} == {expected}


def test_a_broadcast_at_a_later_time_waits_for_it(plan_db, tmp_path):
    add_members(plan_db, team_in(plan_db, TA_LU_1), 2)
    with plan_db.transaction() as session:
        bid = broadcasts.create_broadcast(session, make_item_in(session), Audience(),
                                          send_at=utcnow() + timedelta(hours=1))
    fan_out(plan_db, tmp_path)
    assert rows_of(plan_db, bid) == []


# --- audiences, against the same filter written in Python -----------------------------------

@pytest.fixture(scope="module")
def audience_db(shared_plan_db: Database) -> Database:
    db = shared_plan_db
    with db.sessions() as session:
        if session.scalar(select(func.count()).select_from(Member)):
            return db
    ta_lu, da_mai = team_in(db, TA_LU_1), team_in(db, DA_MAI_TREN)
    add_members(db, ta_lu, 3)
    add_members(db, ta_lu, 1, role="leader", start=10)
    add_members(db, da_mai, 2, channel="zalo", start=20)
    add_members(db, da_mai, 1, role="leader", channel="facebook", start=30)
    add_members(db, None, 1, start=40)  # joined no team yet
    with db.transaction() as session:
        item = library.add_item(session, title="t", text="x")
        first = session.scalar(select(Member.id).order_by(Member.id))
        session.add(ContentAck(item_id=item, member_id=first, kind="received"))
    return db


AREAS = ["nt", "nt.bac-ai", "nt.thuan-bac", TA_LU_1, DA_MAI_TREN]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(areas=st.lists(st.sampled_from(AREAS), max_size=2, unique=True),
       roles=st.lists(st.sampled_from(["member", "leader"]), max_size=2, unique=True),
       kinds=st.lists(st.sampled_from(["communication", "tkvvtb"]), max_size=2, unique=True),
       not_ack=st.booleans())
def test_an_audience_is_exactly_the_members_its_filters_describe(audience_db, areas, roles,
                                                                 kinds, not_ack):
    db = audience_db
    with db.sessions() as session:
        item = session.scalar(select(library.ContentItem.id).limit(1))
        audience = Audience(tuple(areas), tuple(kinds), tuple(roles), (),
                            item if not_ack else None)
        counted = broadcasts.count_audience(session, audience)
        acked = set(session.scalars(select(ContentAck.member_id)))
        expected = 0
        for member, team in session.execute(select(Member, Team).outerjoin(
                Team, Team.id == Member.team_id)):
            code = broadcasts_area_code(session, team)
            ok = ((not areas or (code is not None and any(code == a or code.startswith(a + ".")
                                                          for a in areas)))
                  and (not roles or member.role in roles)
                  and (not kinds or (team is not None and team.code.split(".")[0] in kinds))
                  and not (not_ack and member.id in acked))
            expected += ok
    assert counted.total == expected
    assert sum(counted.by_channel.values()) + counted.no_channel == expected


def broadcasts_area_code(session, team: Team | None) -> str | None:
    if team is None:
        return None
    from storage.models import Area

    return session.get_one(Area, team.area_id).code


def test_unknown_codes_in_an_audience_are_refused(audience_db):
    with audience_db.sessions() as session:
        for audience in (Audience(areas=("nowhere",)), Audience(team_kinds=("choir",)),
                         Audience(teams=("none",))):
            with pytest.raises(broadcasts.BroadcastError):
                broadcasts.count_audience(session, audience)


# --- the command line ------------------------------------------------------------------------

def invoke(db: Database, tmp_path: Path, *args: str, input: str | None = None):
    env = {"DATABASE_URL": db.url, "DUAN8_ENV_FILE": str(tmp_path / "none"),
           "DUAN8_INSTANCE": str(tmp_path / "instance"), "QUIET_HOURS": "off"}
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def test_the_cli_adds_sends_and_reports_as_the_contract_says(plan_db, tmp_path):
    add_members(plan_db, team_in(plan_db, TA_LU_1), 3)
    add_members(plan_db, team_in(plan_db, DA_MAI_TREN), 2, channel="zalo", start=10)
    photo = tmp_path / "a.png"
    from chat_helpers import png_bytes

    photo.write_bytes(png_bytes())
    added = invoke(plan_db, tmp_path, "content", "add", "--title", "Nói không với bạo lực",
                   "--text", "Bạo lực gia đình là vi phạm pháp luật.", "--topic",
                   "domestic_violence", "--media", str(photo), "--use-in-village")
    assert added.exit_code == 0, added.output
    item = int(added.output.strip().splitlines()[-1])
    listed = invoke(plan_db, tmp_path, "content", "list")
    assert "Nói không với bạo lực" in listed.output
    shown = invoke(plan_db, tmp_path, "content", "show", str(item))
    assert "Bạo lực gia đình" in shown.output and "media:" in shown.output
    asked = invoke(plan_db, tmp_path, "broadcast", "send", "--content", str(item), "--area",
                   "nt.bac-ai", input="n\n")
    assert asked.exit_code == 1 and "3 members" in asked.output and "telegram: 3" in asked.output
    sent = invoke(plan_db, tmp_path, "broadcast", "send", "--content", str(item), "--yes")
    assert sent.exit_code == 0, sent.output
    bid = int(sent.output.strip().splitlines()[-1])
    fan_out(plan_db, tmp_path)
    status = json.loads(invoke(plan_db, tmp_path, "broadcast", "status", str(bid),
                               "--json").output)
    for key in ("audience", "queued", "sent", "failed", "outside_window", "held_quota",
                "unreachable", "acknowledged", "used"):
        assert isinstance(status[key], int)
    assert status["audience"] == 5 and status["queued"] == 5
    assert invoke(plan_db, tmp_path, "broadcast", "pause", str(bid)).exit_code == 0
    assert invoke(plan_db, tmp_path, "broadcast", "resume", str(bid)).exit_code == 0
    assert "5 messages not sent" in invoke(plan_db, tmp_path, "broadcast", "cancel",
                                           str(bid)).output
    assert f"{bid}  cancelled" in invoke(plan_db, tmp_path, "broadcast", "list").output
    late = invoke(plan_db, tmp_path, "broadcast", "send", "--content", str(item), "--at",
                  "31/12/2026", "--yes")
    assert late.exit_code == 2 and "YYYY-MM-DD HH:MM" in late.output


def test_zalo_proactive_messages_stop_at_the_monthly_quota_less_the_reminders_reserve(
        plan_db, tmp_path):
    team = team_in(plan_db, TA_LU_1)
    quiet = add_members(plan_db, team, 5, channel="zalo", age=timedelta(days=3))
    add_members(plan_db, team, 2, channel="zalo", start=10, age=timedelta(hours=2))
    add_members(plan_db, team, 2, channel="telegram", start=20, age=timedelta(days=30))
    with plan_db.transaction() as session:
        bid = broadcasts.create_broadcast(session, make_item_in(session), Audience())
    config = load_config({"DATABASE_URL": plan_db.url, "DUAN8_ENV_FILE": str(tmp_path / "x"),
                          "QUIET_HOURS": "off", "ZALO_PROACTIVE_QUOTA": "4",
                          "ZALO_PROACTIVE_RESERVE": "1"}, instance_path=tmp_path / "i")
    broadcaster = Broadcaster(config, plan_db, settings=BroadcasterSettings(batch=3))
    while broadcaster.step():
        pass
    rows = rows_of(plan_db, bid)
    assert Counter(r.status for r in rows) == {"pending": 7, "held_quota": 2}
    with plan_db.sessions() as session:
        held = {session.get_one(Identity, r.identity_id).member_id for r in rows
                if r.status == "held_quota"}
        status = broadcasts.broadcast_status(session, bid)
        month = utcnow().astimezone(config.tz).strftime("%Y-%m")
        usage = proactive.month_usage(session, "zalo", month)
    assert held <= set(quiet) and status.held_quota == 2
    assert usage.by_kind == {"broadcast": (3, 2)}
    # Reminders may still use the reserve; broadcasts may not.
    with plan_db.sessions() as session:
        assert proactive.room(session, "zalo", month, quota=4, reserve=1, kind="reminder") == 1
        assert proactive.room(session, "zalo", month, quota=4, reserve=1, kind="broadcast") == 0
    # A held member who writes gets the item as a free reply.
    member = sorted(held)[0]
    with plan_db.transaction() as session:
        identity = session.scalar(select(Identity.id).where(Identity.member_id == member))
        queued = outbox.catch_up(session, identity, {"text": "Trong lúc bạn vắng mặt:"},
                                 now=utcnow())
    assert len(queued) == 2
    copy = rows_of(plan_db, bid)
    assert Counter(r.status for r in copy)["held_quota"] == 1
    assert any(r.id == queued[1] and r.kind == "broadcast" for r in copy)
    out = invoke(plan_db, tmp_path, "broadcast", "quota")
    assert "3 of 1000 used" in out.output and "broadcast: 3 sent, 2 held" in out.output


@pytest.mark.parametrize("side", [900, 2400, 4000])
def test_photos_larger_than_zalo_accepts_are_made_smaller_on_upload(side):
    import io
    import os

    from PIL import Image

    from bot.content_media import MAX_IMAGE_BYTES, prepare_upload

    noise = Image.frombytes("RGB", (side, side // 2), os.urandom(side * (side // 2) * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    data = buffer.getvalue()
    assert len(data) > MAX_IMAGE_BYTES
    smaller, note = prepare_upload(data)
    assert len(smaller) <= MAX_IMAGE_BYTES and "made smaller" in note
    assert library.media_kind(smaller)[1] == "image/jpeg"
    assert prepare_upload(smaller) == (smaller, "")  # small enough: kept as it is


def test_media_of_the_wrong_type_is_refused(plan_db, tmp_path):
    with plan_db.transaction() as session, pytest.raises(library.ContentError, match="PDF"):
        library.store_content_media(session, tmp_path, b"MZ\x90\x00 not a document")
    with plan_db.transaction() as session:
        pdf = library.store_content_media(session, tmp_path, b"%PDF-1.4\n%\xe2\xe3\n")
        assert library.store_content_media(session, tmp_path, b"%PDF-1.4\n%\xe2\xe3\n") == pdf


def test_replies_are_claimed_before_broadcast_rows_queued_earlier(plan_db, tmp_path):
    add_members(plan_db, team_in(plan_db, TA_LU_1), 30)
    with plan_db.transaction() as session:
        broadcasts.create_broadcast(session, make_item_in(session), Audience())
    fan_out(plan_db, tmp_path, batch=50)
    with plan_db.transaction() as session:
        identity = session.scalar(select(Identity.id).limit(1))
        reply = outbox.enqueue(session, identity, "telegram", {"text": "trả lời"}, now=utcnow())
    with plan_db.transaction() as session:
        claimed = outbox.claim_due(session, ["telegram"], now=utcnow() + timedelta(seconds=1),
                                   limit=5, lease=timedelta(seconds=30))
    assert claimed[0].id == reply and len(claimed) == 5


def test_quiet_hours_hold_broadcast_rows_but_not_a_copy_caught_up_as_a_reply(plan_db, tmp_path):
    add_members(plan_db, team_in(plan_db, TA_LU_1), 3)
    with plan_db.transaction() as session:
        bid = broadcasts.create_broadcast(session, make_item_in(session), Audience())
    fan_out(plan_db, tmp_path)
    now = utcnow()
    first, *others = rows_of(plan_db, bid)
    with plan_db.transaction() as session:
        session.get_one(Outbox, first.id).priority = outbox.PRIORITY_REPLY
        held = broadcasts.hold_until(session, now + timedelta(hours=8), now=now)
    assert held == len(others) == 2
    after = {r.id: r.next_attempt_at for r in rows_of(plan_db, bid)}
    assert after[first.id] < now + timedelta(hours=1)
    assert all(after[r.id] == now + timedelta(hours=8) for r in others)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(min_value=1, max_value=9),
       rewinds=st.lists(st.integers(min_value=0, max_value=30), max_size=4))
def test_however_fan_out_is_interrupted_and_redone_each_member_has_one_row(
        audience_db, tmp_path_factory, batch, rewinds):
    """A worker may die after any batch and another redo work from an older cursor."""
    db = audience_db
    folder = tmp_path_factory.mktemp("fan")
    with db.transaction() as session:
        item = session.scalar(select(library.ContentItem.id).limit(1))
        bid = broadcasts.create_broadcast(session, item, Audience())
        expected = broadcasts.count_audience(session, Audience())
    broadcaster = Broadcaster(config_for(db, folder), db,
                              settings=BroadcasterSettings(batch=batch))
    for cursor in rewinds:
        broadcaster.step()
        with db.transaction() as session:
            row = session.get_one(broadcasts.Broadcast, bid)
            row.status, row.cursor = "fanning_out", min(row.cursor, cursor)
    while broadcaster.step():
        pass
    keys = Counter(r.dedupe_key for r in rows_of(db, bid))
    assert set(keys.values()) == {1}
    assert len(keys) == expected.total - expected.no_channel


def test_send_with_wait_follows_the_broadcast_to_the_end(plan_db, tmp_path):
    import threading

    add_members(plan_db, team_in(plan_db, TA_LU_1), 4)
    with plan_db.transaction() as session:
        item = make_item_in(session)
    stop = threading.Event()

    def worker() -> None:  # fans out, then "sends" what it queued
        broadcaster = Broadcaster(config_for(plan_db, tmp_path), plan_db)
        while not stop.is_set():
            broadcaster.step()
            with plan_db.transaction() as session:
                session.execute(Outbox.__table__.update().where(Outbox.status == "pending")
                                .values(status="sent", sent_at=utcnow()))
            stop.wait(0.2)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        result = invoke(plan_db, tmp_path, "broadcast", "send", "--content", str(item), "--yes",
                        "--wait")
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0
    assert "Sent" in result.output
    bid = int(result.output.strip().splitlines()[-1])
    with plan_db.sessions() as session:
        assert broadcasts.broadcast_status(session, bid).state == "done"
