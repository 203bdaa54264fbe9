"""Per-channel send pacing from the platforms' published limits, overall and per chat."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Messages per second overall, per private chat, and per group chat."""

    per_second: float
    per_chat_per_second: float | None = None
    per_group_per_second: float | None = None


# Telegram Bot FAQ: about 30 messages/s overall, 1/s in one chat, 20/min in a group. No
# headroom is taken off the rate: the Pacer counts each send from its start until a second
# after its answer, which covers whatever delay there is between us and the API.
TELEGRAM = Limits(per_second=30.0, per_chat_per_second=1.0, per_group_per_second=20 / 60)
UNLIMITED = Limits(per_second=1_000_000.0)

# Each platform channel's override, as "{PREFIX}_RATE_LIMIT" (see parse_limits).
RATE_LIMIT_ENV = {"telegram": "TELEGRAM_RATE_LIMIT", "facebook": "FB_RATE_LIMIT",
                  "zalo": "ZALO_RATE_LIMIT", "zalo_bot": "ZALO_BOT_RATE_LIMIT"}
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0}


def parse_limits(text: str, default: Limits) -> Limits:
    """An operator's override: "29/s", "29/s; chat 1/s; group 20/min", or "unlimited".

    Parts left out keep the platform's default; a rate is a positive number per s or min.
    Raises ValueError with a reason a person can act on.
    """
    if text.strip().lower() == "unlimited":
        return UNLIMITED
    values: dict[str, float | None] = {"chat": default.per_chat_per_second,
                                       "group": default.per_group_per_second}
    overall = default.per_second
    for part in filter(None, (p.strip() for p in text.split(";"))):
        scope, _, rate = part.rpartition(" ")
        scope = scope.strip().lower() or "overall"
        count, slash, unit = rate.partition("/")
        if scope not in {"overall", *values} or not slash or unit.lower() not in _UNITS:
            raise ValueError(f"{part!r} is not a rate such as 29/s, chat 1/s or group 20/min")
        try:
            per_second = float(count) / _UNITS[unit.lower()]
        except ValueError:
            raise ValueError(f"{count!r} in {part!r} is not a number") from None
        if not 0 < per_second < float("inf"):
            raise ValueError(f"{part!r}: a rate must be more than zero")
        if scope == "overall":
            overall = per_second
        else:
            values[scope] = per_second
    return Limits(per_second=overall, per_chat_per_second=values["chat"],
                  per_group_per_second=values["group"])


class Pacer:
    """Reserves send times so no window exceeds the limits; callers sleep until their slot.

    Each key keeps the earliest time its next message may start (a virtual schedule, as in
    GCRA), so the limiter holds one float per recently active chat and no queues.

    The schedule alone is not enough on a loaded machine: the platform counts a message when
    it arrives, somewhere between the moment we start the call and the moment its answer is
    back, and that delay varies from one call to the next. So at the moment of sending
    (`admit`), a send still on the wire, or answered less than a second ago, counts against
    the overall limit, and a chat's next message starts a whole interval after the previous
    one was answered (`finish`). Whenever the platform saw them arrive, no one-second window
    can then hold more than the limit. A "too many requests" stops every send, scheduled or
    about to go, for as long as the platform said (`push_back`).
    """

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._next_any = 0.0
        self._next_chat: dict[str, float] = {}
        # Sends counted in the sliding second: how many are on the wire, and when the ones
        # answered were answered (in order); none kept when unlimited.
        self._window_cap = math.floor(limits.per_second) if limits.per_second <= 1000 else 0
        self._on_wire = 0
        self._answered: deque[float] = deque()
        self._blocked_until = 0.0

    def reserve(self, chat: str, *, group: bool = False, urgent: bool = False) -> float:
        """Book the earliest slot for a message to `chat`; returns seconds to wait for it.

        An urgent message (a reply to someone in a conversation) is not queued behind the
        slots broadcast rows booked ahead: it waits only for its own chat, and `admit` still
        keeps the overall limit when it goes, the booked rows then waiting a little longer.
        """
        now = self._clock()
        chat_rate = self._chat_rate(group)
        start = max(now, self._next_chat.get(chat, 0.0), self._blocked_until)
        if not urgent:
            start = max(start, self._next_any)
            self._next_any = start + 1.0 / self.limits.per_second
        if chat_rate:
            self._next_chat[chat] = start + 1.0 / chat_rate
        if len(self._next_chat) > 50_000:
            self._forget(now)
        return start - now

    def peek(self, chat: str, *, group: bool = False, urgent: bool = False) -> float:
        """Seconds until a message to `chat` could start, without booking it."""
        now = self._clock()
        booked = 0.0 if urgent else self._next_any - now
        return max(0.0, booked, self._next_chat.get(chat, 0.0) - now, self._blocked_until - now)

    def backlog(self) -> float:
        """Seconds of sends already booked ahead of now, across all chats."""
        return max(0.0, self._next_any - self._clock(), self._blocked_until - self._clock())

    def admit(self) -> float:
        """At the moment of sending: seconds to wait first, or 0 and the send is counted
        (then `finish` must follow when its answer is back, whatever the answer).

        The schedule spaces sends evenly, but a late event loop releases several due slots at
        once, and calls reach the platform after different delays; platforms count in sliding
        windows, so every send on the wire or answered within the last second is counted.
        """
        now = self._clock()
        if self._blocked_until > now:
            return self._blocked_until - now
        if not self._window_cap:
            return 0.0
        answered = self._answered
        while answered and answered[0] <= now - 1.0:
            answered.popleft()
        if self._on_wire + len(answered) >= self._window_cap:
            # The earliest a place frees up: the oldest answer leaving the second, or (all
            # places on the wire) soon after one comes back.
            return answered[0] + 1.0 - now if answered else 0.005
        self._on_wire += 1
        return 0.0

    def finish(self, chat: str, *, group: bool = False) -> None:
        """An admitted send's answer is back: it counts for one more second from now, and
        the chat's next message waits its interval from now too."""
        if not self._window_cap:
            return
        now = self._clock()
        self._on_wire = max(0, self._on_wire - 1)
        self._answered.append(now)
        chat_rate = self._chat_rate(group)
        if chat_rate:
            self._next_chat[chat] = max(self._next_chat.get(chat, 0.0), now + 1.0 / chat_rate)

    def push_back(self, seconds: float) -> None:
        """The platform said "too many requests": nobody sends until it said we may."""
        until = self._clock() + seconds
        self._blocked_until = max(self._blocked_until, until)
        self._next_any = max(self._next_any, until)

    def _chat_rate(self, group: bool) -> float | None:
        return self.limits.per_group_per_second if group else self.limits.per_chat_per_second

    def _forget(self, now: float) -> None:
        self._next_chat = {k: v for k, v in self._next_chat.items() if v > now}
