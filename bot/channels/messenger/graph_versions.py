"""Graph API versions and the dates Meta retires them, so a deployment hears of it in time.

From Meta's "Graph API — Changelog: Versions" page (developers.facebook.com/docs/graph-api/
changelog/versions), as published in 2026: each version is available for about two years after
the next one is released; a date of None is still to be announced.
"""

from __future__ import annotations

import re
from datetime import date

DEFAULT_GRAPH_VERSION = "v25.0"
WARN_DAYS = 60
AVAILABLE_UNTIL: dict[str, date | None] = {
    "v26.0": None,
    "v25.0": date(2028, 7, 29),
    "v24.0": date(2028, 2, 18),
    "v23.0": date(2027, 10, 8),
    "v22.0": date(2027, 5, 20),
    "v21.0": date(2027, 1, 21),
    "v20.0": date(2026, 9, 24),
    "v19.0": date(2026, 5, 21),
}
_VERSION = re.compile(r"^v\d{1,2}\.\d$")


def is_version(text: str) -> bool:
    """A Graph API version as the URL carries it: v25.0."""
    return bool(_VERSION.match(text))


def version_warning(version: str, today: date) -> str | None:
    """A sentence for operators when the configured version ends within WARN_DAYS, or has."""
    end = AVAILABLE_UNTIL.get(version)
    if end is None:
        return None
    days = (end - today).days
    if days < 0:
        return (f"FB_GRAPH_VERSION {version} was retired on {end:%d/%m/%Y}; Messenger calls "
                f"will fail: set FB_GRAPH_VERSION to {DEFAULT_GRAPH_VERSION} or newer")
    if days <= WARN_DAYS:
        return (f"FB_GRAPH_VERSION {version} is retired on {end:%d/%m/%Y}, in {days} days: "
                f"move to {DEFAULT_GRAPH_VERSION} or newer")
    return None
