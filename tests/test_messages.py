"""The catalogs: Vietnamese complete, nothing fuzzy, placeholders kept, formats as people write."""

from __future__ import annotations

from datetime import date

from messages_vi import Text, _, catalogs, format_date, format_number, placeholders, render


def test_catalog_template_matches_the_code(tmp_path, monkeypatch):
    """Every `_()` in the code is in the template (run `make i18n` when this fails)."""
    before = catalogs.POT.read_text(encoding="utf-8")
    ids_before = {m.id for m in catalogs.read_catalog("vi") if m.id}
    catalogs.extract()
    try:
        from babel.messages.pofile import read_po

        with catalogs.POT.open("rb") as handle:
            extracted = {m.id for m in read_po(handle) if m.id}
        missing = extracted - ids_before
        assert not missing, f"not in the vi catalog: {sorted(missing)[:5]}"
    finally:
        catalogs.POT.write_text(before, encoding="utf-8")


def test_vietnamese_is_complete_and_english_is_clean():
    assert catalogs.problems_in("vi", require_all=True) == []
    assert catalogs.problems_in("en", require_all=False) == []


def test_placeholders_survive_translation():
    text = render(_("Saved. Your report number is {number}. Thank you!", number="BC-00042"), "vi")
    assert "BC-00042" in text and "{" not in text


def test_dates_and_numbers_in_vietnamese_form():
    assert format_date(date(2025, 3, 5), "vi") == "05/03/2025"
    assert format_date(date(2025, 3, 5), "en") == "05/03/2025"
    assert format_number(1200, "vi") == "1.200"
    filled = render(Text("{d} {n}", {"d": date(2025, 9, 10), "n": 30000}), "vi")
    assert filled == "10/09/2025 30.000"


def test_translation_outside_any_request():
    # The worker renders with an explicit locale: no Flask app or request is involved here.
    assert render(_("Report an activity"), "vi") == "Báo cáo hoạt động"
    assert render(_("Report an activity"), "en") == "Report an activity"
    assert render(_("Report an activity"), "fr") == "Báo cáo hoạt động"  # unknown → Vietnamese


def test_placeholder_helper():
    assert placeholders("a {x} b {y}") == {"x", "y"}


def test_every_catalog_entry_is_whole():
    """Each msgid is followed by its msgstr: catalogs merged as a union of lines can lose one,
    and gettext then drops the entry with only a warning."""
    from pathlib import Path

    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[1] / "messages_vi"
    for path in (root / "messages.pot", *sorted(root.glob("*/LC_MESSAGES/messages.po"))):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.startswith("msgid "):
                following = number + 1
                while following < len(lines) and lines[following].startswith('"'):
                    following += 1
                assert following < len(lines) and lines[following].startswith(
                    ("msgstr", "msgid_plural")), f"{path.name}:{number + 1}: {line}"
        with path.open("rb") as handle:
            read_po(handle, abort_invalid=True)
