"""Round-trips through the models on the backend under test (SQLite, or PostgreSQL when set)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, delete, func, select, text
from sqlalchemy.exc import IntegrityError

from storage import migrate
from storage.db import Database
from storage.models import (
    ActivityType,
    Area,
    ConversationState,
    Identity,
    InboundEvent,
    Indicator,
    Media,
    Member,
    Outbox,
    Plan,
    Report,
    Setting,
    Team,
    TeamKind,
)
from storage.textfold import fold_name

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def make_tree(db: Database) -> dict[str, int]:
    """Province → district → commune → two villages; returns ids by code."""
    with db.transaction() as session:
        province = Area(code="nt", name="Ninh Thuận", name_folded=fold_name("Ninh Thuận"),
                        level="province")
        district = Area(code="nt.bac-ai", name="Bác Ái", name_folded="bacai",
                        level="district", parent=province)
        commune = Area(code="nt.bac-ai.phuoc-dai", name="Phước Đại", name_folded="phuocdai",
                       level="commune", parent=district)
        ta_lu = Area(code="nt.bac-ai.phuoc-dai.ta-lu-1", name="Tà Lú 1", name_folded="talu1",
                     level="village", parent=commune, position=0)
        ma_hoa = Area(code="nt.bac-ai.phuoc-dai.ma-hoa", name="Ma Hoa", name_folded="mahoa",
                      level="village", parent=commune, position=1)
        session.add_all([province, district, commune, ta_lu, ma_hoa])
        session.flush()
        return {a.code: a.id for a in (province, district, commune, ta_lu, ma_hoa)}


def make_member(db: Database) -> tuple[int, int, int]:
    """A member with a Zalo and a Telegram identity; returns (member, zalo, telegram) ids."""
    with db.transaction() as session:
        member = Member(display_name="Pinăng Thị Hoa", role="leader")
        session.add(member)
        session.flush()
        zalo = Identity(channel="zalo", external_id="8765432109876543210", member_id=member.id,
                        consent="given")
        telegram = Identity(channel="telegram", external_id="123456789", member_id=member.id)
        session.add_all([zalo, telegram])
        session.flush()
        return member.id, zalo.id, telegram.id


def make_activity_type(db: Database) -> int:
    with db.transaction() as session:
        plan = Plan(code="p", name="Kế hoạch", phase_start=date(2022, 1, 1),
                    phase_end=date(2025, 12, 31))
        session.add(plan)
        session.flush()
        indicator = Indicator(plan_id=plan.id, code="communication_teams",
                              name="Tổ truyền thông cộng đồng")
        session.add(indicator)
        session.flush()
        activity = ActivityType(plan_id=plan.id, code="direct_communication",
                                name="Truyền thông trực tiếp", indicator_id=indicator.id,
                                keywords=["truyen thong", "nói chuyện"])
        session.add(activity)
        session.flush()
        return activity.id


# --- the plan's shapes ---------------------------------------------------------------------


def test_area_tree_round_trip(db: Database) -> None:
    ids = make_tree(db)
    with db.sessions() as session:
        village = session.get(Area, ids["nt.bac-ai.phuoc-dai.ta-lu-1"])
        assert village is not None
        assert (village.name, village.name_folded, village.level) == ("Tà Lú 1", "talu1",
                                                                       "village")
        assert village.active is True
        chain = []
        node: Area | None = village
        while node is not None:
            chain.append(node.code)
            node = node.parent
        assert chain == ["nt.bac-ai.phuoc-dai.ta-lu-1", "nt.bac-ai.phuoc-dai", "nt.bac-ai", "nt"]
        children = session.scalars(select(Area.name).where(
            Area.parent_id == ids["nt.bac-ai.phuoc-dai"]).order_by(Area.position)).all()
        assert children == ["Tà Lú 1", "Ma Hoa"]


def test_area_code_is_unique(db: Database) -> None:
    make_tree(db)
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(Area(code="nt", name="Again", name_folded="again", level="province"))
    assert count(db, Area) == 5


def test_team_kind_and_team(db: Database) -> None:
    ids = make_tree(db)
    with db.transaction() as session:
        kind = TeamKind(code="communication", name="Tổ truyền thông cộng đồng")
        session.add(kind)
        session.flush()
        team = Team(code="t-talu1", name="Tổ truyền thông thôn Tà Lú 1",
                    name_folded=fold_name("Tổ truyền thông thôn Tà Lú 1"), kind_id=kind.id,
                    area_id=ids["nt.bac-ai.phuoc-dai.ta-lu-1"])
        session.add(team)
        session.flush()
        team_id, kind_id = team.id, kind.id
    with db.sessions() as session:
        team = session.get(Team, team_id)
        assert team is not None
        assert team.name == "Tổ truyền thông thôn Tà Lú 1"
        assert team.name_folded == "totruyenthongthontalu1"
        assert team.kind_id == kind_id
        assert team.area_id == ids["nt.bac-ai.phuoc-dai.ta-lu-1"]
        assert team.active is True
        assert team.created_at.utcoffset() == timedelta(0)
        assert session.get(TeamKind, kind_id).name == "Tổ truyền thông cộng đồng"


def test_team_needs_an_existing_area(db: Database) -> None:
    with db.transaction() as session:
        kind = TeamKind(code="communication", name="Tổ truyền thông cộng đồng")
        session.add(kind)
        session.flush()
        kind_id = kind.id
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(Team(code="t", name="T", name_folded="t", kind_id=kind_id, area_id=424242))
    assert count(db, Team) == 0


# --- people and conversations --------------------------------------------------------------


def test_member_with_two_identities_on_different_channels(db: Database) -> None:
    member_id, zalo_id, telegram_id = make_member(db)
    with db.sessions() as session:
        rows = session.execute(
            select(Identity.channel, Identity.external_id, Identity.consent)
            .where(Identity.member_id == member_id).order_by(Identity.channel)
        ).all()
        assert [tuple(r) for r in rows] == [("telegram", "123456789", "pending"),
                                           ("zalo", "8765432109876543210", "given")]
        member = session.get(Member, member_id)
        assert member is not None
        assert (member.display_name, member.role, member.locale) == ("Pinăng Thị Hoa", "leader",
                                                                     "vi")
        assert member.erased_at is None
    assert {zalo_id, telegram_id} and zalo_id != telegram_id


def test_identity_is_unique_per_channel(db: Database) -> None:
    make_member(db)
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(Identity(channel="zalo", external_id="8765432109876543210"))
    with db.transaction() as session:  # the same external id on another platform is someone else
        session.add(Identity(channel="facebook", external_id="8765432109876543210"))
    assert count(db, Identity) == 3


def test_conversation_state_keeps_a_json_draft(db: Database) -> None:
    _member, zalo_id, _telegram = make_member(db)
    draft: dict[str, Any] = {
        "activity": "direct_communication",
        "village": "Tà Lú 1",
        "place_text": "Nhà văn hóa thôn Đá Mài Dưới",
        "counts": {"total": 42, "women": 30, "ethnic": [28, {"Raglai": 25, "Chăm": 3}]},
        "photos": [[1, "a.jpg"], [2, ["nested", ["deeper", None, True, 1.5]]]],
        "notes": "Chị em hỏi nhiều về phòng chống bạo lực gia đình — rất sôi nổi! 📷",
    }
    with db.transaction() as session:
        session.add(ConversationState(identity_id=zalo_id, flow="report", step="counts",
                                      draft=draft))
    with db.sessions() as session:
        state = session.get(ConversationState, zalo_id)
        assert state is not None
        assert (state.flow, state.step) == ("report", "counts")
        assert state.draft == draft
        assert state.draft["notes"] == draft["notes"]
        assert state.updated_at.utcoffset() == timedelta(0)

    # A handler saves a new draft by assigning it, and the change is stored.
    with db.transaction() as session:
        state = session.get(ConversationState, zalo_id)
        assert state is not None
        state.draft = {**state.draft, "step_back": ["counts", "photos"]}
    with db.sessions() as session:
        assert session.get(ConversationState, zalo_id).draft["step_back"] == ["counts", "photos"]


# --- messages in and out -------------------------------------------------------------------


def test_inbound_event_is_unique_per_channel(db: Database) -> None:
    _member, zalo_id, _telegram = make_member(db)
    with db.transaction() as session:
        session.add(InboundEvent(channel="telegram", event_id="update-1001",
                                 identity_id=zalo_id))

    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(InboundEvent(channel="telegram", event_id="update-1001"))
    assert count(db, InboundEvent) == 1

    with db.transaction() as session:  # the same id from another platform is another event
        session.add(InboundEvent(channel="zalo", event_id="update-1001"))
    with db.sessions() as session:
        rows = session.execute(select(InboundEvent.channel, InboundEvent.event_id)
                               .order_by(InboundEvent.channel)).all()
    assert [tuple(r) for r in rows] == [("telegram", "update-1001"), ("zalo", "update-1001")]


def test_outbox_row_round_trip(db: Database) -> None:
    _member, zalo_id, _telegram = make_member(db)
    payload = {"text": "Báo cáo của chị đã được lưu. Mã số: BC-0042",
               "buttons": [{"id": "new", "title": "Báo cáo mới"}, {"id": "menu", "title": "Menu"}]}
    with db.transaction() as session:
        row = Outbox(identity_id=zalo_id, channel="zalo", payload=payload)
        session.add(row)
        session.flush()
        row_id = row.id
    with db.sessions() as session:
        row = session.get(Outbox, row_id)
        assert row is not None
        assert row.payload == payload
        assert (row.status, row.priority, row.attempts) == ("pending", 0, 0)
        assert row.platform_message_id is None and row.last_error is None
        assert row.lease_until is None and row.sent_at is None
        assert row.next_attempt_at.utcoffset() == timedelta(0)
        assert abs(row.next_attempt_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_due_outbox_rows_compare_as_instants(db: Database) -> None:
    """A filter with an aware datetime in another zone selects by instant on both backends."""
    _member, zalo_id, _telegram = make_member(db)
    now = datetime(2025, 9, 10, 8, 0, tzinfo=VN)
    with db.transaction() as session:
        for name, delta in (("past", -1), ("now", 0), ("future", 1)):
            session.add(Outbox(identity_id=zalo_id, channel="zalo", payload={"name": name},
                               next_attempt_at=now + timedelta(hours=delta)))
    with db.sessions() as session:
        due = session.scalars(select(Outbox.payload).where(
            Outbox.next_attempt_at <= now.astimezone(UTC)).order_by(Outbox.next_attempt_at))
        assert [p["name"] for p in due] == ["past", "now"]
        due_local = session.scalars(select(Outbox.payload).where(
            Outbox.next_attempt_at <= now).order_by(Outbox.next_attempt_at))
        assert [p["name"] for p in due_local] == ["past", "now"]


def test_deleting_an_identity_cascades_as_declared(db: Database) -> None:
    """Erasing a member's identity removes their queue and state, keeps the event keys."""
    _member, zalo_id, telegram_id = make_member(db)
    with db.transaction() as session:
        session.add(ConversationState(identity_id=zalo_id, draft={"a": 1}))
        session.add(Outbox(identity_id=zalo_id, channel="zalo", payload={"text": "x"}))
        session.add(InboundEvent(channel="zalo", event_id="e1", identity_id=zalo_id))
        session.add(Media(identity_id=zalo_id, storage_key="k/1.jpg", content_type="image/jpeg",
                          size=10, sha256="0" * 64))
    with db.transaction() as session:
        session.execute(delete(Identity).where(Identity.id == zalo_id))
    assert count(db, ConversationState) == 0
    assert count(db, Outbox) == 0
    with db.sessions() as session:
        assert session.scalar(select(InboundEvent.identity_id)) is None
        assert session.scalar(select(Media.identity_id)) is None
        assert session.get(Identity, telegram_id) is not None


# --- reports -------------------------------------------------------------------------------


def test_report_with_media(db: Database) -> None:
    ids = make_tree(db)
    member_id, zalo_id, _telegram = make_member(db)
    activity_id = make_activity_type(db)
    with db.transaction() as session:
        report = Report(number="BC-0001", member_id=member_id, activity_type_id=activity_id,
                        activity_date=date(2025, 9, 9), area_id=ids["nt.bac-ai.phuoc-dai.ta-lu-1"],
                        place_text="Nhà rông thôn Tà Lú 1", total=42, women=30, ethnic=28,
                        children=5, topic_text="Phòng chống tảo hôn",
                        notes="Buổi sinh hoạt ấm cúng", channel="zalo")
        session.add(report)
        session.flush()
        for n in range(2):
            session.add(Media(report_id=report.id, identity_id=zalo_id,
                              storage_key=f"2025/09/BC-0001-{n}.jpg", content_type="image/jpeg",
                              size=123_456 + n, sha256=f"{n:064x}"))
        report_id = report.id

    with db.sessions() as session:
        report = session.get(Report, report_id)
        assert report is not None
        assert report.number == "BC-0001"
        assert report.activity_date == date(2025, 9, 9)
        assert (report.total, report.women, report.ethnic, report.children) == (42, 30, 28, 5)
        assert report.place_text == "Nhà rông thôn Tà Lú 1"
        assert report.topic_text == "Phòng chống tảo hôn"
        assert report.status == "submitted"
        assert report.created_at.utcoffset() == timedelta(0)
        media = session.scalars(select(Media).where(Media.report_id == report_id)
                                .order_by(Media.storage_key)).all()
        assert [(m.storage_key, m.size) for m in media] == [
            ("2025/09/BC-0001-0.jpg", 123_456), ("2025/09/BC-0001-1.jpg", 123_457)]

    with pytest.raises(IntegrityError), db.transaction() as session:  # numbers are unique
        session.add(Report(number="BC-0001", activity_type_id=activity_id,
                           activity_date=date(2025, 9, 9), total=1))

    with db.transaction() as session:  # a deleted report takes its photos with it
        session.execute(delete(Report).where(Report.id == report_id))
    assert count(db, Media) == 0


# --- time and text -------------------------------------------------------------------------


def test_datetimes_come_back_aware_utc(db: Database) -> None:
    _member, zalo_id, _telegram = make_member(db)
    local = datetime(2025, 9, 10, 8, 30, 15, 123456, tzinfo=VN)
    naive = datetime(2025, 1, 25, 23, 59, 59)  # naive values are taken as UTC
    with db.transaction() as session:
        identity = session.get(Identity, zalo_id)
        assert identity is not None
        identity.last_inbound_at = local
        session.add(Setting(key="k", value="v", updated_at=naive))
    with db.sessions() as session:
        identity = session.get(Identity, zalo_id)
        assert identity is not None
        got = identity.last_inbound_at
        assert got is not None
        assert got.utcoffset() == timedelta(0)
        assert got == datetime(2025, 9, 10, 1, 30, 15, 123456, tzinfo=UTC)
        assert (got.hour, got.microsecond) == (1, 123456)
        assert identity.created_at.utcoffset() == timedelta(0)
        setting = session.get(Setting, "k")
        assert setting is not None
        assert setting.updated_at == datetime(2025, 1, 25, 23, 59, 59, tzinfo=UTC)
        assert setting.updated_at.utcoffset() == timedelta(0)


def test_datetimes_are_utc_even_when_the_server_is_in_vietnam(empty_db_url: str) -> None:
    """A PostgreSQL server set up in Vietnam has TimeZone=Asia/Ho_Chi_Minh; we still get UTC."""
    if not empty_db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server setting")
    setup = create_engine(empty_db_url, isolation_level="AUTOCOMMIT")
    with setup.connect() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar()
        conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Ho_Chi_Minh'"))
    setup.dispose()

    database = Database(empty_db_url)
    try:
        migrate.upgrade(database.engine)
        with database.transaction() as session:
            session.add(Setting(key="k", value="v",
                                updated_at=datetime(2025, 9, 10, 8, 30, tzinfo=VN)))
        with database.sessions() as session:
            got = session.get(Setting, "k").updated_at
            assert got == datetime(2025, 9, 10, 1, 30, tzinfo=UTC)
            assert got.utcoffset() == timedelta(0)
            assert got.date() == date(2025, 9, 10) and got.hour == 1
    finally:
        database.dispose()


VIETNAMESE = [
    "Tà Lú 1",
    "Đá Mài Dưới",
    "Ờ, chị Nguyễn Thị Hồng Nhung ở Phước Đại đã gửi ảnh!",
    "Xóa bỏ định kiến và khuôn mẫu giới — ƯỚC MƠ của trẻ em",
    unicodedata.normalize("NFD", "Suối Đá"),  # decomposed, as some phones send it
    "ữ" * 200,  # 200 characters, far more than 200 bytes
]


@pytest.mark.parametrize("value", VIETNAMESE)
def test_vietnamese_text_survives_unchanged(db: Database, value: str) -> None:
    with db.transaction() as session:
        member = Member(display_name=value[:120])
        session.add(member)
        session.add(Area(code="a", name=value, name_folded=fold_name(value)[:200],
                         level="village"))
        session.add(Setting(key="text", value=value))
        session.flush()
        member_id = member.id
    with db.sessions() as session:
        assert session.scalar(select(Area.name).where(Area.code == "a")) == value
        assert session.get(Setting, "text").value == value
        assert session.get(Member, member_id).display_name == value[:120]
        # Found again by the exact text it was stored with.
        assert session.scalar(select(func.count()).select_from(Area)
                              .where(Area.name == value)) == 1
