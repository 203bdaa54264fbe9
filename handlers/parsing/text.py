"""Folding what members type, so Vietnamese typed without diacritics still matches."""

from __future__ import annotations

import re
import unicodedata

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


def soft_fold(text: str) -> tuple[str, list[int]]:
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


def cut(text: str, spans: list[tuple[int, int]]) -> str:
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


def tidy(text: str) -> str:
    """Collapse the spaces and orphaned commas that removing recognised parts leaves behind."""
    joined = " ".join(text.split())
    return _LIST_PUNCTUATION.sub(r"\1 ", joined).strip(" ,;.:-")


def words_pattern(phrase: str) -> str:
    """A regex for a folded phrase inside folded text: whole words, any punctuation between."""
    words = fold(phrase).split()
    return r"(?<![a-z0-9])" + r"[^a-z0-9]*".join(map(re.escape, words)) + r"(?![a-z0-9])"
