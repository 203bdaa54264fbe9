"""Members the outbox could not reach are shown to admins, with the reason, on both databases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from bot.cli import cli
from storage import outbox
from storage.conversation import mark_unreachable
from storage.db import Database
from storage.delivery import DeliverySummary, UnreachedMember, delivery_summary
from storage.members import (
    create_link_code,
    ensure_village_team,
    erase_member,
    join_team,
    use_link_code,
)
from storage.models import Identity, utcnow
from storage.outbox import Delivery
from storage.search import area_id_by_code

VN = ZoneInfo("Asia/Ho_Chi_Minh")
TA_LU_1 = "nt.bac-ai.phuoc-dai.ta-lu-1"
TA_LU_2 = "nt.bac-ai.phuoc-dai.ta-lu-2"
DA_MAI_TREN = "nt.thuan-bac.phuoc-khang.da-mai-tren"
BLOCKED = "unreachable on Telegram: Forbidden: bot was blocked by the user"
WINDOW = "outside the facebook messaging window"


@dataclass(frozen=True)
class Scene:
    now: datetime
    ids: dict[str, dict[str, int]]  # member name -> channel -> identity id


def add_member(session, name: str, village: str, channels: dict[str, timedelta],
               now: datetime) -> dict[str, int]:
    """A member of the village's team with one identity per channel, last heard `age` ago."""
    area_id = area_id_by_code(session, village)
    assert area_id is not None
    team = ensure_village_team(session, area_id)
    ids = {}
    for channel, age in channels.items():
        identity = Identity(channel=channel, external_id=f"{channel}-{len(name)}-{name}",
                            consent="given", last_inbound_at=now - age)
        session.add(identity)
        session.flush()
        ids[channel] = identity.id
    first, *others = ids.values()
    joined = join_team(session, first, team_id=team.id, name=name, role="member", invite=None,
                       at=now - timedelta(days=30))
    for identity_id in others:
        assert use_link_code(session, create_link_code(session, joined.id, now), identity_id, now)
    return ids


def deliver(session, identity_id: int, channel: str, at: datetime) -> None:
    """A message that went out, as the sender would record it."""
    outbox.enqueue(session, identity_id, channel, {"text": "tin"}, now=at)
    for row in outbox.claim_due(session, [channel], now=at, limit=10,
                                lease=timedelta(seconds=60)):
        assert row.identity_id == identity_id  # nothing else is due: each goes out at once
        outbox.mark_sent(session, row.id, now=at, platform_message_id="m1")


def refused(session, identity_id: int, channel: str, at: datetime, status: str,
            error: str) -> int:
    """A message the platform turned away, recorded (and diverted) as the sender does."""
    row = outbox.enqueue(session, identity_id, channel, {"text": "tài liệu mới"},
                         priority=outbox.PRIORITY_BULK, now=at)
    outbox.record_deliveries(session, [Delivery(row, status, identity_id, error=error)], now=at)
    if status == "outside_window":
        outbox.divert(session, row, now=at)
    return row


@pytest.fixture
def scene(plan_db: Database, tmp_path: Path) -> Scene:
    now = utcnow()
    day = timedelta(days=1)
    ids: dict[str, dict[str, int]] = {}
    with plan_db.transaction() as s:
        # Held: Messenger's window closed and no other channel, so it waits for her.
        ids["Hoa"] = add_member(s, "Hoa", TA_LU_1, {"facebook": 3 * day}, now)
        deliver(s, ids["Hoa"]["facebook"], "facebook", now - 4 * day)
        refused(s, ids["Hoa"]["facebook"], "facebook", now - 2 * day, "outside_window", WINDOW)
        # Diverted to her Telegram and sent there: reached.
        ids["Lan"] = add_member(s, "Lan", TA_LU_2, {"facebook": 5 * day, "telegram": day}, now)
        refused(s, ids["Lan"]["facebook"], "facebook", now - timedelta(hours=1),
                "outside_window", WINDOW)
        telegram = ids["Lan"]["telegram"]
        for row in outbox.claim_due(s, ["telegram"], now=now, limit=10,
                                    lease=timedelta(seconds=60)):
            assert row.identity_id == telegram
            outbox.mark_sent(s, row.id, now=now, platform_message_id="t1")
        # Blocked the bot.
        ids["Mai"] = add_member(s, "Mai", DA_MAI_TREN, {"telegram": 5 * day}, now)
        refused(s, ids["Mai"]["telegram"], "telegram", now - day, "unreachable", BLOCKED)
        # Unfollowed on Zalo: the platform said so, and nothing was queued since.
        ids["Đào"] = add_member(s, "Đào", TA_LU_1, {"zalo": 20 * day}, now)
        mark_unreachable(s, "zalo", f"zalo-{len('Đào')}-Đào", "user unfollowed the OA")
        # A failure older than the default week.
        ids["Cúc"] = add_member(s, "Cúc", TA_LU_2, {"zalo_bot": 12 * day}, now)
        old = outbox.enqueue(s, ids["Cúc"]["zalo_bot"], "zalo_bot", {"text": "x"},
                             now=now - 10 * day)
        outbox.mark_final(s, old, status="failed", error="gave up after 8 tries: timeout")
        # Failed, then asked for their data to be erased.
        ids["Tuấn"] = add_member(s, "Tuấn", TA_LU_1, {"zalo": 6 * day}, now)
        lost = outbox.enqueue(s, ids["Tuấn"]["zalo"], "zalo", {"text": "x"}, now=now - 3 * day)
        outbox.mark_final(s, lost, status="failed", error="Zalo: user not found")
    with plan_db.transaction() as s:
        erase_member(s, ids["Tuấn"]["zalo"], tmp_path / "media", now)
    return Scene(now, ids)


def summary(db: Database, scene: Scene, **filters) -> DeliverySummary:
    with db.sessions() as session:
        return delivery_summary(session, now=scene.now, **filters)


def by_name(result: DeliverySummary) -> dict[str, UnreachedMember]:
    return {m.name: m for m in result.members}


def test_counts_by_channel_and_status_over_the_last_week(plan_db: Database,
                                                         scene: Scene) -> None:
    counts = {(c.channel, c.status): c.count for c in summary(plan_db, scene).counts}
    assert counts == {("facebook", "sent"): 1, ("facebook", "outside_window"): 1,
                      ("facebook", "diverted"): 1, ("telegram", "sent"): 1,
                      ("telegram", "unreachable"): 1, ("zalo", "failed"): 1}


def test_members_not_reached_newest_problem_first(plan_db: Database, scene: Scene) -> None:
    result = summary(plan_db, scene)
    # Lan's message reached her on Telegram after Messenger refused it: she is not listed.
    # Đào's block has no date, so she comes last.
    assert [m.name for m in result.members] == ["Mai", "Hoa", "Đào"]


def test_a_held_message_shows_with_its_reason_and_the_members_place(plan_db: Database,
                                                                    scene: Scene) -> None:
    hoa = by_name(summary(plan_db, scene))["Hoa"]
    assert (hoa.team_name, hoa.village, hoa.commune, hoa.area_code) == (
        "Tổ truyền thông cộng đồng Tà Lú 1", "Tà Lú 1", "Phước Đại", TA_LU_1)
    [facebook] = hoa.channels
    assert (facebook.channel, facebook.held, facebook.failed, facebook.unreachable) == (
        "facebook", 1, 0, 0)
    assert not facebook.marked_unreachable
    assert facebook.oldest_problem_error == WINDOW
    assert facebook.oldest_problem_at == scene.now - timedelta(days=2)
    assert facebook.last_inbound_at == scene.now - timedelta(days=3)
    assert facebook.last_sent_at == hoa.last_delivered_at == scene.now - timedelta(days=4)


def test_a_blocked_member_shows_why_and_since_when(plan_db: Database, scene: Scene) -> None:
    members = by_name(summary(plan_db, scene))
    [telegram] = members["Mai"].channels
    assert telegram.marked_unreachable and telegram.unreachable == 1
    assert telegram.unreachable_reason == telegram.oldest_problem_error == BLOCKED
    assert telegram.unreachable_since == scene.now - timedelta(days=1)
    assert members["Mai"].last_delivered_at is None
    [zalo] = members["Đào"].channels
    assert zalo.marked_unreachable and zalo.unreachable_reason == "user unfollowed the OA"
    assert (zalo.unreachable_since, zalo.held, zalo.failed, zalo.oldest_problem_at) == (
        None, 0, 0, None)


def test_an_erased_member_is_never_named(plan_db: Database, scene: Scene) -> None:
    result = summary(plan_db, scene)
    assert "Tuấn" not in repr(result)
    assert all(m.name for m in result.members)
    # Erasing unlinks the chat: it is only counted, with nobody to name.
    assert result.unlinked_identities == 1


def test_the_period_decides_which_messages_count(plan_db: Database, scene: Scene) -> None:
    fortnight = summary(plan_db, scene, since=scene.now - timedelta(days=14))
    assert [m.name for m in fortnight.members] == ["Mai", "Hoa", "Cúc", "Đào"]
    assert by_name(fortnight)["Cúc"].channels[0].oldest_problem_error == (
        "gave up after 8 tries: timeout")
    assert ("zalo_bot", "failed", 1) in [(c.channel, c.status, c.count)
                                         for c in fortnight.counts]
    day = summary(plan_db, scene, since=scene.now - timedelta(hours=36))
    # A block stays listed after its message leaves the period: it is the channel's state now.
    assert [m.name for m in day.members] == ["Mai", "Đào"]
    assert by_name(day)["Mai"].channels[0].unreachable == 1


def test_filters_by_channel_and_by_area(plan_db: Database, scene: Scene) -> None:
    facebook = summary(plan_db, scene, channel="facebook")
    assert [m.name for m in facebook.members] == ["Hoa"]
    assert {c.channel for c in facebook.counts} == {"facebook"}
    assert facebook.unlinked_identities == 0
    district = summary(plan_db, scene, area_code="nt.bac-ai")
    assert [m.name for m in district.members] == ["Hoa", "Đào"]
    assert {(c.channel, c.status) for c in district.counts} == {
        ("facebook", "sent"), ("facebook", "outside_window"), ("facebook", "diverted"),
        ("telegram", "sent")}
    commune = summary(plan_db, scene, area_code="nt.thuan-bac.phuoc-khang")
    assert [m.name for m in commune.members] == ["Mai"]
    with pytest.raises(LookupError, match="no area"):
        summary(plan_db, scene, area_code="nt.nowhere")


def run_cli(db_url: str, tmp_path: Path, *args: str):
    env = {"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "absent.env"),
           "DUAN8_INSTANCE": str(tmp_path / "instance"), "TZ_NAME": "Asia/Ho_Chi_Minh",
           "PLAN_FILE": "off"}
    return CliRunner().invoke(cli, ["outbox", "status", *args], env=env,
                              catch_exceptions=False)


def test_outbox_status_json(plan_db: Database, db_url: str, scene: Scene,
                            tmp_path: Path) -> None:
    result = run_cli(db_url, tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert "Tuấn" not in result.output
    data = json.loads(result.output)
    assert set(data) == {"since", "until", "time_zone", "channel", "area", "counts", "members",
                         "unlinked_identities"}
    assert data["time_zone"] == "Asia/Ho_Chi_Minh" and data["since"].endswith("+07:00")
    assert data["unlinked_identities"] == 1
    assert {"channel": "telegram", "status": "unreachable", "count": 1} in data["counts"]
    assert [m["name"] for m in data["members"]] == ["Mai", "Hoa", "Đào"]
    hoa = data["members"][1]
    assert set(hoa) == {"member_id", "name", "erased", "role", "team_code", "team_name",
                        "area_code", "village", "commune", "newest_problem_at",
                        "last_delivered_at", "channels"}
    [facebook] = hoa["channels"]
    held_at = (scene.now - timedelta(days=2)).astimezone(VN).isoformat(timespec="seconds")
    assert facebook["oldest_problem_at"] == held_at and held_at.endswith("+07:00")
    assert (facebook["held"], facebook["oldest_problem_error"]) == (1, WINDOW)
    assert data["members"][2]["channels"][0]["unreachable_since"] is None


def test_outbox_status_table(plan_db: Database, db_url: str, scene: Scene,
                             tmp_path: Path) -> None:
    result = run_cli(db_url, tmp_path, "--since", "14")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Tuấn" not in out
    assert "Members not reached: 4" in out
    assert out.index("Mai") < out.index("Hoa") < out.index("Cúc") < out.index("Đào")
    held_at = (scene.now - timedelta(days=2)).astimezone(VN).strftime("%d/%m/%Y %H:%M")
    assert f"1 held until they write again; on {held_at}" in out
    assert f"UNREACHABLE since {(scene.now - timedelta(days=1)).astimezone(VN):%d/%m/%Y}" in out
    assert BLOCKED in out and WINDOW in out
    assert "1 chat(s) with no member behind them" in out
    header = next(line for line in out.splitlines() if line.startswith("channel"))
    assert header.split() == ["channel", "sent", "diverted", "outside_window", "failed",
                              "unreachable", "total"]


def test_outbox_status_refuses_an_unknown_area(plan_db: Database, db_url: str,
                                               tmp_path: Path) -> None:
    result = run_cli(db_url, tmp_path, "--area", "nt.nowhere")
    assert result.exit_code == 2
    assert "no area with code 'nt.nowhere'" in result.output
