"""The plan file's indicator measures and per-area targets, and unknown keys refused by line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.config import DEFAULT_PLAN
from storage.db import Database
from storage.models import Area, Indicator, IndicatorTarget
from storage.plan_file import MeasureSpec, PlanError, parse_plan
from storage.plans import load_plan, plan_as_dict

SHIPPED = DEFAULT_PLAN.read_text(encoding="utf-8")


def _block_keys(node: yaml.Node | None) -> list[tuple[int, int]]:
    """(line, column) of every key of a block mapping that does not open a list item."""
    out: list[tuple[int, int]] = []
    if isinstance(node, yaml.MappingNode):
        for index, (key, value) in enumerate(node.value):
            if not node.flow_style and index > 0:
                out.append((key.start_mark.line, key.start_mark.column))
            out += _block_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += _block_keys(item)
    return out


KEY_POSITIONS = _block_keys(yaml.compose(SHIPPED))


def test_shipped_plan_measures() -> None:
    spec = parse_plan(SHIPPED, "plan.yaml")
    measures = {i.code: i.measure for i in spec.indicators}
    assert all(measures.values()), "every indicator of the plan has a measure"
    assert measures["communication_teams"] == MeasureSpec("active_teams", "selected")
    assert measures["policy_dialogues"] == MeasureSpec(
        "report_count", "phase_to_date", ("policy_dialogue",))
    assert measures["women_cadres_trained"] == MeasureSpec(
        "participant_sum", "phase_to_date", ("training",), "women")
    # The per-district annex is not in the plan's text: no per-area targets are shipped.
    assert all(i.targets == () for i in spec.indicators)


@given(st.sampled_from(KEY_POSITIONS))
def test_an_unknown_key_anywhere_names_its_line(position: tuple[int, int]) -> None:
    line, column = position
    lines = SHIPPED.splitlines(keepends=True)
    lines.insert(line, " " * column + "misspelt_key: 1\n")
    with pytest.raises(PlanError) as err:
        parse_plan("".join(lines), "plan.yaml")
    message = str(err.value)
    assert message.startswith(f"plan.yaml: line {line + 1}: ")
    assert "misspelt_key: unknown key" in message


def test_targets_line_was_ignored_and_is_now_read(db: Database) -> None:
    text = SHIPPED.replace(
        "    target: 38\n",
        "    target: 38\n    targets: {nt.bac-ai: 12, nt.thuan-bac.bac-son: 3}\n", 1)
    with db.transaction() as session:
        load_plan(session, parse_plan(text, "plan.yaml"))
    with db.sessions() as session:
        rows = session.execute(
            select(Area.code, IndicatorTarget.target).join(Area)
            .join(Indicator, Indicator.id == IndicatorTarget.indicator_id)
            .where(Indicator.code == "policy_dialogues"))
        assert dict(rows.all()) == {"nt": 38, "nt.bac-ai": 12,
                                             "nt.thuan-bac.bac-son": 3}
        indicator = session.scalar(select(Indicator).where(Indicator.code == "policy_dialogues"))
        assert indicator is not None and indicator.measure == {
            "kind": "report_count", "period": "phase_to_date",
            "activity_types": ["policy_dialogue"], "field": "total"}
        from storage.plans import current_plan

        plan = current_plan(session)
        assert plan is not None
        shown = {i["code"]: i for i in plan_as_dict(session, plan)["indicators"]}
        assert shown["policy_dialogues"]["measure"]["kind"] == "report_count"


@pytest.mark.parametrize(("old", "new", "where"), [
    ("    target: 38\n", "    target: 38\n    targets: {nt.nowhere: 1}\n",
     "indicators[4].targets.nt.nowhere: unknown area code"),
    ("    target: 38\n", "    target: 38\n    targets: {nt.bac-ai: many}\n",
     "indicators[4].targets.nt.bac-ai: expected a whole number"),
    ("activity_types: [policy_dialogue]", "activity_types: [policy_dialog]",
     "indicators[4].measure.activity_types[0]: unknown activity type"),
    ("kind: report_count,", "kind: reports,", "indicators[4].measure.kind: expected one of"),
    ("activity_types: [policy_dialogue], period: phase_to_date",
     "activity_types: [policy_dialogue], period: forever",
     "indicators[4].measure.period: expected one of"),
    ("      field: women\n", "      field: men\n", "indicators[6].measure.field: expected one of"),
])
def test_bad_measure_or_target(old: str, new: str, where: str) -> None:
    assert SHIPPED.count(old) >= 1, old
    with pytest.raises(PlanError, match="^plan.yaml: .*" + where.replace("[", r"\[")
                       .replace("]", r"\]").replace(".", r"\.")):
        parse_plan(SHIPPED.replace(old, new, 1), "plan.yaml")


def test_active_teams_needs_a_team_kind(tmp_path: Path) -> None:
    text = SHIPPED.replace(
        "    unit: cuộc\n    target: 38\n"
        "    measure: {kind: report_count, activity_types: [policy_dialogue], "
        "period: phase_to_date}\n",
        "    unit: cuộc\n    target: 38\n    measure: {kind: active_teams, period: selected}\n")
    assert text != SHIPPED
    with pytest.raises(PlanError, match=r"indicators\[4\]\.measure: active_teams"):
        parse_plan(text, "plan.yaml")
