"""Finding the plan's villages in what members type: "thon Ta Lu 2", "Tà Lú I", "talu2"."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from handlers.parsing.text import fold
from handlers.parsing.vocabulary import vocabulary
from storage.values import Village

# Without a word such as "thôn" before it, a name must be this long to be taken for a village:
# "Do", "Ú" or "Giá" are also everyday words.
UNMARKED_MIN_LETTERS = 4


@dataclass(frozen=True)
class PlaceHit:
    """Villages named at one span of the folded text; several when villages share a name."""

    start: int
    end: int
    ids: tuple[int, ...]
    marker_start: int | None  # where a kept marker word ("thon") before the name starts


def _key(words: list[str]) -> str:
    return "".join(words)


def _name_pattern(name: str) -> str:
    """A regex for a village name: spaces optional, a final number also as a Roman numeral."""
    words = fold(name).split()
    pieces = [re.escape(w) for w in words]
    if len(words) > 1 and words[-1].isdigit():
        romans = [r for r, n in vocabulary().roman.items() if n == int(words[-1])]
        pieces[-1] = "(?:" + "|".join([pieces[-1], *romans]) + ")"
    return r"(?<![a-z0-9])" + " ?".join(pieces) + r"(?![a-z0-9])"


@lru_cache(maxsize=8)
def _patterns(names: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((_key(fold(n).split()), re.compile(_name_pattern(n))) for n in names)


def _by_key(villages: Sequence[Village]) -> dict[str, list[Village]]:
    grouped: dict[str, list[Village]] = {}
    for village in villages:
        grouped.setdefault(_key(fold(village.name).split()), []).append(village)
    return grouped


def _marker_before(folded: str, start: int) -> tuple[str, int] | None:
    """The marker word ("thon", "o", "tai") right before `start`, with where it begins."""
    match = re.search(r"(?<![a-z0-9])([a-z]+)[ ,:]*$", folded[:start])
    if match is None or match.group(1) not in vocabulary().place_markers:
        return None
    return match.group(1), match.start(1)


def find_village(
    folded: str, villages: Sequence[Village], blocked: Sequence[tuple[int, int]] = ()
) -> PlaceHit | None:
    """The village a message names: one after "thôn"/"ở"/"tại" first, else a long enough name."""
    grouped = _by_key(villages)
    names = tuple(sorted({v.name for v in villages}))
    markers = vocabulary().place_markers
    best: tuple[tuple[int, int, int], PlaceHit] | None = None
    for key, pattern in _patterns(names):
        if key not in grouped:
            continue
        for match in pattern.finditer(folded):
            span = (match.start(), match.end())
            if any(span[0] < b and a < span[1] for a, b in blocked):
                continue
            marker = _marker_before(folded, span[0])
            first_word = folded[span[0]:span[1]].split(" ")[0]
            marked = marker is not None or first_word in markers
            letters = sum(ch.isalpha() for ch in key)
            if not marked and (letters < UNMARKED_MIN_LETTERS or len(fold(
                    grouped[key][0].name).split()) < 2):
                continue
            keep_marker = None
            if marker is not None and marker[0] not in vocabulary().place_prepositions:
                keep_marker = marker[1]
            rank = (0 if marked else 1, span[0], -(span[1] - span[0]))
            hit = PlaceHit(span[0], span[1], tuple(v.id for v in grouped[key]), keep_marker)
            if best is None or rank < best[0]:
                best = (rank, hit)
    return best[1] if best else None


def arabic_numerals(text: str) -> str:
    """A typed place name with a final Roman numeral written as digits ("Tà Lú I" → "Tà Lú 1")."""
    words = text.split()
    if len(words) > 1:
        number = vocabulary().roman.get(fold(words[-1]))
        if number is not None:
            words[-1] = str(number)
    return " ".join(words)


def match_villages(text: str, villages: Sequence[Village]) -> tuple[int, ...]:
    """Villages whose name is exactly what was typed, give or take "thôn", spaces, diacritics."""
    words = fold(arabic_numerals(text[:200])).split()
    while len(words) > 1 and words[0] in vocabulary().place_markers:
        if _key(words) in _by_key(villages):
            break
        words = words[1:]
    return tuple(v.id for v in _by_key(villages).get(_key(words), []))
