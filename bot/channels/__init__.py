"""One module per platform: each turns platform requests into Incoming and Replies into calls."""

import os

# python-telegram-bot 22 moves durations (RetryAfter.retry_after…) to timedelta; opt in now so
# the code reads one type and no deprecation warning fires on every 429.
os.environ.setdefault("PTB_TIMEDELTA", "1")
