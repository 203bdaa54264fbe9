"""The values that cross between channels, the dispatcher and the conversations.

Inbound, Photo, Button and Reply are the conversations' own; State, IdentityView, MemberView,
Choice and PlanView are storage's (storage.values), re-exported here under the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from messages_vi import Text

# Storage owns the values it returns; conversations keep importing them from here.
from storage.enums import PhotoError
from storage.values import Choice, IdentityView, MemberView, PlanView, State

__all__ = ["Button", "Choice", "IdentityView", "Inbound", "MemberView", "Photo", "PlanView",
           "Reply", "State"]


@dataclass(frozen=True)
class Photo:
    """A photo a member sent, already in the media store, or refused with a reason."""

    media_id: int | None
    size: int
    error: PhotoError | None = None


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
