"""What volunteers type, read back: dates, counts, quick reports and identity numbers in notes."""

from __future__ import annotations

import string
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.parsing import (
    CountResult,
    DateResult,
    Participants,
    QuickReport,
    check_participants,
    find_sensitive,
    fold,
    format_date_input,
    parse_count,
    parse_date,
    parse_quick_report,
)

TODAY = date(2025, 6, 15)
EARLIEST = date(2022, 1, 1)
KEYWORDS = {
    "truyen thong": "communication",
    "san khau hoa": "drama",
    "doi thoai": "dialogue",
    "doi thoai chinh sach": "policy_dialogue",
    "clb": "club",
    "tap huan": "training",
    "tkvvtb": "savings",
    "cong nghe 4.0": "tech",
}
# Fixed seeds keep CI reproducible; no deadline because shared CI machines stall at random.
FUZZ = settings(max_examples=200, deadline=None, derandomize=True)

# Text heavy in the characters the parsers care about, so fuzzing reaches the interesting paths.
_TRICKY = st.text(
    alphabet=st.sampled_from(list("0123456789 /.,-+:;~\t\nđĐôơưếữạhomnaqutgyikdrsc😀\x00\u0301")),
    max_size=80,
)
ANY_TEXT = st.one_of(st.text(max_size=300), _TRICKY)
LOWER_WORDS = st.lists(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8), max_size=5)


def _date(text: str) -> DateResult:
    return parse_date(text, TODAY, EARLIEST)


def _quick(text: str) -> QuickReport:
    return parse_quick_report(text, TODAY, EARLIEST, KEYWORDS)


# --- fold ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hôm Nay", "hom nay"),
        ("  Đối   THOẠI\tchính sách ", "doi thoai chinh sach"),
        ("Tà-Lú 1!", "ta lu 1"),
        ("đđĐ", "ddd"),
        ("😀", ""),
        ("", ""),
        ("Nữ và trẻ em gái", "nu va tre em gai"),
    ],
)
def test_fold(text, expected):
    assert fold(text) == expected


# --- dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hôm nay", TODAY),
        ("Hôm Nay", TODAY),
        ("hom nay", TODAY),
        ("homnay", TODAY),
        ("today", TODAY),
        ("hôm qua", date(2025, 6, 14)),
        ("homqua", date(2025, 6, 14)),
        ("Yesterday", date(2025, 6, 14)),
        ("hôm kia", date(2025, 6, 13)),
        ("5/3", date(2025, 3, 5)),
        ("05/03", date(2025, 3, 5)),
        ("5-3", date(2025, 3, 5)),
        ("5.3", date(2025, 3, 5)),
        ("15/6", TODAY),
        # Without a year, a day still ahead this year is last year's.
        ("16/6", date(2024, 6, 16)),
        ("24/12", date(2024, 12, 24)),
        ("5/3/25", date(2025, 3, 5)),
        ("05/03/2025", date(2025, 3, 5)),
        ("05-03-2025", date(2025, 3, 5)),
        ("05.03.2025", date(2025, 3, 5)),
        ("5 / 3 / 2024", date(2024, 3, 5)),
        ("ngay 5/3", date(2025, 3, 5)),
        ("ngày 05/03/2025", date(2025, 3, 5)),
        ("Ngày: 05/03/2025.", date(2025, 3, 5)),
        ("5 tháng 3", date(2025, 3, 5)),
        ("5 thang 3", date(2025, 3, 5)),
        ("5 thg 3", date(2025, 3, 5)),
        ("5 thang 3 nam 2025", date(2025, 3, 5)),
        ("ngày 5 tháng 3 năm 2024", date(2024, 3, 5)),
        ("5 thang 3 2025", date(2025, 3, 5)),
        ("  5/3  ", date(2025, 3, 5)),
        ("\n05/03/2025\t", date(2025, 3, 5)),
        ("29/2/2024", date(2024, 2, 29)),
        ("1/1/2022", EARLIEST),
    ],
)
def test_parse_date_accepts(text, expected):
    assert _date(text) == DateResult(expected, None)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("\t\n", "empty"),
        ("😀", "format"),
        ("😀😀😀", "format"),
        ("\x00\x07", "format"),
        ("mai", "format"),
        ("hôm sau", "format"),
        ("5", "format"),
        ("5/3/202", "format"),
        ("100/1", "format"),
        ("5/3 hoặc 6/3", "format"),
        ("x" * 5000, "format"),
        ("1" * 5000, "format"),
        # Only the start of huge input is read, so a date far into it is not found.
        ("a" * 4990 + " 5/3/2025", "format"),
        ("31/2", "invalid"),
        ("29/2/2023", "invalid"),
        ("32/1/2025", "invalid"),
        ("0/5", "invalid"),
        ("5/0", "invalid"),
        ("5/13", "invalid"),
        ("5 thang 13", "invalid"),
        ("5/3/2030", "future"),
        ("29/2", "invalid"),
        ("16/06/2025", "future"),
        ("1/1/2021", "too_early"),
        ("31/12/2021", "too_early"),
    ],
)
def test_parse_date_errors(text, error):
    assert _date(text) == DateResult(None, error)


def test_relative_dates_before_earliest_are_too_early():
    assert parse_date("hôm kia", date(2022, 1, 2), EARLIEST) == DateResult(None, "too_early")
    assert parse_date("hôm qua", date.min, date.min) == DateResult(None, "too_early")


def test_format_date_input_pads():
    assert format_date_input(date(2025, 3, 5)) == "05/03/2025"


@FUZZ
@given(st.dates(min_value=EARLIEST, max_value=TODAY))
def test_date_round_trips(d):
    assert _date(format_date_input(d)) == DateResult(d, None)


@FUZZ
@given(st.dates(min_value=EARLIEST, max_value=TODAY), st.sampled_from("/-."))
def test_unpadded_date_round_trips(d, sep):
    assert _date(f"{d.day}{sep}{d.month}{sep}{d.year}") == DateResult(d, None)


@FUZZ
@given(st.dates(min_value=TODAY + timedelta(days=1)))
def test_future_dates_refused(d):
    assert _date(format_date_input(d)) == DateResult(None, "future")


# --- counts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30", 30),
        (" 30 ", 30),
        ("0", 0),
        ("007", 7),
        ("khoảng 30", 30),
        ("khoang 30", 30),
        ("30 người", 30),
        ("30 nguoi", 30),
        ("~30", 30),
        ("gần 30", 30),
        ("hơn 30", 30),
        ("30 ng", 30),
        ("30ng", 30),
        ("30.", 30),
        ("1.200", 1200),
        ("1,200", 1200),
        ("12.345", 12345),
        ("khong", 0),
        ("không", 0),
        ("không có", 0),
        ("Không có ai", 0),
        ("ko", 0),
        ("100000", 100000),
    ],
)
def test_parse_count_accepts(text, expected):
    assert parse_count(text) == CountResult(expected, None)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "not_number"),
        ("😀", "not_number"),
        ("ba mươi", "not_number"),
        ("không biết", "not_number"),
        ("x" * 5000, "not_number"),
        ("-5", "negative"),
        ("âm 5", "negative"),
        ("2,5", "fraction"),
        ("2.5", "fraction"),
        ("1.20", "fraction"),
        ("1.2000", "fraction"),
        ("1.200,5", "fraction"),
        ("30 hoặc 40", "ambiguous"),
        ("30 hoac 40", "ambiguous"),
        ("30-40", "ambiguous"),
        ("30 40", "ambiguous"),
        ("100001", "too_large"),
        ("1.200.000", "too_large"),
        ("9" * 150, "too_large"),
    ],
)
def test_parse_count_errors(text, error):
    result = parse_count(text)
    assert (result.value, result.error) == (None, error)


@pytest.mark.parametrize(
    ("text", "choices"),
    [("30-40", (30, 40)), ("30 - 40", (30, 40)), ("30 hoặc 40", (30, 40)),
     ("30 đến 40", (30, 40)), ("30 40", ()), ("30 người 40 nữ", ())],
)
def test_parse_count_offers_the_bounds_of_a_range(text, choices):
    assert parse_count(text) == CountResult(None, "ambiguous", choices)


def test_parse_count_respects_maximum():
    assert parse_count("51", maximum=50) == CountResult(None, "too_large")
    assert parse_count("50", maximum=50) == CountResult(50, None)


@FUZZ
@given(st.integers(min_value=0, max_value=100000))
def test_counts_read_back(n):
    assert parse_count(str(n)) == CountResult(n, None)
    assert parse_count(f"khoảng {n}") == CountResult(n, None)
    assert parse_count(f"{n} người") == CountResult(n, None)


@FUZZ
@given(st.integers(min_value=1000, max_value=100000), st.sampled_from(".,"))
def test_grouped_counts_read_back(n, sep):
    assert parse_count(f"{n:,}".replace(",", sep)) == CountResult(n, None)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((30, 20, 25, 5), None),
        ((30, 30, 30, 30), None),
        ((30, None, None, None), None),
        ((0, 0, 0, 0), None),
        ((30, 31, 0, 0), "part_exceeds_total:women"),
        ((30, None, 31, 0), "part_exceeds_total:ethnic"),
        ((30, 1, 2, 40), "part_exceeds_total:children"),
        ((10, 11, 12, 13), "part_exceeds_total:women"),
    ],
)
def test_check_participants(parts, expected):
    assert check_participants(*parts) == expected


def test_participants_holds_counts():
    assert Participants(30, 20, 25, 5).women == 20


# --- identity numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gọi 0912345678 nhé", [("phone", "0912345678")]),
        ("sdt:0912345678", [("phone", "0912345678")]),
        ("0912.345.678", [("phone", "0912.345.678")]),
        ("0912-345-678", [("phone", "0912-345-678")]),
        ("091 234 5678", [("phone", "091 234 5678")]),
        ("0912 345 678.", [("phone", "0912 345 678")]),
        ("+84 912 345 678", [("phone", "+84 912 345 678")]),
        ("+84912345678", [("phone", "+84912345678")]),
        ("84912345678", [("phone", "84912345678")]),
        ("(+84) 0912345678", [("phone", "0912345678")]),
        ("+84 0912 345 678", [("phone", "+84 0912 345 678")]),
        ("024 3825 1234", [("phone", "024 3825 1234")]),
        ("cmnd 123456789", [("id_number", "123456789")]),
        ("cmnd 123 456 789", [("id_number", "123 456 789")]),
        ("cmnd 123.456.789", [("id_number", "123.456.789")]),
        ("cccd 001234567890", [("id_number", "001234567890")]),
        ("cccd 001 234 567 890", [("id_number", "001 234 567 890")]),
        ("cccd 0012.3456.7890", [("id_number", "0012.3456.7890")]),
        (
            "chị A 0987654321, cmnd 123456789",
            [("phone", "0987654321"), ("id_number", "123456789")],
        ),
        ("ngày 05.03.2025 gọi 0912345678", [("phone", "0912345678")]),
        ("0912345678 0987654321", [("phone", "0912345678"), ("phone", "0987654321")]),
    ],
)
def test_find_sensitive_flags(text, expected):
    assert find_sensitive(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "30 người tham gia",
        "năm 2025",
        "ngày 05/03/2025",
        "ngày 05.03.2025 có 30 người",
        "05-03-2025 30 người",
        "1.200 người",
        "1,200 người",
        "hỗ trợ 120.000.000 đồng",
        "hỗ trợ 123456789 đ",
        "12345678",
        "12345678901234",
        "0912345",
        "lớp 5 12 em",
        "😀" * 100,
    ],
)
def test_find_sensitive_leaves_ordinary_numbers(text):
    assert find_sensitive(text) == []


@FUZZ
@given(LOWER_WORDS, st.text(alphabet=string.digits, min_size=9, max_size=9), LOWER_WORDS)
def test_any_phone_in_words_is_flagged(before, rest, after):
    phone = "0" + rest
    found = find_sensitive(" ".join([*before, phone, *after]))
    assert found == [("phone", phone)]


@FUZZ
@given(LOWER_WORDS, st.integers(min_value=0, max_value=9999), LOWER_WORDS, st.booleans())
def test_short_numbers_never_flagged(before, n, after, padded):
    number = f"{n:04d}" if padded else str(n)
    assert find_sensitive(" ".join([*before, number, *after])) == []


# --- quick report -------------------------------------------------------------------------


def _report(**fields: object) -> QuickReport:
    base: dict[str, object] = {
        "activity_keyword": None, "date": None, "place_text": None, "total": None,
        "women": None, "ethnic": None, "children": None, "leftovers": "",
    }
    base.update(fields)
    return QuickReport(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "truyen thong hom qua ta lu 1, 30 nguoi, 20 nu, 25 dtts, 5 tre em",
            _report(activity_keyword="communication", date=date(2025, 6, 14), total=30,
                    women=20, ethnic=25, children=5, leftovers="ta lu 1"),
        ),
        (
            "doi thoai 12/3 thon ma ty 45 nguoi 30 phu nu",
            _report(activity_keyword="dialogue", date=date(2025, 3, 12),
                    place_text="thon ma ty", total=45, women=30),
        ),
        (
            "Truyền thông hôm qua ở Tà Lú 1, 30 người, 20 nữ, 5 trẻ em",
            _report(activity_keyword="communication", date=date(2025, 6, 14),
                    place_text="Tà Lú 1", total=30, women=20, children=5),
        ),
        (
            "Đối thoại chính sách ngày 5/3 thôn 2, tổng số: 40, nữ: 12, dân tộc: 30",
            _report(activity_keyword="policy_dialogue", date=date(2025, 3, 5),
                    place_text="thôn 2", total=40, women=12, ethnic=30),
        ),
        (
            "tap huan hom nay tai nha van hoa 25",
            _report(activity_keyword="training", date=TODAY, place_text="nha van hoa", total=25),
        ),
        (
            "clb 05/03/2025 nu 20 dtts 15 tong 40",
            _report(activity_keyword="club", date=date(2025, 3, 5), total=40, women=20,
                    ethnic=15),
        ),
        (
            "san khau hoa, 50 nguoi tham gia, 30 chi em, 10 tre duoi 16",
            _report(activity_keyword="drama", total=50, women=30, children=10),
        ),
        (
            "tkvvtb 1.200 nguoi 300 nguoi dan toc thieu so 40 hoc sinh",
            _report(activity_keyword="savings", total=1200, ethnic=300, children=40),
        ),
        (
            "cong nghe 4.0 hom nay 30 nguoi",
            _report(activity_keyword="tech", date=TODAY, total=30),
        ),
        (
            "truyen thong 10-12 nguoi",
            _report(activity_keyword="communication", ranges=(("total", 10, 12),)),
        ),
        (
            "truyen thong 5/3/2030 30 nguoi",
            _report(activity_keyword="communication", total=30, leftovers="5/3/2030",
                    date_problem=("future", "5/3/2030")),
        ),
        (
            "truyen thong 30 nguoi, goi 0912345678",
            _report(activity_keyword="communication", total=30, leftovers="goi 0912345678"),
        ),
        (
            "truyen thong thon ta lu 1 30",
            _report(activity_keyword="communication", place_text="thon ta lu 1", total=30),
        ),
        (
            "truyen thong ta lu 1, 30",
            _report(activity_keyword="communication", total=30, leftovers="ta lu 1"),
        ),
        (
            "truyen thong thon 2 30",
            _report(activity_keyword="communication", place_text="thon 2", total=30),
        ),
        (
            "truyen thong 30 nguoi 40 nguoi",
            _report(activity_keyword="communication", total=30, leftovers="40 nguoi"),
        ),
        ("asdf qwer", _report(leftovers="asdf qwer")),
        ("😀😀", _report(leftovers="😀😀")),
        ("", _report()),
        ("   ", _report()),
    ],
)
def test_quick_report_examples(text, expected):
    assert _quick(text) == expected


def test_quick_report_longest_keyword_wins():
    assert _quick("doi thoai chinh sach hom nay").activity_keyword == "policy_dialogue"
    # Two activity types named: neither is guessed, both are offered.
    quick = _quick("clb doi thoai hom nay")
    assert (quick.activity_keyword, quick.activity_codes) == (None, ("club", "dialogue"))


def test_quick_report_folds_keywords_it_is_given():
    quick = parse_quick_report("Sân khấu hóa hôm nay", TODAY, EARLIEST, {"Sân Khấu Hóa": "drama"})
    assert quick.activity_keyword == "drama"


def test_quick_report_date_before_a_label_is_still_a_date():
    quick = _quick("truyen thong 12/3 tre em 30")
    assert (quick.date, quick.children, quick.total) == (date(2025, 3, 12), 30, None)


def test_quick_report_keeps_tail_of_huge_input():
    quick = _quick("truyen thong 30 nguoi " + "x" * 5000)
    assert quick.total == 30
    assert quick.leftovers == "x" * 5000


@FUZZ
@given(
    st.dates(min_value=EARLIEST, max_value=TODAY),
    st.integers(min_value=0, max_value=100000).flatmap(
        lambda total: st.tuples(
            st.just(total),
            st.integers(min_value=0, max_value=total),
            st.integers(min_value=0, max_value=total),
            st.integers(min_value=0, max_value=total),
        )
    ),
)
def test_quick_report_reads_generated_reports(day, counts):
    total, women, ethnic, children = counts
    text = (
        f"truyen thong {format_date_input(day)} {total} nguoi {women} nu "
        f"{ethnic} dtts {children} tre em"
    )
    assert _quick(text) == _report(
        activity_keyword="communication", date=day, total=total, women=women, ethnic=ethnic,
        children=children,
    )


# --- never raising ------------------------------------------------------------------------


@FUZZ
@given(ANY_TEXT)
def test_nothing_raises_on_any_text(text):
    fold(text)
    date_result = _date(text)
    assert (date_result.value is None) != (date_result.error is None)
    count = parse_count(text)
    assert (count.value is None) != (count.error is None)
    for kind, matched in find_sensitive(text):
        assert kind in {"phone", "id_number"}
        assert matched in text
    quick = _quick(text)
    assert isinstance(quick.leftovers, str)


@FUZZ
@given(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.one_of(st.none(), st.integers(min_value=-(10**6), max_value=10**6)),
    st.one_of(st.none(), st.integers(min_value=-(10**6), max_value=10**6)),
    st.one_of(st.none(), st.integers(min_value=-(10**6), max_value=10**6)),
)
def test_check_participants_never_raises(total, women, ethnic, children):
    result = check_participants(total, women, ethnic, children)
    assert result is None or result.startswith("part_exceeds_total:")
