"""The values that cross between channels, the dispatcher and the conversations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from messages_vi import Text


@dataclass(frozen=True)
class Photo:
    """A photo a member sent, already in the media store, or refused with a reason."""

    media_id: int | None
    size: int
    error: str | None = None  # "too_large" | "bad_type" | "fetch_failed"


@dataclass(frozen=True)
class Inbound:
    """One thing a person sent, whatever the platform: text, a button press, photos."""

    channel: str
    external_id: str
    event_id: str
    text: str = ""
    payload: str | None = None
    photos: tuple[Photo, ...] = ()
    start_param: str | None = None
    locale: str | None = None
    received_at: datetime | None = None
    edited: bool = False  # a platform's "message edited": the earlier answer already counted


@dataclass(frozen=True)
class Button:
    """A choice shown to the member; the payload comes back when it is pressed."""

    label: Text | str
    payload: str


@dataclass(frozen=True)
class Reply:
    """A neutral message: each channel renders it to what its platform allows."""

    text: tuple[Text | str, ...]
    buttons: tuple[Button, ...] = ()
    media: tuple[int, ...] = ()

    @staticmethod
    def of(*text: Text | str, buttons: tuple[Button, ...] | list[Button] = ()) -> Reply:
        """Build a reply from paragraphs and optional buttons."""
        return Reply(text=tuple(text), buttons=tuple(buttons))


@dataclass
class State:
    """Where an identity is in a conversation; saved after every message."""

    flow: str = ""
    step: str = ""
    draft: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class MemberView:
    """What conversations know about a member; the database row stays in storage."""

    id: int
    name: str
    role: str
    team_id: int | None
    team_name: str
    team_area_id: int | None
    locale: str


@dataclass(frozen=True)
class IdentityView:
    id: int
    channel: str
    consent: str
    locale: str
    member: MemberView | None


@dataclass(frozen=True)
class Choice:
    """A code and its display name: an activity type, a topic, an area."""

    id: int
    code: str
    name: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanView:
    phase_start: date
    phase_end: date
    activity_types: tuple[Choice, ...]
    topics: tuple[Choice, ...]
