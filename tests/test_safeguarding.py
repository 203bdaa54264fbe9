"""Safeguarding: disclosures become cases for the area's officers, names stay out of notes."""

from __future__ import annotations

import app_fixtures
import pytest
from chat_helpers import WebChatUser
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import db_of
from bot.config import DEFAULT_PLAN
from handlers.safeguarding import classify, names_a_victim, shipped_phrases
from messages_vi import _, render
from storage import safeguarding as store
from storage.members import create_invite, ensure_village_team
from storage.models import Identity, Member, Outbox, Report, utcnow
from storage.models_safeguarding import SafeguardingCase
from storage.plan_file import read_plan_file
from storage.search import area_id_by_code
from storage.textfold import fold_words

VILLAGE = "nt.bac-ai.phuoc-dai.ta-lu-1"
OTHER_DISTRICT_VILLAGE = "nt.thuan-bac.phuoc-khang.da-mai-tren"


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


app, config = app_fixtures.app, app_fixtures.config  # the module-app fixtures


def join(app, village: str = VILLAGE, name: str = "Pinăng Thị Hoa") -> WebChatUser:
    with db_of(app).transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session, village))
        code, _team = create_invite(session, team.code, role="member", days=30, max_uses=5,
                                    actor="test", now=utcnow())
    user = WebChatUser(app)
    user.send("xin chào")
    user.press(vi("Agree"))
    user.send(code)
    user.send(name)
    return user


def member_id_of(app, name: str) -> int:
    with db_of(app).sessions() as session:
        return session.scalar(select(Member.id).where(Member.display_name == name))


def officer(app, area_code: str, name: str, village: str = VILLAGE) -> WebChatUser:
    user = join(app, village, name)
    with db_of(app).transaction() as session:
        assert store.grant_officer(session, member_id_of(app, name), area_code, actor="test",
                                   now=utcnow())
    return user


def cases(app) -> list[SafeguardingCase]:
    with db_of(app).sessions() as session:
        return list(session.scalars(select(SafeguardingCase).order_by(SafeguardingCase.id)))


# --- the phrase list -----------------------------------------------------------------------

DISCLOSURES = [
    "co mot chi bi chong danh, bao luc gia dinh, can giup do",
    "Có một chị bị chồng đánh, bạo lực gia đình, cần giúp đỡ",
    "nạn nhân Nguyễn Thị A bị chồng đánh",
    "em be 13 tuoi bi xam hai",
    "chi ay dang bi bao luc gia dinh",
    "mot em 15 tuoi bi ep cuoi",
    "co nguoi bi lua ban sang trung quoc",
    "cứu với, con tôi bị bắt cóc",
]
NOT_DISCLOSURES = [
    "truyền thông phòng chống bạo lực gia đình thôn Tà Lú 1, 30 người",
    "truyen thong phong chong bao luc gia dinh hom qua thon ta lu 1 30 nguoi 20 nu",
    "hop nhom 15/11 thon suoi da 12 nguoi 10 nu 3 tre em",
    "nghien cuu ve tao hon",
    "tuyen truyen ve mua ban nguoi",
    "hỗ trợ nạn nhân bạo lực gia đình 1 người",
    "Bà con tham gia sôi nổi",
]


@pytest.mark.parametrize("text", DISCLOSURES)
def test_disclosures_are_recognised(text):
    assert classify(text) is not None


@pytest.mark.parametrize("text", NOT_DISCLOSURES)
def test_campaign_topics_and_reports_are_not_disclosures(text):
    assert classify(text) is None


VILLAGES = [a.name for a, _parent, _pos in read_plan_file(DEFAULT_PLAN).areas.walk()
            if a.level == "village"]


@settings(max_examples=60, deadline=None)
@given(village=st.sampled_from(VILLAGES), total=st.integers(1, 999),
       topic=st.sampled_from(["bao luc gia dinh", "bạo lực gia đình", "xâm hại tình dục",
                              "mua bán người", "tảo hôn"]))
def test_a_report_about_a_topic_is_never_a_case(village, total, topic):
    assert classify(f"truyen thong phong chong {topic} thon {village} {total} nguoi") is None


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 10_000), before=st.text(alphabet="abc xyz,.", max_size=20),
       accents=st.booleans())
def test_every_phrase_alone_is_read_with_or_without_diacritics(index, before, accents):
    phrases = shipped_phrases().alone
    phrase, category = phrases[index % len(phrases)]
    text = f"{before} {phrase} ." if accents else f"{before} {fold_words(phrase)} ."
    assert classify(text) == category


def test_names_of_victims_are_recognised_without_flagging_volunteers():
    assert names_a_victim("nạn nhân Nguyễn Thị A bị chồng đánh")
    assert names_a_victim("nan nhan nguyen thi a bi chong danh")
    assert names_a_victim("nạn nhân là chị Lan")
    assert not names_a_victim("Chị Hoa dẫn chương trình tại thôn Tà Lú")
    assert not names_a_victim("Buổi họp vui, 20 chị em tham gia")
    assert not names_a_victim("nạn nhân 15 tuổi, hỗ trợ tại thôn Tà Lú 1")


# --- through the chat ------------------------------------------------------------------------


def test_disclosure_outside_a_flow_answers_and_routes_to_the_areas_officer(app):
    commune_officer = officer(app, "nt.bac-ai.phuoc-dai", "Cán bộ Xã")
    far_officer = officer(app, "nt.thuan-bac", "Cán bộ Huyện Khác", OTHER_DISTRICT_VILLAGE)
    user = join(app)
    answer = user.text_of(user.send("co mot chi bi chong danh, bao luc gia dinh, can giup do"))
    assert "111" in answer and vi("Sorry, I did not understand.") not in answer
    assert "Tên" not in answer
    [case] = cases(app)
    assert case.category == "violence" and case.status == "open"
    # The commune's officer is told; the other district's is not.
    told = commune_officer.text_of(commune_officer._deliver_and_read())
    assert store.case_number(case.id) in told
    assert far_officer._deliver_and_read() == []
    # The officer reads it in chat; the other officer and the member see nothing.
    assert "bi chong danh" in commune_officer.text_of(commune_officer.send("truong hop"))
    assert "bi chong danh" not in far_officer.text_of(far_officer.send("truong hop"))
    assert "bi chong danh" not in user.text_of(user.send("truong hop"))


@pytest.mark.parametrize("step", ["type", "date", "place", "total", "women", "topic", "notes"])
def test_disclosure_at_any_step_keeps_the_draft_and_the_step(app, step):
    user = join(app)
    user.press(vi("Report an activity"))
    answers = {"type": "truyen thong", "date": "hom nay", "place": "ta lu 1", "total": "30",
               "women": "10", "ethnic": "10", "children": "0", "topic": "binh dang gioi"}
    for name, value in answers.items():
        if name == step:
            break
        user.send(value)
    else:
        user.press(vi("Done"))
    question = user.last_text()
    answer = user.text_of(user.send("em be 13 tuoi bi xam hai, can giup"))
    assert "111" in answer and answer.endswith(question.splitlines()[-1])
    assert len(cases(app)) == 1
    with db_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 0


def test_before_consent_hotlines_are_given_and_nothing_is_stored(app):
    user = WebChatUser(app)
    answer = user.text_of(user.send("cuu voi, con toi bi bat coc"))
    assert "111" in answer
    assert cases(app) == []
    with db_of(app).sessions() as session:
        assert session.scalar(select(Identity.consent)) == "pending"


def test_a_note_naming_a_victim_is_held_back_without_repeating_the_name(app):
    user = join(app)
    user.press(vi("Report an activity"))
    for value in ("dia chi tin cay", "hom nay", "ta lu 1", "2", "2", "0", "0", "binh dang gioi"):
        user.send(value)
    user.press(vi("Done"))
    answer = user.text_of(user.send("đã hỗ trợ nạn nhân là chị Lan ở thôn"))
    assert "Lan" not in answer
    assert vi("Your notes seem to name a person who was harmed. To protect them, please "
              "describe what happened without anyone's name.") in answer
    user.send("đã hỗ trợ một người, tư vấn pháp lý")
    user.press(vi("Send"))
    with db_of(app).sessions() as session:
        assert session.scalar(select(Report.notes)) == "đã hỗ trợ một người, tư vấn pháp lý"
        texts = " ".join(str(p) for p in session.scalars(select(Outbox.payload)))
        assert "Lan" not in texts


def test_cases_are_read_only_by_their_areas_officers_and_province_admins(app):
    user = join(app)
    user.send("chi ay dang bi bao luc gia dinh")
    officer(app, "nt.bac-ai", "Cán bộ Huyện")
    officer(app, "nt.thuan-bac", "Cán bộ Khác", OTHER_DISTRICT_VILLAGE)
    district, other = member_id_of(app, "Cán bộ Huyện"), member_id_of(app, "Cán bộ Khác")
    plain = member_id_of(app, "Pinăng Thị Hoa")
    case_id = cases(app)[0].id
    with db_of(app).transaction() as session:
        def seen(reader: store.Reader) -> int:
            return len(store.cases_visible_to(session, reader))
        assert seen(store.Reader(province_admin=True)) == 1
        assert seen(store.Reader(officer_member_id=district)) == 1
        assert seen(store.Reader(officer_member_id=other)) == 0
        assert seen(store.Reader(officer_member_id=plain)) == 0
        assert seen(store.Reader()) == 0
        assert not store.set_case_status(session, store.Reader(officer_member_id=other),
                                         case_id, store.CaseStatus.CLOSED, actor="x",
                                         now=utcnow())
        assert store.set_case_status(session, store.Reader(officer_member_id=district),
                                     case_id, store.CaseStatus.CONTACTED, actor="x",
                                     now=utcnow())


def test_admins_extend_the_phrase_list(app):
    with db_of(app).transaction() as session:
        store.add_phrase(session, "bị nhốt trong nhà", "violence", actor="test", now=utcnow())
    user = join(app)
    assert "111" in user.text_of(user.send("chi ay bi nhot trong nha may ngay"))
    with db_of(app).transaction() as session:
        store.remove_phrase(session, "bi nhot trong nha")

