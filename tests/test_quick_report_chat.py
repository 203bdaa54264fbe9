"""The quick report and everyday answers through the web chat: right, or asked, never wrong.

Each example is one a volunteer sent; it goes the way a platform message goes (the chat API,
the dispatcher, the outbox) and is checked three ways: what the bot answered, what the draft
holds, and the figures stored once the member sends the report.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chat_helpers import WebChatUser
from db_files import copy_database
from sqlalchemy import make_url, select
from test_conversation import make_invite, state_of, vi

from bot import web_guard
from bot.app import config_of, db_of
from messages_vi import short_labels
from storage import throttle
from storage.models import Area, Report, Topic

OWN_VILLAGE = "nt.bac-ai.phuoc-dai.ta-lu-1"
PLACE_QUESTION = vi("Where did it take place? Choose your village or type the village name.")


@pytest.fixture
def app(started_app):
    if (state := _file_state(started_app)) is not None:
        _RESET[id(started_app)] = state
    return started_app


@pytest.fixture
def today(app) -> date:
    return datetime.now(config_of(app).tz).date()


def member(app, village: str = OWN_VILLAGE) -> WebChatUser:
    """A volunteer who has joined the team of `village` and sees the menu."""
    fresh = _fresh(app)
    if fresh and (user := _restored(app, village)) is not None:
        return user
    code = make_invite(app, village)
    user = WebChatUser(app)
    user.send("xin chào")
    user.press(vi("Agree"))
    user.send(code)
    user.send("Pinăng Thị Hoa")
    assert vi("What would you like to do?") in user.last_text()
    if fresh:
        _keep(app, village, user)
    return user


# Consent and joining are walked once per village and module app (test_conversation tests
# them); a later test that asks for the same member on a database nothing has written to yet
# gets the joined member's database and cookie back (SQLite: a file copy), instead of the dozen
# statements the walk compiles and runs.
_RESET: dict[int, tuple[int, int, int]] = {}
_JOINED: dict[tuple[int, str], tuple[Path, str, int, list[dict[str, Any]]]] = {}


def _file_state(app) -> tuple[int, int, int] | None:
    """The database file's identity, or None where it cannot tell (PostgreSQL, pending WAL)."""
    db = db_of(app)
    if not db.is_sqlite:
        return None
    path = Path(make_url(db.url).database or "")
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size:
        return None
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _fresh(app) -> bool:
    state = _file_state(app)
    return state is not None and state == _RESET.get(id(app))


def _closed_file(app) -> str:
    """The app's database file, with the app's own connections closed."""
    db = db_of(app)
    db.dispose()
    return make_url(db.url).database or ""


def _keep(app, village: str, user: WebChatUser) -> None:
    key = (id(app), village)
    if key in _JOINED:
        return
    snapshot = config_of(app).instance_path / f"joined-{village}.db"
    copy_database(_closed_file(app), snapshot)
    cookie = user.client.get_cookie("session")
    assert cookie is not None
    _JOINED[key] = (snapshot, cookie.value, user.after, copy.deepcopy(user.seen))


def _restored(app, village: str) -> WebChatUser | None:
    saved = _JOINED.get((id(app), village))
    if saved is None:
        return None
    snapshot, cookie, after, seen = saved
    copy_database(snapshot, _closed_file(app))
    user = WebChatUser(app)
    user.client.set_cookie("session", cookie)
    user.after, user.seen = after, copy.deepcopy(seen)
    return user


def draft(app, user: WebChatUser) -> dict[str, Any]:
    return dict(state_of(app, user).draft)


def finish(user: WebChatUser, pick: dict[str, str] | None = None) -> str:
    """Answer whatever is still asked with the plainest choice, then send; the last answer."""
    pick = pick or {}
    for _ in range(15):
        buttons = user.buttons()
        chosen = next((label for label in pick if label in buttons), None)
        if chosen is not None:
            user.press(pick.pop(chosen))
        elif vi("Send") in buttons:
            answer = user.press(vi("Send"))
            # An unusual total (0, or above MAX_PARTICIPANTS) is confirmed, then it is sent.
            sure = vi("Yes, {count} people", count="\x00").split("\x00")[0]
            pressed = next((b for b in user.buttons() if b.startswith(sure)), None)
            if pressed is None:
                return user.text_of(answer)
            return user.text_of(user.press(pressed))
        elif vi("Done") in buttons:
            user.press(vi("Done"))
        elif vi("No notes") in buttons:
            user.press(vi("No notes"))
        elif "0" in buttons:
            user.press("0")
        elif buttons and (vi("What was the topic? Choose one or type it.") in user.last_text()
                          or PLACE_QUESTION in user.last_text()):
            user.press(buttons[0])
        else:
            raise AssertionError(f"unexpected question: {user.last_text()!r} {buttons}")
    raise AssertionError("the report never reached its summary")


def stored(app) -> Report:
    with db_of(app).sessions() as session:
        reports = session.scalars(select(Report).order_by(Report.id)).all()
        assert reports, "no report was stored"
        session.expunge_all()
        return reports[-1]


def area_name(app, area_id: int | None) -> str:
    with db_of(app).sessions() as session:
        return session.get_one(Area, area_id).name


def topic_name(app, topic_id: int | None) -> str | None:
    with db_of(app).sessions() as session:
        return session.get(Topic, topic_id).name if topic_id else None


# --- The quick report: right, or asked -----------------------------------------------------


@pytest.mark.parametrize(
    ("message", "press", "place", "total"),
    [
        # The 2 is the village's; the range is asked with its bounds as buttons.
        ("truyen thong hom qua thon Ta Lu 2, 30-40 nguoi", "40", "Tà Lú 2", 40),
        ("truyen thong hom qua thon Ta Lu 2, 30 den 40 nguoi", "30", "Tà Lú 2", 30),
        ("truyền thông hôm qua thôn Tà Lú 3 30 - 40 người", "30", "Tà Lú 3", 30),
    ],
)
def test_a_number_of_the_place_name_and_a_range_asked(app, today, message, press, place, total):
    user = member(app)
    answer = user.text_of(user.send(message))
    assert place in answer
    assert user.buttons() == ["30", "40"]
    assert "30-40" in user.last_text()
    state = draft(app, user)
    assert "total" not in state and state["total_range"] == [30, 40]
    assert state["place_name"] == place
    user.press(press)
    finish(user)
    report = stored(app)
    assert (report.place_text, report.total) == (place, total)
    assert report.activity_date == today - timedelta(days=1)


@pytest.mark.parametrize(
    ("message", "total"),
    [
        ("truyen thong hom qua thon ta lu 1, 2 000 nguoi", 2000),
        ("truyen thong hom qua thon ta lu 1, 2.000 nguoi", 2000),
        ("truyen thong hom qua thon ta lu 1, 2,000 nguoi", 2000),
        ("truyen thong hom qua thon ta lu 1, 12 500 nguoi", 12500),
        ("truyen thong hom qua thon ta lu 1 nguoi: 1 200", 1200),
    ],
)
def test_thousands_with_space_or_dot_are_one_number(app, message, total):
    user = member(app)
    user.send(message)
    assert draft(app, user)["total"] == total
    finish(user)
    assert stored(app).total == total


@pytest.mark.parametrize("message", [
    "truyen thong hom qua thon ta lu 1, 1000000 nguoi",
    "truyen thong hom qua thon ta lu 1, 1.000.000 nguoi",
])
def test_a_count_out_of_range_is_said_never_cut(app, message):
    user = member(app)
    answer = user.text_of(user.send(message))
    assert "chưa ghi" in answer and "100.000" in answer
    assert "total" not in draft(app, user)
    assert vi("How many people took part in total?") in user.last_text()
    user.send("35")
    finish(user)
    assert stored(app).total == 35


@pytest.mark.parametrize(
    ("message", "activity", "topic"),
    [
        ("truyền thông phòng chống bạo lực gia đình hôm qua thôn Tà Lú 1, 30 người",
         "Truyền thông trực tiếp tại cộng đồng", "Phòng chống bạo lực gia đình"),
        ("truyen thong phong chong bao luc gia dinh hom qua thon ta lu 1 30 nguoi",
         "Truyền thông trực tiếp tại cộng đồng", "Phòng chống bạo lực gia đình"),
        ("san khau hoa ve binh dang gioi hom qua thon ta lu 1 30 nguoi",
         "Truyền thông sân khấu hóa", "Bình đẳng giới"),
        ("truyền thông sân khấu hóa mua bán phụ nữ và trẻ em hôm qua thôn Tà Lú 1 30 người",
         "Truyền thông sân khấu hóa", "Phòng chống mua bán phụ nữ và trẻ em"),
    ],
)
def test_a_topic_word_is_the_topic_and_the_type_comes_from_activity_words(
        app, message, activity, topic):
    user = member(app)
    user.send(message)
    state = draft(app, user)
    assert state["type_name"] == activity
    assert state["topic"]["name"] == topic
    finish(user)
    report = stored(app)
    assert topic_name(app, report.topic_id) == topic
    with db_of(app).sessions() as session:
        from storage.models import ActivityType
        assert session.get_one(ActivityType, report.activity_type_id).name == activity


def test_two_activity_types_named_are_asked(app):
    user = member(app)
    user.send("clb doi thoai hom qua thon ta lu 1 30 nguoi")
    assert "type_id" not in draft(app, user)
    assert user.buttons() == short_labels(["Đối thoại chính sách",
                                           "Sinh hoạt CLB Thủ lĩnh của sự thay đổi"])
    user.press("Đối thoại chính sách")
    finish(user)
    with db_of(app).sessions() as session:
        from storage.models import ActivityType
        assert session.get_one(ActivityType, stored(app).activity_type_id).code == "policy_dialogue"


@pytest.mark.parametrize(
    ("village", "typed", "choices"),
    [
        ("ma ty", "thon ma ty", ["Ma Ty (Phước Tân)", "Ma Ty (Phước Thắng)"]),
        ("suoi da", "thon suoi da", ["Suối Đá (Phước Tiến)", "Suối Đá (Lợi Hải)"]),
    ],
)
def test_same_name_villages_are_asked_with_their_commune(app, village, typed, choices):
    user = member(app)
    user.send(f"truyen thong hom qua {typed} 30 nguoi")
    assert "area_id" not in draft(app, user)
    assert user.buttons() == choices
    user.press(choices[1])
    finish(user)
    report = stored(app)
    assert report.place_text == choices[1].split(" (")[0]
    with db_of(app).sessions() as session:
        assert session.get_one(Area, report.area_id).parent.name == choices[1].split("(")[1][:-1]


@pytest.mark.parametrize(
    ("own", "typed", "commune"),
    [
        ("nt.bac-ai.phuoc-thang.ma-ty", "thon ma ty", "Phước Thắng"),
        ("nt.bac-ai.phuoc-tan.ma-ty", "thon ma ty", "Phước Tân"),
        ("nt.thuan-bac.loi-hai.suoi-da", "thon suoi da", "Lợi Hải"),
        ("nt.bac-ai.phuoc-tien.suoi-da", "thon suoi da", "Phước Tiến"),
    ],
)
def test_same_name_villages_resolve_by_the_members_own_commune(app, own, typed, commune):
    user = member(app, own)
    user.send(f"truyen thong hom qua {typed} 30 nguoi")
    finish(user)
    with db_of(app).sessions() as session:
        assert session.get_one(Area, stored(app).area_id).parent.name == commune


def test_a_part_larger_than_the_total_is_said_not_dropped_silently(app):
    user = member(app)
    answer = user.text_of(user.send("truyen thong hom qua thon ta lu 1 30 nguoi 40 nu"))
    assert "(40)" in answer and "chưa ghi" in answer and "(30)" in answer
    assert "women" not in draft(app, user) and draft(app, user)["total"] == 30
    assert vi("Of them, how many women and girls?") in user.last_text()
    user.send("20")
    finish(user)
    assert (stored(app).total, stored(app).women) == (30, 20)


def test_a_future_date_is_said_not_dropped_silently(app, today):
    user = member(app)
    answer = user.text_of(user.send("truyen thong 5/3/2030 thon ta lu 1 30 nguoi"))
    assert "5/3/2030" in answer and "chưa ghi" in answer.lower()
    assert "date" not in draft(app, user)
    assert vi("On what date? (day/month/year)") in user.last_text()
    user.press(vi("Today"))
    finish(user)
    assert stored(app).activity_date == today


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("hop nhom 15/11 thon suoi da 12 nguoi 10 nu 3 tre em",
         {"total": 12, "women": 10, "children": 3, "day": (15, 11)}),
        ("hop to hom qua thon ta lu 2 25 nguoi", {"total": 25, "place_name": "Tà Lú 2"}),
        ("hom qua 30 nguoi 20 nu", {"total": 30, "women": 20}),
        ("hqua 18 nguoi, 9 phu nu", {"total": 18, "women": 9}),
        ("sinh hoạt tổ hôm qua 22 người", {"total": 22}),
    ],
)
def test_report_parts_without_an_activity_word_are_kept_and_the_type_asked(
        app, today, message, expected):
    user = member(app)
    answer = user.text_of(user.send(message))
    assert vi("Sorry, I did not understand.") not in answer
    assert vi("What activity are you reporting?") in user.last_text()
    state = draft(app, user)
    day = expected.pop("day", None)
    for key, value in expected.items():
        assert state[key] == value, key
    if day:
        year = today.year - ((day[1], day[0]) > (today.month, today.day))
        assert state["date"] == date(year, day[1], day[0]).isoformat()
    user.press("Truyền thông trực tiếp tại cộng đồng")
    finish(user, {"Suối Đá (Lợi Hải)": "Suối Đá (Lợi Hải)"})
    report = stored(app)
    assert report.total == expected["total"]
    assert report.women == expected.get("women", 0)


@pytest.mark.parametrize("message", ["xin chao ban", "abc xyz", "???"])
def test_nothing_understood_shows_what_a_quick_report_looks_like(app, message):
    user = member(app)
    answer = user.text_of(user.send(message))
    assert vi("Sorry, I did not understand.") in answer
    example = vi("communication yesterday in village {village}, 30 people, 20 women",
                 village="Tà Lú 1")
    assert example in answer
    # The example itself is a report that is understood.
    user.send(example)
    state = draft(app, user)
    assert (state["place_name"], state["total"], state["women"]) == ("Tà Lú 1", 30, 20)


def test_the_whole_summary_is_confirmed_before_saving(app):
    user = member(app)
    answer = user.text_of(user.send("truyen thong hom qua thon ta lu 1 30 nguoi 20 nu"))
    assert vi("I understood:") in answer
    assert "Tà Lú 1" in answer and "30" in answer
    with db_of(app).sessions() as session:
        assert session.scalar(select(Report)) is None


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("24/11", lambda t: date(t.year - ((t.month, t.day) < (11, 24)), 11, 24)),
     ("hqua", lambda t: t - timedelta(days=1))],
)
def test_a_typed_date_is_echoed_before_the_next_question(app, today, typed, shown):
    user = member(app)
    user.press(vi("Report an activity"))
    user.press("Truyền thông trực tiếp tại cộng đồng")
    answer = user.text_of(user.send(typed))
    assert f"Ngày: {shown(today):%d/%m/%Y}" in answer
    assert vi("Where did it take place? Choose your village or type the village name.") in answer


def test_a_typed_count_is_echoed_before_the_next_question(app):
    user = member(app)
    user.send("truyen thong hom qua thon ta lu 1")
    answer = user.text_of(user.send("khoảng 45"))
    assert "Số người tham gia: 45" in answer
    assert vi("Of them, how many women and girls?") in answer


# --- Everyday Vietnamese --------------------------------------------------------------------


@pytest.mark.parametrize("word", ["vâng", "vang", "ừ", "đồng ý ạ", "dong y a", "dạ", "ok",
                                  "OK nhé", "Đồng ý", "được", "da vang"])
def test_agreement_in_everyday_words_gives_consent(app, word):
    user = WebChatUser(app)
    user.send("xin chào")
    answer = user.text_of(user.send(word))
    assert vi("Thank you. Now let us find your team.") in answer


@pytest.mark.parametrize("word", ["ok", "vâng", "đồng ý ạ", "gửi"])
def test_agreement_at_the_summary_sends(app, word):
    user = member(app)
    user.send("truyen thong hom qua thon ta lu 1 30 nguoi 20 nu 10 dtts 5 tre em")
    while vi("Send") not in user.buttons():
        finish_one(user)
    assert "BC-" in user.text_of(user.send(word))
    assert stored(app).total == 30


def finish_one(user: WebChatUser) -> None:
    """Answer one question short of the summary."""
    buttons = user.buttons()
    for label in (vi("Done"), vi("No notes")):
        if label in buttons:
            user.press(label)
            return
    user.press(buttons[0])


def _last_weekday(today: date, weekday: int, weeks_back: int) -> date:
    monday = today - timedelta(days=today.weekday() + 7 * weeks_back)
    return monday + timedelta(days=weekday)


def _day_of_month(today: date, day: int) -> date:
    this = today.replace(day=day)
    if this <= today:
        return this
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=day)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("hqua", lambda t: t - timedelta(days=1)),
        ("hôm qua", lambda t: t - timedelta(days=1)),
        ("hôm trước", lambda t: t - timedelta(days=1)),
        ("hom truoc", lambda t: t - timedelta(days=1)),
        ("hôm kia", lambda t: t - timedelta(days=2)),
        ("hnay", lambda t: t),
        ("thứ 2 tuần trước", lambda t: _last_weekday(t, 0, 1)),
        ("thu 2 tuan truoc", lambda t: _last_weekday(t, 0, 1)),
        ("thứ năm tuần trước", lambda t: _last_weekday(t, 3, 1)),
        ("chủ nhật tuần trước", lambda t: _last_weekday(t, 6, 1)),
        ("ngày 1", lambda t: _day_of_month(t, 1)),
        ("ngày 5", lambda t: _day_of_month(t, 5)),
        ("mùng 5", lambda t: _day_of_month(t, 5)),
        ("2026-11-15", lambda t: date(2026, 11, 15)),
        ("15/11/2026", lambda t: date(2026, 11, 15)),
    ],
)
def test_relative_and_iso_dates_in_the_guided_flow(app, today, typed, expected):
    wanted = expected(today)
    if wanted > today:
        pytest.skip("this example's date is still ahead on the day the test runs")
    user = member(app)
    user.press(vi("Report an activity"))
    user.press("Truyền thông trực tiếp tại cộng đồng")
    answer = user.text_of(user.send(typed))
    assert f"Ngày: {wanted:%d/%m/%Y}" in answer
    assert draft(app, user)["date"] == wanted.isoformat()


@pytest.mark.parametrize("typed", ["tuần trước", "tuan truoc", "tuần vừa rồi"])
def test_last_week_asks_which_day(app, today, typed):
    user = member(app)
    user.press(vi("Report an activity"))
    user.press("Truyền thông trực tiếp tại cộng đồng")
    user.send(typed)
    monday = _last_weekday(today, 0, 1)
    days = [monday + timedelta(days=n) for n in range(7)]
    # Seven days are two pages: five and "More", then two and "Back to the first choices".
    assert user.buttons() == [f"{d:%d/%m}" for d in days[:5]] + [vi("More")]
    user.press(vi("More"))
    assert user.buttons() == [f"{d:%d/%m}" for d in days[5:]] + [vi("Back to the first choices")]
    user.press(vi("Back to the first choices"))
    assert "date" not in draft(app, user)
    user.press(f"{days[2]:%d/%m}")
    assert draft(app, user)["date"] == days[2].isoformat()


def test_last_week_in_a_quick_report_asks_which_day(app, today):
    user = member(app)
    user.send("truyen thong tuan truoc thon ta lu 1 30 nguoi")
    monday = _last_weekday(today, 0, 1)
    assert user.buttons()[0] == f"{monday:%d/%m}"
    user.press(f"{monday:%d/%m}")
    finish(user)
    assert stored(app).activity_date == monday


@pytest.mark.parametrize("typed", ["bc cua toi", "bc của tôi", "Báo cáo của tôi", "xem bao cao"])
def test_my_reports_in_everyday_words(app, typed):
    user = member(app)
    user.send("truyen thong hom qua thon ta lu 1 30 nguoi")
    finish(user)
    assert "BC-00001" in user.text_of(user.send(typed))


@pytest.mark.parametrize(
    ("typed", "place"),
    [("Tà Lú I", "Tà Lú 1"), ("ta lu II", "Tà Lú 2"), ("thon ta lu iii", "Tà Lú 3"),
     ("Trà Co II", "Trà Co 2"), ("hanh rac 2", "Hành Rạc 2"), ("talu2", "Tà Lú 2")],
)
def test_roman_numerals_and_no_diacritics_in_village_names(app, typed, place):
    user = member(app)
    user.press(vi("Report an activity"))
    user.press("Truyền thông trực tiếp tại cộng đồng")
    user.press(vi("Yesterday"))
    user.send(typed)
    assert draft(app, user)["place_name"] == place


def test_an_unsure_village_lists_the_best_match_first(app):
    user = member(app)
    user.press(vi("Report an activity"))
    user.press("Truyền thông trực tiếp tại cộng đồng")
    user.press(vi("Yesterday"))
    user.send("ta lu")
    assert user.buttons()[:3] == ["Tà Lú 1 (Phước Đại)", "Tà Lú 2 (Phước Đại)",
                                  "Tà Lú 3 (Phước Đại)"]


def test_typing_no_notes_is_not_a_note(app):
    user = member(app)
    user.send("truyen thong hom qua thon ta lu 1 30 nguoi 20 nu 10 dtts 5 tre em")
    while vi("No notes") not in user.buttons():
        finish_one(user)
    user.send("Không có ghi chú")
    assert vi("Please check your report:") in user.last_text()
    user.press(vi("Send"))
    assert stored(app).notes == ""


@pytest.mark.parametrize("typed", ["Hôm nay", "hom nay"])
def test_typing_a_date_button_does_what_pressing_it_does(app, today, typed):
    user = member(app)
    user.press(vi("Report an activity"))
    user.press("Truyền thông trực tiếp tại cộng đồng")
    user.send(typed)
    assert draft(app, user)["date"] == today.isoformat()


@pytest.mark.parametrize("typed", ["Tiếp tục", "tiep tuc"])
def test_continue_typed_is_not_a_date(app, typed):
    user = member(app)
    user.press(vi("Report an activity"))
    user.press("Truyền thông trực tiếp tại cộng đồng")
    answer = user.text_of(user.send(typed))
    assert vi("I did not understand that date. Type it as day/month/year, e.g. 05/03/2025.") \
        not in answer
    assert vi("On what date? (day/month/year)") in user.last_text()


# --- The bar: any village of the plan, any total ------------------------------------------


@pytest.mark.heavy
def test_any_plan_village_and_total_is_stored_exactly(app, today, monkeypatch):
    """Seeded sweep: each village of the plan once, with a random total 1-999, activity word,
    past date and spelling, "<activity word> <date> thon <village> <total> nguoi"."""
    import random

    from test_parsing_plan import ACTIVITY_WORDS, PLACES, _spellings

    # One member sends some six hundred messages here; the flood guard is not under test.
    for name in ("MESSAGES_PER_SESSION", "MESSAGES_PER_ADDRESS"):
        limit = getattr(web_guard, name)
        monkeypatch.setattr(web_guard, name, throttle.Limit(limit.bucket, 10**6, limit.window))
    rng = random.Random(12)
    user = member(app)
    for number, (village, commune) in enumerate(PLACES, start=1):
        total = rng.randint(1, 999)
        day = today - timedelta(days=rng.randint(0, 300))
        name = rng.choice(_spellings(village.name))
        word = rng.choice(ACTIVITY_WORDS)
        message = f"{word} {day:%d/%m/%Y} thon {name} {total} nguoi"
        user.send(message)
        label = f"{village.name} ({commune.name})"
        finish(user, {label: label})
        report = stored(app)
        assert report.id == number, message
        with db_of(app).sessions() as session:
            area = session.get_one(Area, report.area_id)
            assert (area.code, report.total, report.activity_date) == (village.code, total, day), \
                message


def test_a_range_typed_in_the_guided_flow_offers_its_bounds(app):
    user = member(app)
    user.send("truyen thong hom qua thon ta lu 1")
    user.send("30-40")
    assert user.buttons() == ["30", "40"]
    assert "total" not in draft(app, user)
    user.press("30")
    assert draft(app, user)["total"] == 30


def test_a_date_before_the_programme_is_said_with_the_reason(app):
    user = member(app)
    answer = user.text_of(user.send("truyen thong 5/3/2019 thon ta lu 1 30 nguoi"))
    assert "5/3/2019" in answer and "01/01/2022" in answer
    assert "date" not in draft(app, user)


@pytest.mark.parametrize(("typed", "expected"), [
    ("Liên kết ứng dụng khác", "Link another app"),
    ("lien ket ung dung khac", "Link another app"),
])
def test_typing_a_menu_buttons_words_does_what_pressing_it_does(app, typed, expected):
    user = member(app)
    pressed = user.text_of(user.press(vi(expected)))
    typed_answer = user.text_of(user.send(typed))
    # The same answer, but for the new link code it shows.
    assert typed_answer[:20] == pressed[:20]
    assert vi("Sorry, I did not understand.") not in typed_answer
