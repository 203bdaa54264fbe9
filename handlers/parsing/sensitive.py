"""Spotting phone and ID numbers in free text, so a victim's identity is never stored."""

from __future__ import annotations

import re

from handlers.parsing.text import fold

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
