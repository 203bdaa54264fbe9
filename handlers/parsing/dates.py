"""Reading an activity's date the ways volunteers write it: 5/3, hôm qua, thứ 2 tuần trước..."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from handlers.parsing.text import soft_fold
from handlers.parsing.vocabulary import vocabulary

# Longer input than this cannot be a date; cutting it keeps every call cheap.
DATE_INPUT_LIMIT = 200


@dataclass(frozen=True)
class DateResult:
    """A parsed date or the reason there is none; exactly one of value and error is set."""

    value: date | None
    error: str | None  # "empty" | "format" | "invalid" | "future" | "too_early" | "week"
    # For "week" ("tuần trước"): the Monday of the week meant, so the day can be asked.
    week: date | None = None


_YEAR = r"[0-9]{4}|[0-9]{2}"
_DATE_SEP = r" ?[/.\-] ?"


def _alternatives(phrases: list[str]) -> str:
    """Phrases as a regex alternation, longest first, spaces optional ("homqua" = "hom qua")."""
    ordered = sorted(set(phrases), key=lambda p: (-len(p), p))
    return "|".join(r" ?".join(map(re.escape, p.split())) for p in ordered)


@cache
def _date_body() -> str:
    words = vocabulary()
    # Abbreviations of relative words ("hqua") are read as the words they stand for.
    relative = [*words.relative_days,
                *(k for k, v in words.abbreviations.items() if v in words.relative_days)]
    weekdays = [*words.weekdays,
                *(k for k, v in words.abbreviations.items() if v in words.weekdays)]
    weeks = [*words.last_week, *words.this_week]
    day_words = _alternatives(list(words.day_of_month))
    return (
        r"(?:ngay ?:? ?)?(?:"
        rf"(?P<wk>{_alternatives(weekdays)})(?: (?P<wkmod>{_alternatives(weeks)}))?"
        rf"|(?P<lw>{_alternatives(list(words.last_week))})"
        rf"|(?P<rel>{_alternatives(relative)})"
        r"|(?P<iy>[0-9]{4}) ?[/\-] ?(?P<im>[0-9]{1,2}) ?[/\-] ?(?P<id>[0-9]{1,2})"
        r"|(?P<wd>[0-9]{1,2}) ?(?:thang|thg|th) ?(?P<wm>[0-9]{1,2})"
        rf"(?:(?:{_DATE_SEP}|,? (?:nam ?)?)(?P<wy>{_YEAR}))?"
        rf"|(?P<d>[0-9]{{1,2}}){_DATE_SEP}(?P<m>[0-9]{{1,2}})(?:{_DATE_SEP}(?P<y>{_YEAR}))?"
        rf"|(?:{day_words}) ?(?P<dom>[0-9]{{1,2}})"
        r")"
    )


@cache
def date_whole() -> re.Pattern[str]:
    """A whole answer that is a date."""
    return re.compile(_date_body())


@cache
def date_inside() -> re.Pattern[str]:
    """A date inside a sentence; it must not be a piece of a longer number ("1.200", "5/3/202")."""
    return re.compile(
        r"(?<![a-z0-9])(?<![0-9][/.,\-])" + _date_body() + r"(?![a-z0-9])(?![/.\-][0-9])"
    )


def parse_date(text: str, today: date, earliest: date) -> DateResult:
    """Understand the ways volunteers write an activity's date, and refuse impossible ones."""
    trimmed = text.strip()
    if not trimmed:
        return DateResult(None, "empty")
    folded, _ = soft_fold(trimmed[:DATE_INPUT_LIMIT])
    match = date_whole().fullmatch(folded.strip(" .,;:-"))
    if match is None:
        return DateResult(None, "format")
    return resolve_date(match, today, earliest)


def format_date_input(d: date) -> str:
    """Show a date the way parse_date reads it back, so prompts and examples round-trip."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def _lookup(table: dict[str, int], typed: str) -> int:
    """The value of a phrase the date pattern matched, spaces optional, abbreviations expanded."""
    compact = typed.replace(" ", "")
    expanded = vocabulary().abbreviations.get(compact, "").replace(" ", "")
    for key, value in table.items():
        if key.replace(" ", "") in (compact, expanded):
            return value
    return 0


def _weekday(match: re.Match[str], today: date) -> date:
    words = vocabulary()
    wanted = _lookup(words.weekdays, match.group("wk"))
    modifier = match.group("wkmod")
    monday = today - timedelta(days=today.weekday())
    if modifier is None:
        # "thứ 2" alone: the latest Monday, today included.
        return today - timedelta(days=(today.weekday() - wanted) % 7)
    if " ".join(modifier.split()) in words.this_week:
        return monday + timedelta(days=wanted)
    return monday - timedelta(days=7) + timedelta(days=wanted)


def _day_of_month(day: int, today: date) -> date | None:
    """"ngày 5": the 5th of this month, or of the month before when that is still ahead."""
    try:
        value = date(today.year, today.month, day)
    except ValueError:
        value = None
    if value is not None and value <= today:
        return value
    previous = today.replace(day=1) - timedelta(days=1)
    try:
        return date(previous.year, previous.month, day)
    except ValueError:
        return None


def resolve_date(match: re.Match[str], today: date, earliest: date) -> DateResult:
    """Turn a matched date phrase into a date checked against the allowed window."""
    try:
        return _resolve(match, today, earliest)
    except OverflowError:
        # Only reachable with a "today" at the very start of the calendar.
        return DateResult(None, "too_early")


def _resolve(match: re.Match[str], today: date, earliest: date) -> DateResult:
    words = vocabulary()
    if match.group("wk") is not None:
        return _within(_weekday(match, today), today, earliest)
    if match.group("lw") is not None:
        return DateResult(None, "week", week=today - timedelta(days=today.weekday() + 7))
    relative = match.group("rel")
    if relative is not None:
        days = _lookup(words.relative_days, relative)
        return _within(today - timedelta(days=days), today, earliest)
    if match.group("dom") is not None:
        value = _day_of_month(int(match.group("dom")), today)
        return DateResult(None, "invalid") if value is None else _within(value, today, earliest)
    if match.group("iy") is not None:
        parts = (match.group("iy"), match.group("im"), match.group("id"))
        try:
            return _within(date(*map(int, parts)), today, earliest)
        except ValueError:
            return DateResult(None, "invalid")
    day = match.group("d") if match.group("d") is not None else match.group("wd")
    month = match.group("m") if match.group("m") is not None else match.group("wm")
    year_text = match.group("y") if match.group("y") is not None else match.group("wy")
    if year_text is None:
        # Without a year, the latest such day that has passed: "15/11" typed in January is
        # last November, as reports are about what already happened.
        try:
            value = date(today.year, int(month), int(day))
            if value > today:
                value = date(today.year - 1, int(month), int(day))
        except ValueError:
            return DateResult(None, "invalid")
        return _within(value, today, earliest)
    year = int(year_text) + (2000 if len(year_text) == 2 else 0)
    try:
        value = date(year, int(month), int(day))
    except ValueError:
        return DateResult(None, "invalid")
    return _within(value, today, earliest)


def _within(value: date, today: date, earliest: date) -> DateResult:
    """Reports are about the past of the current plan phase, never the future."""
    if value > today:
        return DateResult(None, "future")
    if value < earliest:
        return DateResult(None, "too_early")
    return DateResult(value, None)
