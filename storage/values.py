"""The values storage hands to conversations: plain dataclasses, no database rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, NotRequired, TypedDict


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
    """The person writing: their platform identity, consent answer and member, if joined."""

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
    """The loaded plan's phase and the choices a report offers."""

    phase_start: date
    phase_end: date
    activity_types: tuple[Choice, ...]
    topics: tuple[Choice, ...]


class ButtonPayload(TypedDict):
    """A button as queued: the words in the reader's language and what a press sends back."""

    label: str
    payload: str
    full: NotRequired[str]  # the whole label, when `label` was shortened for a button row


class MessagePayload(TypedDict):
    """A message as queued in the outbox, already translated for its reader."""

    text: str
    buttons: list[ButtonPayload]
    media: list[int]  # media ids
    tried: NotRequired[list[str]]  # channels a diverted message was already queued on
    purpose: NotRequired[str]  # reminder | escalation | digest: what the scheduler queued it for


class AckPayload(TypedDict):
    """A platform's "button press received", ahead of the reply."""

    kind: Literal["ack"]
    id: str


OutboxPayload = MessagePayload | AckPayload


@dataclass(frozen=True)
class Village:
    """A village of the plan with its commune, for reading names in what members type."""

    id: int
    name: str
    commune_id: int | None
    commune_name: str
