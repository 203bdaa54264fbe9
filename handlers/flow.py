"""Conversations declared as tables of steps; the context each step reads and writes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    # A total above this is asked about ("Bạn chắc chứ?") before it is saved (MAX_PARTICIPANTS).
    max_participants: int = 500
    # Photos sent before a report is started wait this long to be offered to the next report;
    # 0: such photos are not kept at all (LOOSE_PHOTO_MINUTES).
    loose_photo_minutes: int = 30


@dataclass(frozen=True)
class Notice:
    """A message to someone other than the writer (an officer told of a case), queued in the
    same transaction as the writer's own replies."""

    identity_id: int
    channel: str
    locale: str
    reply: Reply


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
    notices: list[Notice] = field(default_factory=list)
    origin: str | None = None  # the sender's network address, where the channel knows it
    button_page: int = 1  # which page of a long list of buttons to show ("Xem thêm")
    paged: bool = False  # a reply of this message showed only a page of its buttons
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
        """Queue a reply; it reaches the member through the outbox after the commit.

        More than MAX_BUTTONS buttons are shown a page at a time (see page_buttons)."""
        self.paged = self.paged or len(buttons) > MAX_BUTTONS
        self.replies.append(Reply.of(*text, buttons=page_buttons(buttons, self.button_page)))

    def tell(self, identity_id: int, channel: str, locale: str, reply: Reply) -> None:
        """Queue a message to another person; it goes out with this message's commit."""
        self.notices.append(Notice(identity_id, channel, locale, reply))

    def goto(self, target: Flow | Step, step: str | None = None) -> None:
        """Move to a step and ask its question: `goto(STEP)`, or `goto(FLOW, "step name")`."""
        if isinstance(target, Flow):
            assert step is not None, "a flow needs the name of the step to go to"
            target = target.steps[step]
        self.state.flow, self.state.step = target.flow, target.name
        target.prompt(self)

    def finish(self) -> None:
        """Leave the current conversation; the draft is gone."""
        self.state.flow, self.state.step, self.state.draft = "", "", {}


@dataclass(eq=False)
class Step:
    """One question: how to ask it, and what to do with an answer.

    A step knows its name and its flow's once the flow is built: `Step(..., name="date")` in a
    sequence, or the key of a mapping. Compared by identity, so steps can key a dict.
    """

    prompt: Callable[[Ctx], None]
    answer: Callable[[Ctx, Inbound, str], None]
    takes_photos: bool = False
    name: str = ""
    long_text: bool = False  # answers may be longer than MAX_ANSWER_CHARS (notes)
    flow: str = field(default="", init=False)

    def payload(self, value: str) -> str:
        """What a button of this step carries, so a press on an old message is seen as stale."""
        return f"{self.flow}.{self.name}:{value}"

    def button(self, label: Text | str, value: str) -> Button:
        """A button that answers this step."""
        return Button(label, self.payload(value))

    def value(self, inbound: Inbound) -> str | None:
        """The value of a button for this step, or None when the press belongs to another."""
        prefix = self.payload("")
        if inbound.payload is None or not inbound.payload.startswith(prefix):
            return None
        return inbound.payload[len(prefix) :]

    def owns(self, payload: str) -> bool:
        """Whether a button payload answers this step."""
        return payload.startswith(self.payload(""))


class Flow:
    """A conversation: its steps, in order. Entry points and fallbacks live in the router's table.

    `on_photos` takes photos sent at any step (the report keeps them whenever they come);
    `on_return` greets someone coming back to the flow after `resume_after_seconds`.
    """

    def __init__(
        self, name: str, steps: Mapping[str, Step] | Sequence[Step], *,
        on_photos: Callable[[Ctx, Inbound], None] | None = None,
        on_return: Callable[[Ctx], None] | None = None,
    ) -> None:
        self.name = name
        self.on_photos = on_photos
        self.on_return = on_return
        named = (list(steps.items()) if isinstance(steps, Mapping)
                 else [(step.name, step) for step in steps])
        self.steps: dict[str, Step] = {}
        for key, step in named:
            assert key and step.name in ("", key), f"step {key!r} of {name} is misnamed"
            assert not step.flow, f"step {key!r} already belongs to the flow {step.flow}"
            step.name, step.flow = key, name
            self.steps[key] = step

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, {list(self.steps)})"


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
# Longer answers are refused, except at a step that takes long text (its own limit applies).
MAX_ANSWER_CHARS = 2000
COMMAND_PREFIX = "cmd:"
# A cheap phone shows about six buttons above the keyboard; Zalo and Messenger cut longer rows.
MAX_BUTTONS = 6
MORE_COMMAND = "more"  # "cmd:more:2": the same question again with the second page of buttons


def page_buttons(buttons: Sequence[Button], page: int = 1) -> tuple[Button, ...]:
    """At most MAX_BUTTONS buttons: a longer list shows MAX_BUTTONS - 1 choices and "Xem thêm"
    (the last page offers the first one again). The choices keep their payloads, so a press on
    any page answers the question as before."""
    buttons = tuple(buttons)
    if len(buttons) <= MAX_BUTTONS:
        return buttons
    size = MAX_BUTTONS - 1
    pages = -(-len(buttons) // size)
    page = min(max(page, 1), pages)
    shown = buttons[(page - 1) * size: page * size]
    if page < pages:
        return (*shown, Button(_("More"), f"{COMMAND_PREFIX}{MORE_COMMAND}:{page + 1}"))
    return (*shown, Button(_("Back to the first choices"), f"{COMMAND_PREFIX}{MORE_COMMAND}:1"))


def command_payload(command: str) -> str:
    """What a button for a command carries: a menu entry, "continue", "erase"."""
    return f"{COMMAND_PREFIX}{command}"


def command_button(label: Text | str, command: str) -> Button:
    """A button that runs a command from the router's table, from any step."""
    return Button(label, command_payload(command))
