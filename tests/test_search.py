"""Finding areas and teams by what a volunteer types: no diacritics, any spacing, typos."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storage.db import Database
from storage.models import Area, Team, TeamKind
from storage.search import NameMatch, search_areas, search_teams
from storage.textfold import fold_name, fold_words


def find(db: Database, text: str, **scope: object) -> list[NameMatch]:
    with db.sessions() as session:
        return search_areas(session, text, **scope)  # type: ignore[arg-type]


def area_id(db: Database, code: str) -> int:
    with db.sessions() as session:
        found = session.scalar(select(Area.id).where(Area.code == code))
        assert found is not None
        return found


# --- folding -------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "folded"), [
    ("Tà Lú 1", "talu1"),
    ("TA LU 1", "talu1"),
    ("Xã Phước Đại", "xaphuocdai"),
    ("ĐÁ MÀI DƯỚI", "damaiduoi"),
    (unicodedata.normalize("NFD", "Suối Đá"), "suoida"),
    ("  Ma-Ty!! ", "maty"),
    ("😀", ""),
])
def test_fold_name(typed: str, folded: str) -> None:
    assert fold_name(typed) == folded


def test_fold_words_keeps_single_spaces() -> None:
    assert fold_words("  Thôn   Tà Lú\t1 ") == "thon ta lu 1"


# --- the shipped plan ----------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["ta lu 1", "TaLu1", "Tà Lú 1", "TA LU 1", "  ta   lu 1 ",
                                   "thon ta lu 1", "Thôn Tà Lú 1"])
def test_ta_lu_1_however_it_is_typed(shared_plan_db: Database, typed: str) -> None:
    hits = find(shared_plan_db, typed)
    assert hits[0].code == "nt.bac-ai.phuoc-dai.ta-lu-1"
    assert (hits[0].name, hits[0].level, hits[0].rank) == ("Tà Lú 1", "village", 0)
    assert [h.name for h in hits].count("Tà Lú 1") == 1


@pytest.mark.parametrize("typed", ["phuoc dai", "xa phuoc dai", "Xã Phước Đại", "PHUOCDAI"])
def test_commune_phuoc_dai(shared_plan_db: Database, typed: str) -> None:
    hits = find(shared_plan_db, typed)
    assert (hits[0].code, hits[0].name, hits[0].level, hits[0].rank) == (
        "nt.bac-ai.phuoc-dai", "Phước Đại", "commune", 0)


def test_prefix_ranks_after_exact(shared_plan_db: Database) -> None:
    hits = find(shared_plan_db, "ta lu")
    assert [h.name for h in hits[:3]] == ["Tà Lú 1", "Tà Lú 2", "Tà Lú 3"]
    assert {h.rank for h in hits[:3]} == {1}
    hits = find(shared_plan_db, "phuoc")
    assert len(hits) == 8  # the default limit; Bác Ái alone has nine Phước… communes
    assert all(h.rank == 1 and h.name.startswith("Phước") for h in hits)


def test_contains_ranks_2(shared_plan_db: Database) -> None:
    hits = find(shared_plan_db, "mai duoi")
    assert [(h.name, h.rank) for h in hits] == [("Đá Mài Dưới", 2)]


@pytest.mark.parametrize(("typed", "name"), [("ma ty", "Ma Ty"), ("suoi da", "Suối Đá")])
def test_repeated_names_return_both(shared_plan_db: Database, typed: str, name: str) -> None:
    hits = find(shared_plan_db, typed)
    assert [(h.name, h.rank) for h in hits[:2]] == [(name, 0), (name, 0)]
    assert len({h.code for h in hits[:2]}) == 2
    assert all(h.name != name for h in hits[2:])


@pytest.mark.parametrize(("typed", "code"), [
    ("phuoc daj", "nt.bac-ai.phuoc-dai"),
    ("ta luu 1", "nt.bac-ai.phuoc-dai.ta-lu-1"),
    ("da mai duoj", "nt.thuan-bac.phuoc-khang.da-mai-duoi"),
])
def test_typos_still_find_the_place(shared_plan_db: Database, typed: str, code: str) -> None:
    hits = find(shared_plan_db, typed)
    assert hits, typed
    assert (hits[0].code, hits[0].rank) == (code, 3)
    assert find(shared_plan_db, typed, fuzzy=False) == []


def test_scope_by_level(shared_plan_db: Database) -> None:
    assert [h.level for h in find(shared_plan_db, "phuoc dai", level="commune")] == ["commune"]
    villages = find(shared_plan_db, "phuoc", level="village")
    assert all(h.level == "village" for h in villages)
    assert not any(h.name.startswith("Phước") for h in villages)
    assert find(shared_plan_db, "ma ty", level="commune", fuzzy=False) == []


def test_scope_by_parent(shared_plan_db: Database) -> None:
    phuoc_tan = area_id(shared_plan_db, "nt.bac-ai.phuoc-tan")
    phuoc_thang = area_id(shared_plan_db, "nt.bac-ai.phuoc-thang")
    assert [h.code for h in find(shared_plan_db, "ma ty", parent_id=phuoc_tan)] == [
        "nt.bac-ai.phuoc-tan.ma-ty"]
    assert [h.code for h in find(shared_plan_db, "ma ty", parent_id=phuoc_thang)] == [
        "nt.bac-ai.phuoc-thang.ma-ty"]
    # Tà Lú 1 is not in Phước Tân, and a typo search stays inside the scope too.
    assert all(h.code.startswith("nt.bac-ai.phuoc-tan.")
               for h in find(shared_plan_db, "ta lu 1", parent_id=phuoc_tan))


def test_scope_within_ids(shared_plan_db: Database) -> None:
    one = area_id(shared_plan_db, "nt.thuan-bac.loi-hai.suoi-da")
    assert [h.code for h in find(shared_plan_db, "suoi da", within_ids=[one])] == [
        "nt.thuan-bac.loi-hai.suoi-da"]
    assert find(shared_plan_db, "suoi da", within_ids=[]) == []


def test_inactive_areas_are_not_found(plan_db: Database) -> None:
    with plan_db.transaction() as session:
        row = session.scalar(select(Area).where(Area.code == "nt.bac-ai.phuoc-dai.chau-dac"))
        assert row is not None
        row.active = False
    assert find(plan_db, "chau dac", fuzzy=False) == []
    assert all(h.name != "Châu Đắc" for h in find(plan_db, "chau dac"))


@pytest.mark.parametrize("typed", ["", "   ", "😀", "🙂🙂 !!", "-", "?" * 50, "a" * 5000,
                                   "tà lú " * 1000, "\x00", "%", "_", "ta%lu", "x' OR '1'='1"])
def test_odd_input_returns_without_raising(shared_plan_db: Database, typed: str) -> None:
    hits = find(shared_plan_db, typed)
    assert isinstance(hits, list)
    if not fold_name(typed):
        assert hits == []


def test_empty_and_emoji_return_nothing(shared_plan_db: Database) -> None:
    assert find(shared_plan_db, "") == []
    assert find(shared_plan_db, "😀") == []
    assert find(shared_plan_db, "a" * 5000) == []


def test_like_wildcards_are_literal(plan_db: Database) -> None:
    with plan_db.transaction() as session:
        session.add(Area(code="x1", name="Ta_Lu", name_folded="ta_lu", level="village"))
    assert all(h.code != "x1" for h in find(plan_db, "a_l", fuzzy=False))


def test_the_whole_typed_name_beats_the_name_without_a_level_word(plan_db: Database) -> None:
    """A place whose own name starts like a level word ("Xã", "Thôn", "Bản"…) is still first."""
    with plan_db.transaction() as session:
        session.add(Area(code="x.ban-don", name="Bản Đôn", name_folded="bandon",
                         level="village"))
        session.add(Area(code="x.don", name="Đôn", name_folded="don", level="village"))
    hits = find(plan_db, "ban don")
    assert [(h.code, h.rank) for h in hits[:2]] == [("x.ban-don", 0), ("x.don", 0)]
    hits = find(plan_db, "don")
    assert hits[0].code == "x.don"


# --- teams ---------------------------------------------------------------------------------


def test_search_teams(plan_db: Database) -> None:
    ta_lu = area_id(plan_db, "nt.bac-ai.phuoc-dai.ta-lu-1")
    ma_ty = area_id(plan_db, "nt.bac-ai.phuoc-tan.ma-ty")
    with plan_db.transaction() as session:
        kind = session.scalar(select(TeamKind).where(TeamKind.code == "communication"))
        assert kind is not None
        for code, name, area, active in [
            ("t1", "Tổ truyền thông Tà Lú 1", ta_lu, True),
            ("t2", "Tổ truyền thông Ma Ty", ma_ty, True),
            ("t3", "Tổ truyền thông Ma Ty cũ", ma_ty, False),
        ]:
            session.add(Team(code=code, name=name, name_folded=fold_name(name),
                             kind_id=kind.id, area_id=area, active=active))

    with plan_db.sessions() as session:
        hits = search_teams(session, "to truyen thong ta lu 1")
        assert [(h.code, h.name, h.level, h.rank) for h in hits] == [
            ("t1", "Tổ truyền thông Tà Lú 1", "team", 0)]
        hits = search_teams(session, "Tổ truyền thông")
        assert [(h.code, h.rank) for h in hits] == [("t2", 1), ("t1", 1)]  # shorter first
        hits = search_teams(session, "ma ty")
        assert [(h.code, h.rank) for h in hits] == [("t2", 2)]  # the inactive one is hidden
        assert [h.code for h in search_teams(session, "truyen thong", area_ids=[ma_ty])] == [
            "t2"]
        assert search_teams(session, "truyen thong", area_ids=[]) == []
        typo = search_teams(session, "to truyen thong ta luu 1")
        assert (typo[0].code, typo[0].rank) == ("t1", 3)
        assert search_teams(session, "😀") == []


# --- the property: any name, stripped and re-spaced, finds itself first --------------------

VIETNAMESE_LETTERS = (
    "abcdeghiklmnopqrstuvxy"
    "àáảãạăắằẳẵặâấầẩẫậđèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵ"
)
ALPHABET = VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + "0123456789"


def strip_diacritics(text: str) -> str:
    """What a phone without a Vietnamese keyboard produces; written independently of textfold."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if unicodedata.category(c) != "Mn")


words = st.text(alphabet=ALPHABET, min_size=1, max_size=8)
names = st.lists(words, min_size=1, max_size=4).map(" ".join)
_codes = itertools.count()


@st.composite
def respaced(draw: st.DrawFn, name: str) -> str:
    """The name without diacritics, spaces removed or added anywhere, any case."""
    letters = [c for c in strip_diacritics(name) if c != " "]
    out = []
    for i, char in enumerate(letters):
        if i:
            out.append(" " * draw(st.integers(min_value=0, max_value=2)))
        out.append(char.upper() if draw(st.booleans()) else char.lower())
    return "".join(out)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), name=names)
def test_any_name_stripped_and_respaced_finds_itself_first(
    plan_db: Database, data: st.DataObject, name: str
) -> None:
    # One database for all examples: every name lands among the plan's and the earlier ones.
    code = f"prop.{next(_codes)}"
    with plan_db.transaction() as session:
        session.add(Area(code=code, name=name, name_folded=fold_name(name), level="village"))
    query = data.draw(respaced(name), label="query")

    hits = find(plan_db, query)

    assert hits, (name, query)
    with plan_db.sessions() as session:
        first = session.get(Area, hits[0].id)
        assert first is not None
        assert first.name_folded == fold_name(name), (name, query, hits[:3])
    assert hits[0].rank == 0
    assert code in {h.code for h in hits if h.rank == 0} or len(hits) == 8


def test_folded_names_compare_in_byte_order_on_postgresql(db):
    """Prefix ranges ("talu" ≤ x < "talv") need byte order, not the server locale's."""
    if db.is_sqlite:
        pytest.skip("SQLite compares text byte by byte already")
    from sqlalchemy import text

    with db.sessions() as session:
        collations = set(session.scalars(text(
            "SELECT collation_name FROM information_schema.columns "
            "WHERE column_name = 'name_folded' AND table_name IN ('areas', 'teams')")))
    assert collations == {"C"}
