"""Reading what volunteers type, so the conversations can ask only for what is missing.

Nothing here speaks to people: functions return values and short English error codes, and the
conversation layer turns the codes into Vietnamese. The word lists live in
handlers/data/vocabulary.toml, read by handlers.parsing.vocabulary.
"""

from handlers.parsing.dates import DATE_INPUT_LIMIT, DateResult, format_date_input, parse_date
from handlers.parsing.numbers import (
    COUNT_INPUT_LIMIT,
    CountResult,
    Participants,
    check_participants,
    parse_count,
)
from handlers.parsing.places import arabic_numerals, find_village, match_villages
from handlers.parsing.quick import (
    REPORT_COUNT_MAX,
    REPORT_INPUT_LIMIT,
    QuickReport,
    parse_quick_report,
    topic_phrases,
)
from handlers.parsing.sensitive import find_sensitive
from handlers.parsing.text import fold
from handlers.parsing.vocabulary import command_for, expand, is_agreement, vocabulary

__all__ = [
    "COUNT_INPUT_LIMIT", "DATE_INPUT_LIMIT", "REPORT_COUNT_MAX", "REPORT_INPUT_LIMIT",
    "CountResult", "DateResult", "Participants", "QuickReport", "arabic_numerals",
    "check_participants", "command_for", "expand", "find_sensitive", "find_village", "fold",
    "format_date_input", "is_agreement", "match_villages", "parse_count", "parse_date",
    "parse_quick_report", "topic_phrases", "vocabulary",
]
