"""Conversations declared as tables of steps; the context each step reads and writes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from handlers.parsing import fold
from handlers.types import Button, IdentityView, Inbound, PlanView, Reply, State
from messages_vi import Text, _
from storage import conversation as store


@dataclass(frozen=True)
class Settings:
    """What a conversation needs from configuration, passed in by the dispatcher."""

    media_dir: Path = Path("instance/media")
    max_photo_bytes: int = 5 * 1024 * 1024
    max_photos: int = 10
    resume_after_seconds: int = 30 * 60
    max_text: int = 1000


@dataclass
class Ctx:
    """Everything one message's handling may read or change; the dispatcher commits it."""

    session: Session
    identity: IdentityView
    state: State
    now: datetime
    today: date
    settings: Settings = field(default_factory=Settings)
    replies: list[Reply] = field(default_factory=list)
    origin: str | None = None  # the sender's network address, where the channel knows it
    _plan: PlanView | None = None

    @property
    def plan(self) -> PlanView:
        """The loaded plan's choices, read once per message."""
        if self._plan is None:
            self._plan = store.plan_view(self.session)
        return self._plan

    @property
    def draft(self) -> dict[str, Any]:
        return self.state.draft

    def refresh_identity(self) -> None:
        """Re-read who is writing after joining or linking changed it."""
        self.identity = store.identity_view(self.session, self.identity.id)

    def say(self, *text: Text | str, buttons: list[Button] | tuple[Button, ...] = ()) -> None:
        """Queue a reply; it reaches the member through the outbox after the commit."""
        self.replies.append(Reply.of(*text, buttons=buttons))

    def goto(self, flow: Flow, step: str) -> None:
        """Move to a step and ask its question."""
        self.state.flow, self.state.step = flow.name, step
        flow.steps[step].prompt(self)

    def finish(self) -> None:
        """Leave the current conversation; the draft is gone."""
        self.state.flow, self.state.step, self.state.draft = "", "", {}


@dataclass(frozen=True)
class Step:
    """One question: how to ask it, and what to do with an answer."""

    prompt: Callable[[Ctx], None]
    answer: Callable[[Ctx, Inbound, str], None]
    takes_photos: bool = False


@dataclass(frozen=True)
class Flow:
    """A conversation: its named steps. Entry points and fallbacks live in the router's table."""

    name: str
    steps: Mapping[str, Step]


def payload_for(flow: Flow, step: str, value: str) -> str:
    """Buttons carry their step, so a press on an old message is recognised as stale."""
    return f"{flow.name}.{step}:{value}"


def answer_value(flow: Flow, step: str, inbound: Inbound) -> str | None:
    """The value of a button for this step, or None when the press belongs to another step."""
    if inbound.payload is None:
        return None
    prefix = f"{flow.name}.{step}:"
    return inbound.payload[len(prefix) :] if inbound.payload.startswith(prefix) else None


def typed(inbound: Inbound) -> str:
    """The folded text of a message, for matching words typed with or without diacritics."""
    return fold(inbound.text[:300])


def step_button(flow: Flow, step: str, label: Text | str, value: str) -> Button:
    """A button that answers one step of one flow."""
    return Button(label, payload_for(flow, step, value))


STALE = _("That button belongs to an earlier message.")
