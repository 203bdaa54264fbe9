"""The routing table and the flows' step tables, checked without a conversation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers import menu, router
from handlers.flow import COMMAND_PREFIX, Flow, Step
from handlers.types import Inbound


def _noop(*_args: object) -> None:
    return None


def _inbound(payload: str | None) -> Inbound:
    return Inbound(channel="web", external_id="x", event_id="e", payload=payload)


def test_every_step_knows_its_name_and_its_flow() -> None:
    for name, flow in router.FLOWS.items():
        assert flow.name == name
        for step_name, step in flow.steps.items():
            assert (step.flow, step.name) == (name, step_name)


def test_a_flow_built_from_a_mapping_names_its_steps() -> None:
    first, second = Step(_noop, _noop), Step(_noop, _noop)
    flow = Flow("demo", {"first": first, "second": second})
    assert [(s.flow, s.name) for s in flow.steps.values()] == [("demo", "first"),
                                                                ("demo", "second")]
    with pytest.raises(AssertionError):
        Flow("other", (first,))  # a step belongs to one flow
    with pytest.raises(AssertionError):
        Flow("unnamed", (Step(_noop, _noop),))


_value = st.text(max_size=40)


@given(value=_value, other=_value)
def test_a_button_answers_its_own_step_only(value: str, other: str) -> None:
    steps = [step for flow in router.FLOWS.values() for step in flow.steps.values()]
    for step in steps:
        assert step.value(_inbound(step.payload(value))) == value
        assert step.value(_inbound(None)) is None
        for stranger in steps:
            if stranger is not step:
                assert step.value(_inbound(stranger.payload(other))) is None


def test_every_command_word_and_menu_button_has_a_fallback() -> None:
    assert set(router.COMMAND_WORDS.values()) <= set(router.FALLBACKS)
    buttons = (*menu.MENU_BUTTONS, menu.LEADER_BUTTON)
    for button in buttons:
        assert button.payload.startswith(COMMAND_PREFIX)
        assert button.payload.removeprefix(COMMAND_PREFIX) in router.FALLBACKS
    assert menu.ERASE_CONFIRM.removeprefix(COMMAND_PREFIX) in router.FALLBACKS


def test_the_last_gate_always_holds() -> None:
    last = router.GATES[-1]
    assert last.holds(None, _inbound(None))  # type: ignore[arg-type]
