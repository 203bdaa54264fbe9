"""Quiet hours: the local hours in which no broadcast or reminder is sent.

Replies to a member who just wrote are never held; only messages the service starts itself are.
The window may wrap midnight (the default, 21:00–06:30, does), so "inside" is computed on the
local wall clock of the programme's time zone, never in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_QUIET_HOURS = "21:00-06:30"
_SPEC = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class QuietHours:
    """A local window [start, end); `start == end` or `None` bounds mean no quiet hours."""

    start: time | None
    end: time | None

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """`HH:MM-HH:MM` or `off`; raises ValueError with a readable reason."""
        if text.strip().lower() in {"off", "none", "no", "0"}:
            return cls(None, None)
        match = _SPEC.match(text)
        if not match:
            raise ValueError(f"expected HH:MM-HH:MM or off, got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"not a time of day: {text!r}")
        start, end = time(h1, m1), time(h2, m2)
        return cls(None, None) if start == end else cls(start, end)

    @property
    def off(self) -> bool:
        return self.start is None or self.end is None

    def __str__(self) -> str:
        if self.start is None or self.end is None:
            return "off"
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        """Whether a local wall-clock time falls inside the quiet window."""
        if self.start is None or self.end is None:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """`moment` itself when outside quiet hours, else the end of the window (aware, in tz).

        `moment` must be timezone-aware; the answer is in `tz`.
        """
        if moment.tzinfo is None:
            raise ValueError("next_allowed needs an aware datetime")
        local = moment.astimezone(tz)
        if self.end is None or not self.contains(local.timetz().replace(tzinfo=None)):
            return local
        end_today = datetime.combine(local.date(), self.end, tzinfo=tz)
        return end_today if end_today > local else end_today + timedelta(days=1)
