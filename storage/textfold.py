"""Folding of names so that what a volunteer types matches what the plan says."""

from __future__ import annotations

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold_words(text: str) -> str:
    """Lowercase, strip diacritics (đ too, which Unicode does not decompose), keep single spaces."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return " ".join(_NON_ALNUM.sub(" ", bare).split())


def fold_name(text: str) -> str:
    """The search key: folded and without spaces, so "ta lu 1", "TaLu1" and "Tà Lú 1" agree."""
    return fold_words(text).replace(" ", "")
