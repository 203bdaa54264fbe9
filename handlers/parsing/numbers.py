"""Reading head counts: "30", "khoảng 30", "2 000", "1.200", and ranges that must be asked."""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.parsing.text import soft_fold
from handlers.parsing.vocabulary import vocabulary

COUNT_INPUT_LIMIT = 200
# Far beyond any maximum, and keeps int() away from Python's limit on digit strings.
MAX_COUNT_DIGITS = 18


@dataclass(frozen=True)
class CountResult:
    """A parsed head count or the reason there is none; exactly one of value and error is set."""

    value: int | None
    # "empty" | "not_number" | "negative" | "fraction" | "ambiguous" | "too_large"
    error: str | None
    # For "ambiguous": the numbers given ("30-40", "30 hay 40"), so they can be offered.
    choices: tuple[int, ...] = ()


@dataclass(frozen=True)
class Participants:
    """The head counts of one activity: the total and the groups the plan reports on."""

    total: int
    women: int
    ethnic: int
    children: int


# One number, its thousands grouped by dots, commas or single spaces ("2 000", "1.200").
NUMBER = re.compile(
    r"(?<![0-9])(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+)"
    r"(?![0-9])(?![.,][0-9])|[0-9]+(?:[.,][0-9]+)*"
)
# A minus only counts when it stands before the number, not between two ("30-40" is a range).
_COUNT_NUMBER = re.compile(r"(?:(?<![0-9a-z])-)?(?:" + NUMBER.pattern + ")")
_NONE_WORDS = re.compile(r"(?:khong|ko|k|kg)(?: co)?(?: ai| nguoi(?: nao)?)?")
_NEGATIVE_WORD = re.compile(r"(?<![a-z0-9])am ?$")
_GROUPED = re.compile(
    r"[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+"
)


def whole_number(token: str) -> int | None:
    """Read digits with Vietnamese thousands grouping ("1.200", "2 000"); None if not whole."""
    if token.isdigit():
        digits = token
    elif _GROUPED.fullmatch(token):
        digits = token.replace(".", "").replace(",", "").replace(" ", "")
    else:
        return None
    if len(digits) > MAX_COUNT_DIGITS:
        return 10**MAX_COUNT_DIGITS
    return int(digits)


def _between_is_range(between: str) -> bool:
    """Whether the words between two numbers make them a range or an either-or."""
    words = between.replace("-", " - ").replace("~", " - ").split()
    return bool(words) and all(w == "-" or w in vocabulary().range_words for w in words)


def parse_count(text: str, maximum: int = 100000) -> CountResult:
    """Read one whole number of people from a short answer that may wrap it in words."""
    trimmed = text.strip()
    if not trimmed:
        return CountResult(None, "empty")
    folded, _ = soft_fold(trimmed[:COUNT_INPUT_LIMIT])
    numbers = list(_COUNT_NUMBER.finditer(folded))
    if not numbers:
        if _NONE_WORDS.fullmatch(folded.strip(" .,;:-")):
            return CountResult(0, None)
        return CountResult(None, "not_number")
    if len(numbers) > 1:
        values = tuple(whole_number(n.group().lstrip("-")) for n in numbers)
        choices: tuple[int, ...] = ()
        second = numbers[1].group()
        between = folded[numbers[0].end():numbers[1].start()] + ("-" if second[0] == "-" else "")
        if len(numbers) == 2 and None not in values and _between_is_range(between):
            choices = tuple(v for v in values if v is not None and v <= maximum)
        return CountResult(None, "ambiguous", choices)
    token = numbers[0].group()
    value = whole_number(token.lstrip("-"))
    negative = token.startswith("-") or bool(_NEGATIVE_WORD.search(folded[: numbers[0].start()]))
    if negative and value != 0:
        return CountResult(None, "negative")
    if value is None:
        return CountResult(None, "fraction")
    if value > maximum:
        return CountResult(None, "too_large")
    return CountResult(value, None)


def check_participants(
    total: int, women: int | None, ethnic: int | None, children: int | None
) -> str | None:
    """Catch a group larger than the whole, the usual sign of a typo or swapped answers."""
    for name, part in (("women", women), ("ethnic", ethnic), ("children", children)):
        if part is not None and part > total:
            return f"part_exceeds_total:{name}"
    return None
