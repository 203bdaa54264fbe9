"""Quiet hours: parsed from QUIET_HOURS, wrapping midnight, computed on the local clock."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import ConfigError, load_config
from bot.quiet_hours import QuietHours

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def test_default_wraps_midnight():
    quiet = QuietHours.parse("21:00-06:30")
    assert quiet.contains(time(21, 0)) and quiet.contains(time(23, 59))
    assert quiet.contains(time(6, 29))
    assert not quiet.contains(time(6, 30)) and not quiet.contains(time(20, 59))


def test_next_allowed_moves_to_the_end_of_the_window_in_local_time():
    quiet = QuietHours.parse("21:00-06:30")
    # 15:00 UTC is 22:00 in Hà Nội: held to 06:30 the next local morning.
    moved = quiet.next_allowed(datetime(2026, 9, 9, 15, 0, tzinfo=UTC), TZ)
    assert moved == datetime(2026, 9, 10, 6, 30, tzinfo=TZ)
    # 02:00 local is already the next day: held to 06:30 the same day.
    moved = quiet.next_allowed(datetime(2026, 9, 10, 2, 0, tzinfo=TZ), TZ)
    assert moved == datetime(2026, 9, 10, 6, 30, tzinfo=TZ)
    noon = datetime(2026, 9, 10, 12, 0, tzinfo=TZ)
    assert quiet.next_allowed(noon, TZ) == noon


def test_off_and_bad_values():
    assert QuietHours.parse("off").off
    assert QuietHours.parse("08:00-08:00").off
    for bad in ("21-6", "25:00-06:00", "21:00", "abc"):
        with pytest.raises(ValueError):
            QuietHours.parse(bad)


def test_setting_is_checked_at_start(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "DUAN8_ENV_FILE": str(tmp_path / "x")}
    assert str(load_config(env, instance_path=tmp_path).quiet_hours) == "21:00-06:30"
    assert load_config({**env, "QUIET_HOURS": "off"}, instance_path=tmp_path).quiet_hours.off
    with pytest.raises(ConfigError, match="QUIET_HOURS"):
        load_config({**env, "QUIET_HOURS": "late"}, instance_path=tmp_path)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
       st.integers(0, 23), st.integers(0, 59), st.integers(0, 23), st.integers(0, 59))
def test_next_allowed_is_never_quiet_and_never_earlier(naive, h1, m1, h2, m2):
    quiet = QuietHours.parse(f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}")
    moment = naive.replace(tzinfo=TZ)
    allowed = quiet.next_allowed(moment, TZ)
    assert allowed >= moment
    assert not quiet.contains(allowed.timetz().replace(tzinfo=None))
