"""Properties of reading quick reports against the shipped plan's own villages, types, topics."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import DEFAULT_PLAN
from handlers.parsing import (
    DateResult,
    arabic_numerals,
    find_village,
    fold,
    format_date_input,
    is_agreement,
    match_villages,
    parse_count,
    parse_date,
    parse_quick_report,
    topic_phrases,
    vocabulary,
)
from storage.plan_file import AreaSpec, read_plan_file
from storage.values import Village

PLAN = read_plan_file(DEFAULT_PLAN)
TODAY = date(2026, 12, 1)
EARLIEST = PLAN.phase_start


def _villages(area: AreaSpec, parent: AreaSpec | None = None) -> list[tuple[AreaSpec, AreaSpec]]:
    found = [(area, parent)] if area.level == "village" and parent is not None else []
    for child in area.children:
        found += _villages(child, area)
    return found


# Ids stand in for database ids: the position in the plan.
PLACES = _villages(PLAN.areas)
VILLAGES = [Village(i, v.name, hash(c.code) % 10_000, c.name) for i, (v, c) in enumerate(PLACES)]
SAME_NAME = {v.name: tuple(w.id for w in VILLAGES if w.name == v.name) for v in VILLAGES}
TOPICS = dict(PLAN.topics)
KEYWORDS = {k: t.code for t in PLAN.activity_types for k in (*t.keywords, t.name)}
# A keyword that is also a topic's words ("bao luc gia dinh") is read as the topic.
ACTIVITY_WORDS = sorted({k for t in PLAN.activity_types for k in t.keywords
                         if fold(k) not in topic_phrases(TOPICS)})
ROMAN = {n: r for r, n in vocabulary().roman.items()}
FUZZ = settings(max_examples=300, deadline=None, derandomize=True)


def _quick(text: str):
    return parse_quick_report(text, TODAY, EARLIEST, KEYWORDS, VILLAGES, TOPICS)


def _spellings(name: str) -> list[str]:
    """How members type a village name: as written, without diacritics, with a Roman numeral."""
    typed = [name, fold(name), fold(name).title()]
    words = name.split()
    if len(words) > 1 and words[-1].isdigit() and int(words[-1]) in ROMAN:
        typed += [" ".join([*words[:-1], ROMAN[int(words[-1])].upper()]),
                  " ".join([*fold(name).split()[:-1], ROMAN[int(words[-1])]])]
    return typed


def test_the_plan_has_the_villages_the_issue_names():
    names = [v.name for v in VILLAGES]
    assert len(names) >= 70
    assert names.count("Ma Ty") == 2 and names.count("Suối Đá") == 2


@FUZZ
@given(st.sampled_from(VILLAGES), st.integers(min_value=1, max_value=999),
       st.sampled_from(ACTIVITY_WORDS),
       st.dates(min_value=EARLIEST, max_value=TODAY), st.integers(min_value=0, max_value=4))
def test_any_village_and_total_is_read_exactly(village, total, word, day, spelling):
    typed = _spellings(village.name)
    name = typed[spelling % len(typed)]
    quick = _quick(f"{word} {format_date_input(day)} thon {name} {total} nguoi")
    assert quick.village_ids == SAME_NAME[village.name]
    assert quick.total == total
    assert quick.date == day
    assert quick.activity_keyword == KEYWORDS[word]
    assert (quick.ranges, quick.out_of_range) == ((), ())


@pytest.mark.parametrize("village", VILLAGES, ids=lambda v: v.name)
def test_every_spelling_of_every_village_is_found(village):
    for typed in _spellings(village.name):
        assert match_villages(typed, VILLAGES) == SAME_NAME[village.name], typed
        assert match_villages(f"thôn {typed}", VILLAGES) == SAME_NAME[village.name], typed
        hit = find_village(fold(f"o thon {typed} 30 nguoi"), VILLAGES)
        assert hit is not None and hit.ids == SAME_NAME[village.name], typed


@FUZZ
@given(st.integers(min_value=1000, max_value=100_000), st.sampled_from([" ", ".", ","]))
def test_thousands_separators_make_one_number(n, separator):
    written = f"{n:,}".replace(",", separator)
    quick = _quick(f"truyen thong hom qua thon ta lu 1 {written} nguoi")
    assert quick.total == n and quick.village_ids == SAME_NAME["Tà Lú 1"]
    assert parse_count(written) .value == n


@FUZZ
@given(st.integers(min_value=100_001, max_value=10**12), st.sampled_from(["", " ", "."]))
def test_counts_out_of_range_are_never_cut(n, separator):
    written = f"{n:,}".replace(",", separator) if separator else str(n)
    quick = _quick(f"truyen thong hom qua thon ta lu 1 {written} nguoi")
    assert quick.total is None
    assert quick.out_of_range == (("total", written),)


@FUZZ
@given(st.integers(min_value=1, max_value=998), st.integers(min_value=1, max_value=500),
       st.sampled_from(["-", " - ", " đến ", " den ", " hoặc ", " toi "]),
       st.sampled_from(VILLAGES))
def test_ranges_are_asked_with_their_bounds(low, extra, joint, village):
    high = low + extra
    quick = _quick(f"truyen thong hom qua thon {village.name}, {low}{joint}{high} nguoi")
    assert quick.total is None
    assert quick.ranges == (("total", low, high),)
    assert quick.village_ids == SAME_NAME[village.name]
    assert parse_count(f"{low}{joint}{high}").choices == (low, high)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("Tà Lú I", "Tà Lú 1"), ("ta lu ii", "ta lu 2"), ("Trà Co II", "Trà Co 2"),
     ("Ú", "Ú"), ("thôn I", "thôn 1"), ("Đầu Suối A", "Đầu Suối A")],
)
def test_arabic_numerals(typed, expected):
    assert arabic_numerals(typed) == expected


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("truyền thông phòng chống bạo lực gia đình hôm qua thôn Tà Lú 1, 30 người",
         {"activity_keyword": "direct_communication", "topic_code": "domestic_violence"}),
        ("ho tro nan nhan bao luc gia dinh hom qua thon ta lu 1 1 nguoi",
         {"activity_keyword": "trusted_address_case", "topic_code": "domestic_violence"}),
        ("truyen thong san khau hoa hom qua thon ta lu 1 30 nguoi",
         {"activity_keyword": "staged_communication"}),
        ("clb doi thoai hom qua thon ta lu 1 30 nguoi",
         {"activity_keyword": None, "activity_codes": ("club_meeting", "policy_dialogue")}),
        ("hop nhom 15/11 thon suoi da 12 nguoi 10 nu 3 tre em",
         {"activity_keyword": None, "report_words": True, "date": date(2026, 11, 15),
          "village_ids": SAME_NAME["Suối Đá"], "total": 12, "women": 10, "children": 3}),
        ("hom qua 30 nguoi 20 nu",
         {"date": TODAY - timedelta(days=1), "total": 30, "women": 20}),
        ("truyen thong tuan truoc thon ta lu 1 30 nguoi",
         {"date": None, "date_week": date(2026, 11, 23)}),
        ("truyen thong 2026-11-15 thon do 30 nguoi",
         {"date": date(2026, 11, 15), "village_ids": SAME_NAME["Do"]}),
        # Short names are villages only after "thôn": "gia đình" is not the village Giá.
        ("truyen thong gia dinh hom qua 30 nguoi", {"village_ids": ()}),
        ("truyen thong hom qua thon ta lu 1 0 nguoi", {"total": 0}),
        ("truyen thong hom qua thon xom bang 2 25 nguoi",
         {"village_ids": SAME_NAME["Xóm Bằng 2"], "total": 25}),
        ("bao luc gia dinh hom qua thon ta lu 1 30 nguoi",
         {"activity_keyword": None, "topic_code": "domestic_violence", "total": 30}),
        ("truyen thong hom qua thon xom bang 25 nguoi",
         {"village_ids": SAME_NAME["Xóm Bằng"], "total": 25}),
    ],
)
def test_quick_reports_against_the_plan(text, fields):
    quick = _quick(text)
    assert {name: getattr(quick, name) for name in fields} == fields


_PIECES = [*"0123456789 /.,-:;thonaluiv đĐôơưếữạmgyckdrs", "thôn ", "Tà Lú ", "người ", " nữ",
           "hôm qua", " đến ", "II"]
_TRICKY = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


@FUZZ
@given(st.one_of(st.text(max_size=300), _TRICKY))
def test_reading_any_text_against_the_plan_never_raises(text):
    quick = _quick(text)
    assert isinstance(quick.leftovers, str)
    assert all(i in {v.id for v in VILLAGES} for i in quick.village_ids)
    for _name, low, high in quick.ranges:
        assert low <= high
    assert quick.total is None or 0 <= quick.total <= 100_000


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        # 1 December 2026 is a Tuesday.
        ("hqua", date(2026, 11, 30)), ("bữa qua", date(2026, 11, 30)),
        ("hôm trước", date(2026, 11, 30)), ("hnay", TODAY), ("hôm kia", date(2026, 11, 29)),
        ("thứ 2 tuần trước", date(2026, 11, 23)), ("Thứ Hai tuần trước", date(2026, 11, 23)),
        ("t7 tuan truoc", date(2026, 11, 28)), ("chủ nhật tuần trước", date(2026, 11, 29)),
        ("thứ 2", date(2026, 11, 30)), ("thu 3", TODAY), ("cn", date(2026, 11, 29)),
        ("thứ 2 tuần này", date(2026, 11, 30)),
        ("ngày 1", TODAY), ("ngày 5", date(2026, 11, 5)), ("mùng 5", date(2026, 11, 5)),
        ("ngay 30", date(2026, 11, 30)),
        ("2026-11-15", date(2026, 11, 15)), ("2026/11/15", date(2026, 11, 15)),
        ("15/11", date(2026, 11, 15)), ("24/12", date(2025, 12, 24)),
    ],
)
def test_everyday_dates(typed, expected):
    assert parse_date(typed, TODAY, EARLIEST) == DateResult(expected, None)


@pytest.mark.parametrize(("typed", "error"), [
    ("thứ 4 tuần này", "future"), ("ngày 31", "invalid"), ("2026-02-30", "invalid"),
    ("2027-01-01", "future"),
])
def test_everyday_dates_refused(typed, error):
    assert parse_date(typed, TODAY, EARLIEST).error == error


@pytest.mark.parametrize("typed", ["tuần trước", "tuan truoc", "tuần vừa rồi", "tuan roi"])
def test_last_week_is_asked_by_day(typed):
    assert parse_date(typed, TODAY, EARLIEST) == DateResult(None, "week", date(2026, 11, 23))


@pytest.mark.parametrize("word", ["vâng", "ừ", "đồng ý ạ", "dạ", "ok", "OK nhé", "Dạ vâng ạ",
                                  "được", "đúng rồi", "uh"])
def test_agreement(word):
    assert is_agreement(word)


@pytest.mark.parametrize("word", ["không", "không đồng ý", "ko", "sai", "đồng ý không", ""])
def test_not_agreement(word):
    assert not is_agreement(word)
