"""Reading what volunteers type, so the conversations can ask only for what is missing."""

# Nothing here speaks to people: functions return values and short English error codes, and the
# conversation layer turns the codes into Vietnamese. Every public function accepts any string
# without raising, because whatever a member sends reaches these functions unfiltered.

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

# Longer input than this cannot be a date or a count; cutting it keeps every call cheap.
DATE_INPUT_LIMIT = 200
COUNT_INPUT_LIMIT = 200
# A quick report is one chat message; beyond this the tail is passed through as leftovers.
REPORT_INPUT_LIMIT = 2000
# Counts in a quick report above this are not head counts (a phone number, a sum of money).
REPORT_COUNT_MAX = 100_000

# --- folding ------------------------------------------------------------------------------

_NOT_FOLDED = re.compile(r"[^a-z0-9]+")
# Date and number punctuation survives the soft fold so "5/3" and "1.200" keep their meaning.
_SOFT_KEEP = frozenset("abcdefghijklmnopqrstuvwxyz0123456789 /.,;:-")
# Minus signs and dashes phones and keyboards substitute for "-".
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2212")


def fold(text: str) -> str:
    """Reduce text to bare lowercase words so Vietnamese typed without diacritics still matches."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("đ", "d")
    # Other characters become separators rather than vanishing, so "Tà-Lú" reads as two words.
    return " ".join(_NOT_FOLDED.sub(" ", bare).split())


def _soft_fold(text: str) -> tuple[str, list[int]]:
    """Fold but keep date/number punctuation, remembering each kept character's original index."""
    out: list[str] = []
    origin: list[int] = []
    for index, original in enumerate(text):
        for ch in unicodedata.normalize("NFD", original.lower()):
            if unicodedata.combining(ch):
                continue
            piece = "d" if ch == "đ" else "-" if ch in _DASHES else ch
            if piece not in _SOFT_KEEP:
                piece = " "
            if piece == " " and (not out or out[-1] == " "):
                continue
            out.append(piece)
            origin.append(index)
    if out and out[-1] == " ":
        out.pop()
        origin.pop()
    return "".join(out), origin


# --- dates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateResult:
    """A parsed date or the reason there is none; exactly one of the two is set."""

    value: date | None
    error: str | None  # "empty" | "format" | "invalid" | "future" | "too_early"


_RELATIVE_DAYS = {"homnay": 0, "today": 0, "homqua": 1, "yesterday": 1, "homkia": 2}
_YEAR = r"[0-9]{4}|[0-9]{2}"
_DATE_SEP = r" ?[/.\-] ?"
_DATE_BODY = (
    r"(?:ngay ?:? ?)?(?:"
    r"(?P<rel>hom ?nay|hom ?qua|hom ?kia|today|yesterday)"
    r"|(?P<wd>[0-9]{1,2}) ?(?:thang|thg|th) ?(?P<wm>[0-9]{1,2})"
    rf"(?:(?:{_DATE_SEP}|,? (?:nam ?)?)(?P<wy>{_YEAR}))?"
    rf"|(?P<d>[0-9]{{1,2}}){_DATE_SEP}(?P<m>[0-9]{{1,2}})(?:{_DATE_SEP}(?P<y>{_YEAR}))?"
    r")"
)
_DATE_WHOLE = re.compile(_DATE_BODY)
# Inside a sentence a date must not be a piece of a longer number such as "1.200" or "5/3/202".
_DATE_INSIDE = re.compile(
    r"(?<![a-z0-9])(?<![0-9][/.,\-])" + _DATE_BODY + r"(?![a-z0-9])(?![/.\-][0-9])"
)


def parse_date(text: str, today: date, earliest: date) -> DateResult:
    """Understand the few ways volunteers write an activity's date, and refuse impossible ones."""
    trimmed = text.strip()
    if not trimmed:
        return DateResult(None, "empty")
    folded, _ = _soft_fold(trimmed[:DATE_INPUT_LIMIT])
    match = _DATE_WHOLE.fullmatch(folded.strip(" .,;:-"))
    if match is None:
        return DateResult(None, "format")
    return _resolve_date(match, today, earliest)


def format_date_input(d: date) -> str:
    """Show a date the way parse_date reads it back, so prompts and examples round-trip."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def _resolve_date(match: re.Match[str], today: date, earliest: date) -> DateResult:
    """Turn a matched date phrase into a date checked against the allowed window."""
    relative = match.group("rel")
    if relative is not None:
        try:
            value = today - timedelta(days=_RELATIVE_DAYS[relative.replace(" ", "")])
        except OverflowError:
            # Only reachable with a "today" at the very start of the calendar.
            return DateResult(None, "too_early")
        return _within(value, today, earliest)
    day = match.group("d") if match.group("d") is not None else match.group("wd")
    month = match.group("m") if match.group("m") is not None else match.group("wm")
    year_text = match.group("y") if match.group("y") is not None else match.group("wy")
    if year_text is None:
        # A date without a year always means this year: predictable beats clever guessing.
        year = today.year
    else:
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


# --- counts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountResult:
    """A parsed head count or the reason there is none; exactly one of the two is set."""

    value: int | None
    # "empty" | "not_number" | "negative" | "fraction" | "ambiguous" | "too_large"
    error: str | None


@dataclass(frozen=True)
class Participants:
    """The head counts of one activity: the total and the groups the plan reports on."""

    total: int
    women: int
    ethnic: int
    children: int


# A minus only counts when it stands before the number, not between two ("30-40" is a range).
_COUNT_NUMBER = re.compile(r"(?:(?<![0-9a-z])-)?[0-9]+(?:[.,][0-9]+)*")
_NONE_WORDS = re.compile(r"(?:khong|ko)(?: co)?(?: ai| nguoi(?: nao)?)?")
_NEGATIVE_WORD = re.compile(r"(?<![a-z0-9])am ?$")
_GROUPED = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,3}(?:,[0-9]{3})+")
# Far beyond any maximum, and keeps int() away from Python's limit on digit strings.
_MAX_COUNT_DIGITS = 18


def _whole_number(token: str) -> int | None:
    """Read digits with Vietnamese thousands grouping ("1.200", "1,200"); None if not whole."""
    if token.isdigit():
        digits = token
    elif _GROUPED.fullmatch(token):
        digits = token.replace(".", "").replace(",", "")
    else:
        return None
    if len(digits) > _MAX_COUNT_DIGITS:
        return 10**_MAX_COUNT_DIGITS
    return int(digits)


def parse_count(text: str, maximum: int = 100000) -> CountResult:
    """Read one whole number of people from a short answer that may wrap it in words."""
    trimmed = text.strip()
    if not trimmed:
        return CountResult(None, "empty")
    folded, _ = _soft_fold(trimmed[:COUNT_INPUT_LIMIT])
    numbers = list(_COUNT_NUMBER.finditer(folded))
    if not numbers:
        if _NONE_WORDS.fullmatch(folded.strip(" .,;:-")):
            return CountResult(0, None)
        return CountResult(None, "not_number")
    if len(numbers) > 1:
        return CountResult(None, "ambiguous")
    token = numbers[0].group()
    value = _whole_number(token.lstrip("-"))
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


# --- identity numbers in notes ------------------------------------------------------------

# Digit groups joined by one space, dot or dash ("0912.345.678", "091 234 5678", "+84 912...").
_DIGIT_CHAIN = re.compile(r"(?<![0-9])(?:\+ ?)?[0-9]+(?:(?:[ \t]?[.\-][ \t]?|[ \t])[0-9]+)*")
_DIGIT_GROUP = re.compile(r"[0-9]+")
# The longest thing looked for is a landline with country code and trunk zero.
_MAX_SENSITIVE_DIGITS = 13
_MOBILE_FIRST = frozenset("35789")
# An amount of money written like an old ID number ("120.000.000 đồng") is not an identity.
_MONEY_AFTER = re.compile(r"(?:d|dong|vnd|trieu|nghin|ngan)(?![a-z0-9])")


def _is_phone(digits: str, plus: bool) -> bool:
    """Vietnamese numbers: 0 + 9 digits, 02x landlines of 11, or 84 with or without the trunk 0."""
    if not plus and digits.startswith("0"):
        return len(digits) == 10 or (len(digits) == 11 and digits[1] == "2")
    if not digits.startswith("84"):
        return False
    rest = digits[2:]
    if rest.startswith("0"):
        rest = rest[1:]
    if len(rest) == 9:
        return rest[0] in _MOBILE_FIRST
    return len(rest) == 10 and rest[0] == "2"


def _is_id_number(text: str, groups: list[tuple[int, int, str]]) -> bool:
    """Old CMND (9 digits) or CCCD (12 digits), unless it reads as a sum of money."""
    digits = "".join(g[2] for g in groups)
    if len(digits) not in (9, 12):
        return False
    if len(groups) > 1:
        # Real ID groupings are 3-3-3 or 4-4-4; short groups are dates or counts side by side.
        if any(len(g[2]) < 3 for g in groups):
            return False
        if all(g[2] == "000" for g in groups[1:]):
            return False
    return not _MONEY_AFTER.match(fold(text[groups[-1][1] : groups[-1][1] + 12]))


def _phone_groups_ok(groups: list[tuple[int, int, str]]) -> bool:
    """People group phones as 4-3-3, 3-3-4 or +84 9xx...; a leading 1-2 digit group is a date."""
    if len(groups) == 1:
        return True
    first = groups[0][2]
    return (len(first) >= 3 or first == "84") and all(len(g[2]) >= 2 for g in groups[1:])


def find_sensitive(text: str) -> list[tuple[str, str]]:
    """Spot phone and ID numbers in free text so a victim's identity is never stored."""
    found: list[tuple[str, str]] = []
    # No length cap here: a number late in a long note must still be caught; the scan is linear.
    for chain in _DIGIT_CHAIN.finditer(text):
        plus_at = chain.start() if chain.group().startswith("+") else None
        groups = [
            (chain.start() + g.start(), chain.start() + g.end(), g.group())
            for g in _DIGIT_GROUP.finditer(chain.group())
        ]
        index = 0
        while index < len(groups):
            hit = _sensitive_at(text, groups, index, plus_at if index == 0 else None)
            if hit is None:
                index += 1
                continue
            kind, start, last = hit
            found.append((kind, text[start : groups[last][1]]))
            index = last + 1
    return found


def _sensitive_at(
    text: str, groups: list[tuple[int, int, str]], first: int, plus_at: int | None
) -> tuple[str, int, int] | None:
    """The longest phone, else the longest ID, made of whole digit groups starting at `first`."""
    ends: list[int] = []
    size = 0
    for last in range(first, len(groups)):
        size += len(groups[last][2])
        if size > _MAX_SENSITIVE_DIGITS:
            break
        # Nothing sought is shorter than an old ID's nine digits.
        if size >= 9:
            ends.append(last)
    for last in reversed(ends):
        window = groups[first : last + 1]
        digits = "".join(g[2] for g in window)
        if _phone_groups_ok(window) and _is_phone(digits, plus_at is not None):
            return "phone", plus_at if plus_at is not None else window[0][0], last
    for last in reversed(ends):
        if _is_id_number(text, groups[first : last + 1]):
            return "id_number", groups[first][0], last
    return None


# --- quick report -------------------------------------------------------------------------


@dataclass(frozen=True)
class QuickReport:
    """What one free-form message said about an activity, so only the gaps need asking."""

    # place_text and leftovers are slices of the original text, diacritics kept, so they can be
    # shown back to the member and searched with the same folding as names. Unknown fields: None.
    activity_keyword: str | None
    date: date | None
    place_text: str | None
    total: int | None
    women: int | None
    ethnic: int | None
    children: int | None
    leftovers: str


_COUNT_LABELS: dict[str, tuple[str, ...]] = {
    "total": (
        "nguoi tham du", "nguoi tham gia", "tong so nguoi", "tong so", "tong cong", "so nguoi",
        "tham gia", "tong", "nguoi", "ng",
    ),
    "women": ("nu va tre em gai", "phu nu", "chi em", "nu"),
    "ethnic": (
        "nguoi dan toc thieu so", "dan toc thieu so", "nguoi dan toc", "nguoi dtts", "dan toc",
        "dtts",
    ),
    "children": (
        "tre em duoi 16", "tre duoi 16", "duoi 16", "tre em", "hoc sinh", "tre", "em",
    ),
}
# Longest first, so "nu va tre em gai" is one women label rather than "nu" and "tre em".
_LABELS: list[tuple[tuple[str, ...], str]] = sorted(
    ((tuple(label.split()), name) for name, labels in _COUNT_LABELS.items() for label in labels),
    key=lambda pair: -len(pair[0]),
)
_LABEL_AHEAD = re.compile(
    r" ?(?:"
    + "|".join(re.escape(" ".join(words)) for words, _ in _LABELS)
    + r")(?![a-z0-9])"
)
_PLACE_MARKERS = frozenset({"thon", "o", "tai"})
# "o"/"tai" are prepositions and dropped; "thôn" is how villages are named and is kept.
_PLACE_PREPOSITIONS = frozenset({"o", "tai"})
# A number right after these names a place ("thôn 2", "tổ 3"), it is not a head count.
_PLACE_UNITS = frozenset({"thon", "ban", "xom", "to", "khu", "ap", "buon", "lang", "so", "lop"})
_REPORT_TOKEN = re.compile(
    r"(?<![0-9])(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,3}(?:,[0-9]{3})+)(?![0-9])"
    r"|[0-9]+|[a-z]+|[,;]|\.(?![0-9])"
)

_WORD, _NUM, _SEP, _LABEL, _BLOCK = "word", "num", "sep", "label", "block"


@dataclass
class _Item:
    """A token of the soft-folded report, or a run of them recognised as one thing."""

    kind: str
    text: str
    start: int
    end: int
    value: int | None = None
    field: str = ""
    consumed: bool = False


def parse_quick_report(
    text: str, today: date, earliest: date, activity_keywords: dict[str, str]
) -> QuickReport:
    """Pull the activity, date, place and head counts out of one message typed in a hurry."""
    head, tail = text[:REPORT_INPUT_LIMIT], text[REPORT_INPUT_LIMIT:]
    folded, origin = _soft_fold(head)
    blocks: list[_Item] = []

    activity, keyword_span = _find_activity(folded, activity_keywords)
    if keyword_span is not None:
        blocks.append(_Item(_BLOCK, "", *keyword_span, consumed=True))

    found_date: date | None = None
    first_date = True
    for match in _DATE_INSIDE.finditer(folded):
        if keyword_span is not None and _overlaps((match.start(), match.end()), keyword_span):
            continue
        if _looks_like_range(match, folded):
            continue
        consumed = False
        if first_date:
            first_date = False
            result = _resolve_date(match, today, earliest)
            found_date, consumed = result.value, result.value is not None
        # Later or unusable dates still must not be read as head counts.
        blocks.append(_Item(_BLOCK, "", match.start(), match.end(), consumed=consumed))

    items = _label_items(_tokens(folded, blocks))
    counts = _assign_counts(items)
    lone = None
    if "total" not in counts:
        lone = _lone_total(items)
        if lone is not None:
            items[lone].consumed = True
            counts["total"] = items[lone].value or 0
    place_span = _find_place(items, lone)

    spans = [(item.start, item.end) for item in items if item.consumed]
    if place_span is not None:
        spans.append(place_span)
    original_spans = [(origin[a], origin[b - 1] + 1) for a, b in spans if b > a]
    place_text = None
    if place_span is not None:
        a, b = place_span
        place_text = _tidy(head[origin[a] : origin[b - 1] + 1]) or None
    return QuickReport(
        activity_keyword=activity,
        date=found_date,
        place_text=place_text,
        total=counts.get("total"),
        women=counts.get("women"),
        ethnic=counts.get("ethnic"),
        children=counts.get("children"),
        leftovers=_tidy(_cut(head, original_spans) + tail),
    )


def _find_activity(
    folded: str, activity_keywords: dict[str, str]
) -> tuple[str | None, tuple[int, int] | None]:
    """The longest configured keyword present wins, so "doi thoai chinh sach" beats "doi thoai"."""
    best: tuple[int, int, str, tuple[int, int]] | None = None
    for keyword, code in activity_keywords.items():
        words = fold(keyword).split()
        if not words:
            continue
        # Keywords are plain words; any punctuation the member put between them is fine.
        pattern = r"(?<![a-z0-9])" + r"[^a-z0-9]+".join(map(re.escape, words)) + r"(?![a-z0-9])"
        match = re.search(pattern, folded)
        if match is None:
            continue
        rank = (-len(" ".join(words)), match.start(), code, (match.start(), match.end()))
        if best is None or rank[:2] < best[:2]:
            best = rank
    if best is None:
        return None, None
    return best[2], best[3]


def _overlaps(one: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two spans share a character, so one phrase is never read twice."""
    return one[0] < other[1] and other[0] < one[1]


def _looks_like_range(match: re.Match[str], folded: str) -> bool:
    """Read "10-12 người" as a head count range, not as the 10th of December."""
    if match.group("d") is None or match.group("y") is not None:
        return False
    # Only a dash reads as a range; "12/3 trẻ em ..." is still a date followed by a count.
    if "-" not in folded[match.end("d") : match.start("m")]:
        return False
    return _LABEL_AHEAD.match(folded, match.end()) is not None


def _tokens(folded: str, blocks: list[_Item]) -> list[_Item]:
    """Split the folded report into words, numbers and separators, with blocks kept whole."""
    items: list[_Item] = []
    ordered = sorted(blocks, key=lambda b: b.start)
    position = 0
    for block in [*ordered, None]:
        stop = len(folded) if block is None else block.start
        if stop > position:
            for token in _REPORT_TOKEN.finditer(folded, position, stop):
                items.append(_token_item(token))
        if block is not None:
            if block.start >= position:
                items.append(block)
            position = max(position, block.end)
    # "10-12 người" is a range: taking either end would be a guess, so neither is a count.
    for left, right in pairwise(items):
        if left.kind == right.kind == _NUM and folded[left.end : right.start].strip() == "-":
            left.value = right.value = None
    return items


def _token_item(token: re.Match[str]) -> _Item:
    """Classify one token; numbers too big to be a head count keep no value."""
    piece = token.group()
    if piece[0].isdigit():
        value = _whole_number(piece)
        if value is not None and value > REPORT_COUNT_MAX:
            value = None
        return _Item(_NUM, piece, token.start(), token.end(), value=value)
    if piece.isalpha():
        return _Item(_WORD, piece, token.start(), token.end())
    return _Item(_SEP, piece, token.start(), token.end())


def _label_items(items: list[_Item]) -> list[_Item]:
    """Merge the words of each count label ("phu nu", "tre duoi 16") into one label item."""
    merged: list[_Item] = []
    index = 0
    while index < len(items):
        for words, name in _LABELS:
            run = items[index : index + len(words)]
            if [item.text for item in run if item.kind in (_WORD, _NUM)] == list(words):
                merged.append(_Item(_LABEL, " ".join(words), run[0].start, run[-1].end, field=name))
                index += len(words)
                break
        else:
            merged.append(items[index])
            index += 1
    return merged


def _assign_counts(items: list[_Item]) -> dict[str, int]:
    """Pair numbers with adjacent labels, whether written "30 người" or "người: 30"."""
    # Each style is tried first in turn and the one pairing more numbers wins, ties going to
    # number-then-label, the usual Vietnamese order; the other style then picks up what is left,
    # for messages that mix both.
    best: dict[str, tuple[int, int]] | None = None
    for steps in ((1, -1), (-1, 1)):
        used: set[int] = set()
        pairs: dict[str, tuple[int, int]] = {}
        for step in steps:
            for index, item in enumerate(items):
                if item.kind != _NUM or item.value is None or index in used:
                    continue
                other = index + step
                if not 0 <= other < len(items):
                    continue
                label = items[other]
                if label.kind != _LABEL or other in used or label.field in pairs:
                    continue
                pairs[label.field] = (index, other)
                used.update((index, other))
        if best is None or len(pairs) > len(best):
            best = pairs
    counts: dict[str, int] = {}
    for name, (number, label) in (best or {}).items():
        items[number].consumed = items[label].consumed = True
        counts[name] = items[number].value or 0
        # The pair's span includes a ":" between label and number, so it leaves no debris.
        low, high = sorted((number, label))
        items[low].end = max(items[low].end, items[high].start)
    return counts


def _lone_total(items: list[_Item]) -> int | None:
    """Take the one unlabelled number as the total, as members often skip "người"."""
    candidates = [
        index
        for index, item in enumerate(items)
        if item.kind == _NUM
        and item.value is not None
        and not item.consumed
        and not _names_a_place(items, index)
    ]
    if len(candidates) > 1:
        # Of several, a number glued to a word is likely a name ("Tà Lú 1"); set those aside.
        candidates = [i for i in candidates if i == 0 or items[i - 1].kind != _WORD]
    return candidates[0] if len(candidates) == 1 else None


def _names_a_place(items: list[_Item], index: int) -> bool:
    """Whether the number at `index` follows a unit word, as in "thôn 2", so it is no count."""
    before = items[index - 1] if index > 0 else None
    return before is not None and before.kind == _WORD and before.text in _PLACE_UNITS


def _find_place(items: list[_Item], lone: int | None) -> tuple[int, int] | None:
    """The words after the first thôn/ở/tại, up to a separator, a date or a used count."""
    for index, item in enumerate(items):
        if item.kind != _WORD or item.text not in _PLACE_MARKERS or item.consumed:
            continue
        start = index + 1
        end = start
        while (
            end < len(items)
            and items[end].kind in (_WORD, _NUM)
            and not items[end].consumed
            and end != lone
        ):
            end += 1
        if end == start:
            continue
        first = start if item.text in _PLACE_PREPOSITIONS else index
        for used in range(index, end):
            items[used].consumed = True
        return items[first].start, items[end - 1].end
    return None


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with the recognised spans blanked out."""
    pieces: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if start > position:
            pieces.append(text[position:start])
        pieces.append(" ")
        position = max(position, end)
    pieces.append(text[position:])
    return "".join(pieces)


_LIST_PUNCTUATION = re.compile(r"\s*([,;])(?:\s*[,;])*\s*")


def _tidy(text: str) -> str:
    """Collapse the spaces and orphaned commas that removing recognised parts leaves behind."""
    joined = " ".join(text.split())
    return _LIST_PUNCTUATION.sub(r"\1 ", joined).strip(" ,;.:-")
