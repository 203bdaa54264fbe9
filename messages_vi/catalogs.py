"""Maintaining the catalogs with Babel: extract, update and compile, plus checks used by tests."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from messages_vi import CATALOG_DIR, DOMAIN, LOCALES, placeholders

log = logging.getLogger(__name__)

ROOT = CATALOG_DIR.parent
POT = CATALOG_DIR / f"{DOMAIN}.pot"


def _babel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])


def po_path(locale: str) -> Path:
    return CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> None:
    """Write messages.pot from the `_()` calls in bot/ and handlers/."""
    # Run from the project root so the catalog's source references are relative paths.
    with contextlib.chdir(ROOT):
        _babel("extract", "-F", "messages_vi/babel.cfg", "-k", "_", "--no-wrap",
               "--sort-by-file", "--project", "duan8", "-o", "messages_vi/messages.pot", ".")


def update() -> None:
    """Merge the template into each locale's catalog, creating missing ones."""
    for locale in LOCALES:
        command = "update" if po_path(locale).exists() else "init"
        _babel(command, "-i", str(POT), "-d", str(CATALOG_DIR), "-l", locale, "-D", DOMAIN,
               *(["--no-wrap"] if command == "update" else []))


def read_catalog(locale: str) -> Catalog:
    with po_path(locale).open("rb") as handle:
        return read_po(handle, locale=locale)


def problems_in(locale: str, *, require_all: bool) -> list[str]:
    """Untranslated, fuzzy or placeholder-changing entries of one catalog."""
    problems = []
    for message in read_catalog(locale):
        if not message.id:
            continue
        msgid = str(message.id)
        where = f"{locale}: {msgid[:60]!r}"
        if message.fuzzy:
            problems.append(f"{where} is fuzzy")
        if not message.string:
            if require_all:
                problems.append(f"{where} has no translation")
            continue
        if placeholders(str(message.string)) != placeholders(msgid):
            problems.append(f"{where} changes the placeholders")
    return problems


def compile_all() -> list[str]:
    """Check every catalog (Vietnamese must be complete) and write .mo files beside them."""
    problems = problems_in("vi", require_all=True) + problems_in("en", require_all=False)
    for locale in LOCALES:
        buffer = io.BytesIO()
        write_mo(buffer, read_catalog(locale), use_fuzzy=False)
        po_path(locale).with_suffix(".mo").write_bytes(buffer.getvalue())
    return problems
