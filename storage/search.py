"""Finding areas and teams by what a person types, through the indexed folded-name column."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.models import Area, Team
from storage.textfold import fold_words

# Words people put before a name ("xã Phước Đại", "thon Ta Lu 1"); searched with and without.
LEVEL_WORDS = ("thi tran", "tinh", "huyen", "xa", "phuong", "thon", "ap", "ban", "to")
# The typo pass compares in Python, so it only runs over a bounded, scoped candidate set.
FUZZY_CANDIDATES = 5000
FUZZY_CUTOFF = 0.75


@dataclass(frozen=True)
class NameMatch:
    """One hit: rank 0 exact, 1 prefix, 2 contains, 3-4 close spelling; lower is better."""

    id: int
    code: str
    name: str
    level: str
    rank: int


def search_keys(text: str) -> list[str]:
    """The folded keys a typed name stands for: as typed, and without a leading level word."""
    words = fold_words(text[:200])
    keys = [words.replace(" ", "")]
    for level in LEVEL_WORDS:
        if words.startswith(level + " ") and len(words) > len(level) + 1:
            keys.append(words[len(level) + 1 :].replace(" ", ""))
            break
    return [key for key in dict.fromkeys(keys) if key]


def _prefix_upper(key: str) -> str:
    """The smallest string above every string starting with `key`: a range the index can use."""
    return key[:-1] + chr(ord(key[-1]) + 1)


def _rank_expr(column: InstrumentedAttribute[str], keys: Sequence[str]) -> ColumnElement[int]:
    whens: list[tuple[ColumnElement[bool], int]] = []
    whens += [(column == key, 0) for key in keys]
    whens += [(and_(column >= key, column < _prefix_upper(key)), 1) for key in keys]
    return case(*whens, else_=literal(2))


def _search(
    session: Session,
    model: type[Area] | type[Team],
    text: str,
    scope: Sequence[ColumnElement[bool]],
    limit: int,
    fuzzy: bool,
) -> list[tuple[int, str, str, int]]:
    keys = search_keys(text)
    if not keys:
        return []
    column = model.name_folded
    rank = _rank_expr(column, keys).label("rank")
    # Exact and prefix hits come from index range scans; "contains" is the slower fallback.
    indexed = or_(*[or_(column == k, and_(column >= k, column < _prefix_upper(k))) for k in keys])
    base: Select[int, str, str, int] = select(model.id, model.name, column, rank).where(
        model.active.is_(True), *scope
    )
    # Among equal ranks, a match of everything typed beats one without a leading level word:
    # "ban don" is the village Bản Đôn before a village Đôn.
    whole = _rank_expr(column, keys[:1])
    order = (rank, whole, func.length(column), model.name, model.id)
    rows: list[tuple[int, str, str, int]] = []
    rows.extend(session.execute(base.where(indexed).order_by(*order).limit(limit)))
    if len(rows) < limit:
        found = {row[0] for row in rows}
        if len(keys[0]) >= 2:
            contains = or_(*[column.contains(k, autoescape=True) for k in keys if len(k) >= 2])
            more = session.execute(
                base.where(contains, ~indexed).order_by(*order).limit(limit - len(rows))
            )
            rows.extend(row for row in more if row[0] not in found)
    if not rows and fuzzy and len(keys[0]) >= 3:
        candidates = session.execute(
            select(model.id, model.name, column, literal(3))
            .where(model.active.is_(True), *scope)
            .limit(FUZZY_CANDIDATES)
        ).all()
        by_key: dict[str, list[tuple[int, str, str, int]]] = {}
        for cand in candidates:
            by_key.setdefault(cand[2], []).append(tuple(cand))  # type: ignore[arg-type]
        scores: dict[str, float] = {}
        for key in keys:
            for hit in difflib.get_close_matches(key, list(by_key), n=limit, cutoff=FUZZY_CUTOFF):
                ratio = difflib.SequenceMatcher(None, key, hit).ratio()
                scores[hit] = max(scores.get(hit, 0.0), ratio)
        best = max(scores.values(), default=0.0)
        # Only the closest spellings rank 3; weaker ones rank 4, so the best can be chosen.
        for hit in sorted(scores, key=lambda k: -scores[k]):
            rows += [(c[0], c[1], c[2], 3 if scores[hit] == best else 4) for c in by_key[hit]]
    return [(row[0], row[1], row[2], row[3]) for row in rows[:limit]]


def search_areas(
    session: Session,
    text: str,
    *,
    level: str | None = None,
    parent_id: int | None = None,
    within_ids: Sequence[int] | None = None,
    limit: int = 8,
    fuzzy: bool = True,
) -> list[NameMatch]:
    """Areas whose name matches `text`, best first, optionally under one parent or of one level."""
    scope: list[ColumnElement[bool]] = []
    if level is not None:
        scope.append(Area.level == level)
    if parent_id is not None:
        scope.append(Area.parent_id == parent_id)
    if within_ids is not None:
        scope.append(Area.id.in_(list(within_ids)))
    hits = _search(session, Area, text, scope, limit, fuzzy)
    if not hits:
        return []
    info = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_([h[0] for h in hits])))}
    return [NameMatch(h[0], info[h[0]].code, h[1], info[h[0]].level, h[3]) for h in hits]


def search_teams(
    session: Session,
    text: str,
    *,
    area_ids: Sequence[int] | None = None,
    limit: int = 8,
    fuzzy: bool = True,
) -> list[NameMatch]:
    """Teams whose name matches `text`, best first, optionally within some areas."""
    scope: list[ColumnElement[bool]] = []
    if area_ids is not None:
        scope.append(Team.area_id.in_(list(area_ids)))
    hits = _search(session, Team, text, scope, limit, fuzzy)
    if not hits:
        return []
    ids = [h[0] for h in hits]
    codes = {row[0]: row[1] for row in session.execute(
        select(Team.id, Team.code).where(Team.id.in_(ids)))}
    return [NameMatch(h[0], codes[h[0]], h[1], "team", h[3]) for h in hits]


def area_id_by_code(session: Session, code: str) -> int | None:
    """An area's id from its stable code."""
    return session.scalar(select(Area.id).where(Area.code == code))
