"""Every word a user reads: gettext catalogs, Vietnamese first, rendered with an explicit locale.

Conversation code builds `Text` values with `_()`; nothing is translated until `render()` is
called with the reader's locale. That keeps handlers free of request context and lets the worker
translate outside any web request, where flask-babel would silently return the source text.
"""

from __future__ import annotations

import gettext
import io
import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_date as _babel_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

log = logging.getLogger(__name__)

CATALOG_DIR = Path(__file__).resolve().parent
DOMAIN = "messages"
DEFAULT_LOCALE = "vi"
LOCALES = ("vi", "en")
# Babel's Vietnamese short date is d/M/yy; the programme writes dates as dd/MM/yyyy.
DATE_PATTERN = "dd/MM/yyyy"
_BABEL_LOCALE = {"vi": "vi_VN", "en": "en_GB"}


@dataclass(frozen=True)
class Text:
    """A message id with its parameters, translated only when rendered for a reader."""

    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)


def _(msgid: str, **params: Any) -> Text:
    """Mark a message for translation; `{name}` placeholders are filled at render time."""
    return Text(msgid, params)


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The catalog for `locale`, compiled from its .po file in memory the first time it is used."""
    po_path = CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po_path.is_file():
        return gettext.NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    # Fuzzy entries are not trustworthy translations; the source text is shown instead.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def normalise_locale(locale: str | None) -> str:
    """Map whatever a platform reports ("vi_VN", "en-US", None) to a catalog we ship."""
    short = (locale or DEFAULT_LOCALE).replace("-", "_").split("_")[0].lower()
    return short if short in LOCALES else DEFAULT_LOCALE


def format_date(value: date | datetime, locale: str = DEFAULT_LOCALE) -> str:
    """A date as dd/MM/yyyy whatever the locale, as the programme's forms write it."""
    day = value.date() if isinstance(value, datetime) else value
    return _babel_date(day, DATE_PATTERN, locale=_BABEL_LOCALE[normalise_locale(locale)])


def format_number(value: int | float, locale: str = DEFAULT_LOCALE) -> str:
    """A number in the reader's form: 1.200 in Vietnamese, 1,200 in English."""
    return format_decimal(value, locale=_BABEL_LOCALE[normalise_locale(locale)])


def _format_param(value: Any, locale: str) -> str:
    if isinstance(value, Text):
        return render(value, locale)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, date | datetime):
        return format_date(value, locale)
    if isinstance(value, int | float):
        return format_number(value, locale)
    return str(value)


class _Params(dict[str, str]):
    """Leaves an unknown placeholder visible instead of raising in front of a user."""

    def __missing__(self, key: str) -> str:
        log.error("message placeholder {%s} has no value", key)
        return "{" + key + "}"


def render(text: Text | str, locale: str = DEFAULT_LOCALE) -> str:
    """Translate and fill a message for one reader."""
    if isinstance(text, str):
        return text
    translated = translations(normalise_locale(locale)).gettext(text.msgid)
    if not text.params:
        return translated
    params = _Params({k: _format_param(v, locale) for k, v in text.params.items()})
    return string.Formatter().vformat(translated, (), params)


def join_lines(lines: list[Text]) -> Text:
    """Several messages shown as one, each line translated on its own."""
    return Text("\n".join(f"{{l{i}}}" for i in range(len(lines))),
                {f"l{i}": line for i, line in enumerate(lines)})


# About half a 360-pixel-wide screen's row. (Zalo OA and Messenger take 20 at most; longer
# labels there go as a numbered list, bot/channels/zalo_oa/buttons.py and messenger/outbound.py.)
LABEL_LIMIT = 24


def short_labels(labels: list[str], limit: int = LABEL_LIMIT) -> list[str]:
    """Labels of at most `limit` characters, cut at a word with "…"; labels that would become
    the same after cutting are cut without regard to words, or else left whole."""
    def cut(label: str, words: bool) -> str:
        if len(label) <= limit:
            return label
        head = label[:limit - 1]
        if words and " " in head.strip():
            head = head[:head.rstrip().rfind(" ")]
        return head.rstrip(" ,;:/-(") + "…"

    shortened = [cut(label, True) for label in labels]
    for index, label in enumerate(shortened):
        if shortened.count(label) > 1:
            hard = cut(labels[index], False)
            clash = [cut(labels[i], False) for i, other in enumerate(shortened) if other == label]
            shortened[index] = hard if clash.count(hard) == 1 else labels[index]
    return shortened


def placeholders(message: str) -> set[str]:
    """The `{name}` fields of a message, for checking that translations keep them all."""
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(message) if name}
