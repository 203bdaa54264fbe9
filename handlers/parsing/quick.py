"""Reading a quick report: activity, date, place and head counts out of one hurried message."""

# Nothing here speaks to people: the result says what was read, what was read but not taken
# (and why), and what needs a question. The conversation layer turns that into Vietnamese.
# Whatever a member sends reaches this module unfiltered, so nothing here raises.

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from handlers.parsing.dates import date_inside, resolve_date
from handlers.parsing.numbers import whole_number
from handlers.parsing.places import find_village
from handlers.parsing.text import cut, fold, soft_fold, tidy, words_pattern
from handlers.parsing.vocabulary import vocabulary
from storage.values import Village

# A quick report is one chat message; beyond this the tail is passed through as leftovers.
REPORT_INPUT_LIMIT = 2000
# Counts in a quick report above this are not head counts (a phone number, a sum of money):
# they are read, and said to be out of range.
REPORT_COUNT_MAX = 100_000


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
    # Every activity type whose words appear, when more than one does (then the type is asked).
    activity_codes: tuple[str, ...] = ()
    topic_code: str | None = None
    # A date that was read but not taken: (reason, the date as typed); reason as DateResult.error.
    date_problem: tuple[str, str] | None = None
    # "tuần trước": the Monday of that week, so the day can be asked.
    date_week: dt.date | None = None
    # Plan villages the place names; more than one when villages share the name.
    village_ids: tuple[int, ...] = ()
    # A count given as a range ("30-40 người"): field → its bounds, to be asked.
    ranges: tuple[tuple[str, int, int], ...] = ()
    # Counts read but out of range: field → the number as typed.
    out_of_range: tuple[tuple[str, str], ...] = ()
    # Words of a meeting ("họp nhóm", "sinh hoạt") that name no activity type.
    report_words: bool = False

    def understood(self) -> int:
        """How many parts of a report the message carried."""
        parts = (self.date, self.date_problem, self.date_week, self.place_text, self.total,
                 self.women, self.ethnic, self.children, self.ranges or None,
                 self.out_of_range or None, self.topic_code)
        return sum(value is not None for value in parts)


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
    low_high: tuple[int, int] | None = None  # a range "30-40"
    too_big: bool = False  # a number beyond REPORT_COUNT_MAX


@lru_cache(maxsize=1)
def _labels() -> tuple[tuple[tuple[str, ...], str], ...]:
    """Count labels, longest first, so "nu va tre em gai" is one label, not "nu" and "tre em"."""
    pairs = [(tuple(label.split()), name)
             for name, labels in vocabulary().count_labels.items() for label in labels]
    return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))


@lru_cache(maxsize=1)
def _label_ahead() -> re.Pattern[str]:
    return re.compile(
        r" ?(?:" + "|".join(re.escape(" ".join(words)) for words, _ in _labels()) + r")(?![a-z0-9])"
    )


def topic_phrases(topics: Mapping[str, str]) -> dict[str, str]:
    """Folded phrases naming each topic (code → name): the name, and without "phòng chống"."""
    phrases: dict[str, str] = {}
    for code, name in topics.items():
        folded = fold(name)
        phrases.setdefault(folded, code)
        for prefix in vocabulary().topic_prefixes:
            if folded.startswith(prefix + " ") and len(folded.split()) - len(prefix.split()) >= 2:
                phrases.setdefault(folded[len(prefix) + 1:], code)
    return phrases


def _find_all(folded: str, phrases: Mapping[str, str]) -> list[tuple[int, int, str]]:
    found = []
    for phrase, code in phrases.items():
        if not fold(phrase):
            continue
        found += [(m.start(), m.end(), code) for m in re.finditer(words_pattern(phrase), folded)]
    return found


def _outermost(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Drop matches inside a longer one: "doi thoai" inside "doi thoai chinh sach"."""
    return [s for s in spans if not any(
        o != s and o[0] <= s[0] and s[1] <= o[1] and (o[1] - o[0]) > (s[1] - s[0]) for o in spans)]


def parse_quick_report(
    text: str, today: date, earliest: date, activity_keywords: Mapping[str, str],
    villages: Sequence[Village] = (), topics: Mapping[str, str] | None = None,
) -> QuickReport:
    """Pull the activity, date, place, topic and head counts out of one message."""
    head, tail = text[:REPORT_INPUT_LIMIT], text[REPORT_INPUT_LIMIT:]
    folded, origin = soft_fold(head)
    blocks: list[_Item] = []

    # A topic's words are the topic, never an activity type ("phòng chống bạo lực gia đình").
    topic_spans = _outermost(_find_all(folded, topic_phrases(topics or {})))
    topic_spans.sort()
    topic_code = topic_spans[0][2] if topic_spans else None
    activities = [s for s in _outermost(_find_all(folded, activity_keywords))
                  if not any(t[0] <= s[0] and s[1] <= t[1] for t in topic_spans)]
    activities.sort()
    codes = tuple(dict.fromkeys(code for _a, _b, code in activities))
    taken = [(a, b) for a, b, _c in [*topic_spans, *activities]]
    report_words = False
    for phrase in vocabulary().activity_words:
        for match in re.finditer(words_pattern(phrase), folded):
            if not any(match.start() < b and a < match.end() for a, b in taken):
                taken.append((match.start(), match.end()))
                report_words = True
    taken = [(a, b) for a, b in taken if not any(
        (a2, b2) != (a, b) and a2 <= a and b <= b2 for a2, b2 in taken)]
    blocks += [_Item(_BLOCK, "", a, b, consumed=True) for a, b in sorted(set(taken))]

    found_date, date_problem, date_week = _find_date(folded, today, earliest, blocks)

    village_ids: tuple[int, ...] = ()
    place_span: tuple[int, int] | None = None
    hit = find_village(folded, villages, [(b.start, b.end) for b in blocks])
    if hit is not None:
        village_ids = hit.ids
        place_span = (hit.marker_start if hit.marker_start is not None else hit.start, hit.end)
        blocks.append(_Item(_BLOCK, "", hit.start, hit.end, consumed=True))
        if hit.marker_start is not None:
            blocks.append(_Item(_BLOCK, "", hit.marker_start, hit.start, consumed=True))

    items = _label_items(_ranges(folded, _tokens(folded, blocks)))
    counts, ranges, out_of_range = _assign_counts(items)
    lone = None
    if "total" not in counts and "total" not in ranges and "total" not in out_of_range:
        lone = _lone_total(items)
        if lone is not None:
            _take(items[lone], "total", counts, ranges, out_of_range)
    if place_span is None:
        place_span = _find_place(items, lone)

    spans = [(item.start, item.end) for item in items if item.consumed]
    if place_span is not None:
        spans.append(place_span)
    original_spans = [(origin[a], origin[b - 1] + 1) for a, b in spans if b > a]
    place_text = None
    if place_span is not None:
        a, b = place_span
        place_text = tidy(head[origin[a] : origin[b - 1] + 1]) or None
    return QuickReport(
        activity_keyword=codes[0] if len(codes) == 1 else None,
        date=found_date,
        place_text=place_text,
        total=counts.get("total"),
        women=counts.get("women"),
        ethnic=counts.get("ethnic"),
        children=counts.get("children"),
        leftovers=tidy(cut(head, original_spans) + tail),
        activity_codes=codes if len(codes) > 1 else (),
        topic_code=topic_code,
        date_problem=(date_problem[0], tidy(head[origin[date_problem[1]]:
                                                   origin[date_problem[2] - 1] + 1]))
        if date_problem else None,
        date_week=date_week,
        village_ids=village_ids,
        ranges=tuple((name, *ranges[name]) for name in _FIELDS if name in ranges),
        out_of_range=tuple((name, out_of_range[name]) for name in _FIELDS
                           if name in out_of_range),
        report_words=report_words,
    )


_FIELDS = ("total", "women", "ethnic", "children")


def _find_date(
    folded: str, today: date, earliest: date, blocks: list[_Item]
) -> tuple[date | None, tuple[str, int, int] | None, date | None]:
    """The first date phrase: taken, or kept with the reason it cannot be taken."""
    found: date | None = None
    problem: tuple[str, int, int] | None = None
    week: date | None = None
    first = True
    for match in date_inside().finditer(folded):
        span = (match.start(), match.end())
        if any(span[0] < b.end and b.start < span[1] for b in blocks):
            continue
        if _looks_like_range(match, folded):
            continue
        result = resolve_date(match, today, earliest)
        if result.error == "invalid" and _dash_pair(match, folded):
            continue  # "30-40" is two numbers, not the 30th of the 40th month
        consumed = False
        if first:
            first = False
            consumed = True
            found = result.value
            if result.error == "week":
                week = result.week
            elif result.error is not None:
                problem = (result.error, *span)
                consumed = False
        # Later or unusable dates still must not be read as head counts.
        blocks.append(_Item(_BLOCK, "", *span, consumed=consumed))
    return found, problem, week


def _dash_pair(match: re.Match[str], folded: str) -> bool:
    return match.group("d") is not None and match.group("y") is None and "-" in folded[
        match.end("d"):match.start("m")]


def _looks_like_range(match: re.Match[str], folded: str) -> bool:
    """Read "10-12 người" as a head count range, not as the 10th of December."""
    if not _dash_pair(match, folded):
        return False
    return _label_ahead().match(folded, match.end()) is not None


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
    return _join_thousands(folded, items)


def _token_item(token: re.Match[str]) -> _Item:
    """Classify one token; numbers too big to be a head count are marked so."""
    piece = token.group()
    if piece[0].isdigit():
        value = whole_number(piece)
        if value is not None and value > REPORT_COUNT_MAX:
            return _Item(_NUM, piece, token.start(), token.end(), too_big=True)
        return _Item(_NUM, piece, token.start(), token.end(), value=value)
    if piece.isalpha():
        return _Item(_WORD, piece, token.start(), token.end())
    return _Item(_SEP, piece, token.start(), token.end())


def _join_thousands(folded: str, items: list[_Item]) -> list[_Item]:
    """"2 000 người" is two thousand: digit groups of three after one space are one number."""
    joined: list[_Item] = []
    for item in items:
        last = joined[-1] if joined else None
        if (last is not None and last.kind == item.kind == _NUM and item.value is not None
                and len(item.text) == 3 and item.text.isdigit()
                and folded[last.end:item.start] == " "
                and re.fullmatch(r"[0-9]{1,3}(?: [0-9]{3})*", last.text)
                and not _after_place(joined, len(joined) - 1)):
            text = last.text + " " + item.text
            value = int(text.replace(" ", ""))
            big = value > REPORT_COUNT_MAX
            joined[-1] = _Item(_NUM, text, last.start, item.end, value=None if big else value,
                               too_big=big)
            continue
        joined.append(item)
    return joined


def _after_place(items: list[_Item], index: int) -> bool:
    """Whether the number at `index` follows a unit word, as in "thôn 2", so it is no count."""
    before = items[index - 1] if index > 0 else None
    return before is not None and before.kind == _WORD and before.text in _PLACE_UNITS


def _ranges(folded: str, items: list[_Item]) -> list[_Item]:
    """"30-40", "30 đến 40", "30 hay 40": one item whose value is asked, never guessed."""
    range_words = vocabulary().range_words
    out: list[_Item] = []
    index = 0
    while index < len(items):
        item = items[index]
        nxt = items[index + 1] if index + 1 < len(items) else None
        after = items[index + 2] if index + 2 < len(items) else None
        if item.kind == _NUM and item.value is not None and not _after_place(items, index):
            # The tokeniser skips "-": a dash between two numbers is a range.
            if (nxt is not None and nxt.kind == _NUM and nxt.value is not None
                    and folded[item.end:nxt.start].strip() == "-"):
                out.append(_range_item(item, nxt))
                index += 2
                continue
            if (nxt is not None and after is not None and nxt.kind == _WORD
                    and nxt.text in range_words and after.kind == _NUM
                    and after.value is not None):
                out.append(_range_item(item, after))
                index += 3
                continue
        out.append(item)
        index += 1
    return out


def _range_item(low: _Item, high: _Item) -> _Item:
    a, b = sorted((low.value or 0, high.value or 0))
    return _Item(_NUM, f"{low.text}-{high.text}", low.start, high.end, low_high=(a, b))


def _label_items(items: list[_Item]) -> list[_Item]:
    """Merge the words of each count label ("phu nu", "tre duoi 16") into one label item."""
    merged: list[_Item] = []
    index = 0
    while index < len(items):
        for words, name in _labels():
            run = items[index : index + len(words)]
            if [item.text for item in run if item.kind in (_WORD, _NUM)] == list(words):
                merged.append(_Item(_LABEL, " ".join(words), run[0].start, run[-1].end, field=name))
                index += len(words)
                break
        else:
            merged.append(items[index])
            index += 1
    return merged


def _countable(item: _Item) -> bool:
    """A number that can be paired with a label: a count, a range, or one out of range."""
    return item.kind == _NUM and (item.value is not None or item.low_high is not None
                                  or item.too_big)


def _take(item: _Item, name: str, counts: dict[str, int],
          ranges: dict[str, tuple[int, int]], out_of_range: dict[str, str]) -> None:
    item.consumed = True
    if item.low_high is not None:
        ranges[name] = item.low_high
    elif item.too_big:
        out_of_range[name] = item.text
    else:
        counts[name] = item.value or 0


def _assign_counts(
    items: list[_Item],
) -> tuple[dict[str, int], dict[str, tuple[int, int]], dict[str, str]]:
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
                if not _countable(item) or index in used:
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
    ranges: dict[str, tuple[int, int]] = {}
    out_of_range: dict[str, str] = {}
    for name, (number_at, label_at) in (best or {}).items():
        items[label_at].consumed = True
        _take(items[number_at], name, counts, ranges, out_of_range)
        # The pair's span includes a ":" between label and number, so it leaves no debris.
        low, high = sorted((number_at, label_at))
        items[low].end = max(items[low].end, items[high].start)
    return counts, ranges, out_of_range


def _lone_total(items: list[_Item]) -> int | None:
    """Take the one unlabelled number as the total, as members often skip "người"."""
    candidates = [
        index
        for index, item in enumerate(items)
        if _countable(item) and not item.consumed and not _after_place(items, index)
    ]
    if len(candidates) > 1:
        # Of several, a number glued to a word is likely a name ("Tà Lú 1"); set those aside.
        candidates = [i for i in candidates if i == 0 or items[i - 1].kind != _WORD]
    return candidates[0] if len(candidates) == 1 else None


def _find_place(items: list[_Item], lone: int | None) -> tuple[int, int] | None:
    """The words after the first thôn/ở/tại, up to a separator, a date or a used count."""
    markers = vocabulary().place_markers & {"thon", "o", "tai"}
    for index, item in enumerate(items):
        if item.kind != _WORD or item.text not in markers or item.consumed:
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
        first = start if item.text in vocabulary().place_prepositions else index
        for used in range(index, end):
            items[used].consumed = True
        return items[first].start, items[end - 1].end
    return None
