"""The closed sets of values some columns hold; each member equals the string stored.

A CHECK constraint built from each enum (`check_in`) keeps the database to the same set.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint


class OutboxStatus(StrEnum):
    """Where a queued message is on its way to a person."""

    PENDING = "pending"  # waiting for its time
    SENDING = "sending"  # leased by a sender
    SENT = "sent"
    DIVERTED = "diverted"  # re-queued to another of the member's channels
    CAUGHT_UP = "caught_up"  # replaced by a fresh copy when the person wrote again
    OUTSIDE_WINDOW = "outside_window"  # the platform's reply window had closed; held back
    FAILED = "failed"
    UNREACHABLE = "unreachable"  # the platform refuses messages to this person
    ERASED = "erased"  # its words were erased with the member it was for
    PAUSED = "paused"  # a broadcast's row while the broadcast is paused
    CANCELLED = "cancelled"  # a broadcast's row never sent: the broadcast was cancelled
    HELD_QUOTA = "held_quota"  # Zalo OA's monthly proactive quota is spent; held until they write


class Consent(StrEnum):
    """The answer to the consent question (Decree 13/2023/NĐ-CP on personal data)."""

    PENDING = "pending"
    GIVEN = "given"
    REFUSED = "refused"


class Role(StrEnum):
    """A member's role in their team."""

    MEMBER = "member"
    LEADER = "leader"


class PhotoError(StrEnum):
    """Why a photo a person sent was not kept."""

    TOO_LARGE = "too_large"
    BAD_TYPE = "bad_type"
    FETCH_FAILED = "fetch_failed"


def check_in(column: str, values: type[StrEnum]) -> CheckConstraint:
    """A CHECK that a column holds one of an enum's values; the metadata's naming convention
    names it ck_<table>_<column>."""
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)
