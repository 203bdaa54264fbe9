"""The words members type, read once from handlers/data/vocabulary.toml so the lists can grow."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from handlers.parsing.text import fold

VOCABULARY_FILE = Path(__file__).resolve().parent.parent / "data" / "vocabulary.toml"


@dataclass(frozen=True)
class Vocabulary:
    """The typed word lists, folded; a missing section reads as empty."""

    agreement: frozenset[str]
    particles: frozenset[str]
    abbreviations: dict[str, str]
    commands: dict[str, str]
    relative_days: dict[str, int]
    weekdays: dict[str, int]
    last_week: tuple[str, ...]
    this_week: tuple[str, ...]
    day_of_month: tuple[str, ...]
    range_words: tuple[str, ...]
    place_markers: frozenset[str]
    place_prepositions: frozenset[str]
    roman: dict[str, int]
    activity_words: tuple[str, ...]
    topic_prefixes: tuple[str, ...]
    count_labels: dict[str, tuple[str, ...]]


def _words(values: object) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(dict.fromkeys(fold(str(v)) for v in values if fold(str(v))))


def _mapping(values: object, kind: type) -> dict[str, object]:
    if not isinstance(values, dict):
        return {}
    return {fold(str(k)): kind(v) for k, v in values.items() if fold(str(k))}


@cache
def vocabulary() -> Vocabulary:
    """The vocabulary file, parsed and folded once per process."""
    with VOCABULARY_FILE.open("rb") as handle:
        data = tomllib.load(handle)

    def section(name: str) -> dict[str, object]:
        value = data.get(name, {})
        return value if isinstance(value, dict) else {}

    agreement, dates, places = section("agreement"), section("dates"), section("places")
    labels = section("count_labels")
    return Vocabulary(
        agreement=frozenset(_words(agreement.get("words"))),
        particles=frozenset(_words(agreement.get("particles"))),
        abbreviations={k: fold(str(v)) for k, v in _mapping(section("abbreviations"), str).items()},
        commands={k: str(v) for k, v in _mapping(section("commands"), str).items()},
        relative_days={k: int(str(v)) for k, v in _mapping(dates.get("relative"), int).items()},
        weekdays={k: int(str(v)) for k, v in _mapping(dates.get("weekdays"), int).items()},
        last_week=_words(dates.get("last_week")),
        this_week=_words(dates.get("this_week")),
        day_of_month=_words(dates.get("day_of_month")),
        range_words=_words(section("numbers").get("range_words")),
        place_markers=frozenset(_words(places.get("markers"))),
        place_prepositions=frozenset(_words(places.get("prepositions"))),
        roman={k: int(str(v)) for k, v in _mapping(places.get("roman"), int).items()},
        activity_words=_words(section("report").get("activity_words")),
        topic_prefixes=_words(section("topics").get("prefixes")),
        count_labels={name: _words(labels.get(name)) for name in
                      ("total", "women", "ethnic", "children")},
    )


def expand(text: str) -> str:
    """Folded text with common abbreviations written out ("bc cua toi" → "bao cao cua toi")."""
    table = vocabulary().abbreviations
    return " ".join(table.get(word, word) for word in fold(text).split())


def _without_particles(folded: str) -> str:
    words = folded.split()
    particles = vocabulary().particles
    while len(words) > 1 and words[-1] in particles:
        words.pop()
    return " ".join(words)


def is_agreement(text: str) -> bool:
    """Whether a short answer means "yes": "vâng", "ừ", "đồng ý ạ", "dạ", "ok nhé"."""
    folded = fold(text[:100])
    agreement = vocabulary().agreement
    return folded in agreement or _without_particles(folded) in agreement


def command_for(text: str) -> str | None:
    """The command typed words stand for, from the vocabulary's list, abbreviations expanded."""
    commands = vocabulary().commands
    folded = fold(text[:100])
    return commands.get(folded) or commands.get(expand(folded))
