"""The plan as data: the shipped Ninh Thuận plan, reloads, renames, reforms, bad files."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import run_duan8, without
from sqlalchemy import create_engine, inspect, select

from bot.config import DEFAULT_PLAN
from storage.db import Database
from storage.models import (
    ActivityType,
    Area,
    AuditLog,
    Base,
    Deadline,
    Indicator,
    IndicatorTarget,
    TeamKind,
)
from storage.plan_file import PlanError, read_plan_file
from storage.plans import LoadSummary, current_plan, load_plan, plan_as_dict

SHIPPED = DEFAULT_PLAN.read_text(encoding="utf-8")
TARGETS = {
    "communication_teams": 77,
    "tkvvtb_groups": 26,
    "livelihood_groups_4_0": 4,
    "trusted_addresses": 8,
    "policy_dialogues": 38,
    "leaders_clubs": 15,
    "women_cadres_trained": 30,
}


def dump(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order."""
    out: dict[str, list[dict[str, Any]]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns))
            out[table.name] = [dict(row._mapping) for row in rows]
    return out


def load(db: Database, path: Path) -> LoadSummary:
    with db.transaction() as session:
        return load_plan(session, read_plan_file(path))


def variant(tmp_path: Path, old: str, new: str, name: str = "variant.yaml") -> Path:
    assert SHIPPED.count(old) == 1, old
    path = tmp_path / name
    path.write_text(SHIPPED.replace(old, new), encoding="utf-8")
    return path


def area(db: Database, code: str) -> Area:
    with db.sessions() as session:
        row = session.scalar(select(Area).where(Area.code == code))
        assert row is not None, code
        return row


def active_levels(db: Database) -> Counter[str]:
    with db.sessions() as session:
        return Counter(session.scalars(select(Area.level).where(Area.active.is_(True))))


# --- the shipped plan ----------------------------------------------------------------------


def test_shipped_plan_area_tree(shared_plan_db: Database) -> None:
    assert active_levels(shared_plan_db) == {"province": 1, "district": 6, "commune": 23,
                                      "village": 71}
    with shared_plan_db.sessions() as session:
        areas = {a.id: a for a in session.scalars(select(Area))}
    by_code = {a.code: a for a in areas.values()}
    root = by_code["nt"]
    assert (root.name, root.level, root.parent_id) == ("Ninh Thuận", "province", None)
    assert {a.name for a in areas.values() if a.level == "district"} == {
        "Bác Ái", "Thuận Bắc", "Ninh Sơn", "Thuận Nam", "Ninh Phước", "Ninh Hải"}
    parent_level = {"district": "province", "commune": "district", "village": "commune"}
    for row in areas.values():
        if row.level != "province":
            assert areas[row.parent_id].level == parent_level[row.level], row.code
    # Every commune in the plan has at least one village.
    communes = {a.id for a in areas.values() if a.level == "commune"}
    assert communes == {a.parent_id for a in areas.values() if a.level == "village"}


@pytest.mark.parametrize(("name", "communes"), [
    ("Ma Ty", {"Phước Tân", "Phước Thắng"}),
    ("Suối Đá", {"Phước Tiến", "Lợi Hải"}),
])
def test_repeated_village_names_live_in_different_communes(
    shared_plan_db: Database, name: str, communes: set[str]
) -> None:
    with shared_plan_db.sessions() as session:
        villages = session.scalars(select(Area).where(Area.name == name)).all()
        assert len(villages) == 2
        assert len({v.code for v in villages}) == 2
        assert {v.parent.name for v in villages} == communes
        assert all(v.level == "village" for v in villages)


def test_shipped_plan_indicators_and_targets(shared_plan_db: Database) -> None:
    with shared_plan_db.sessions() as session:
        plan = current_plan(session)
        assert plan is not None
        assert plan.code == "ninh-thuan-2022-2025"
        assert (plan.phase_start.isoformat(), plan.phase_end.isoformat()) == (
            "2022-01-01", "2025-12-31")
        indicators = session.scalars(select(Indicator).order_by(Indicator.position)).all()
        assert [i.code for i in indicators] == list(TARGETS)
        targets = {
            code: target for code, target, area_id in session.execute(
                select(Indicator.code, IndicatorTarget.target, IndicatorTarget.area_id)
                .join(IndicatorTarget, IndicatorTarget.indicator_id == Indicator.id))
        }
        assert targets == TARGETS
        # Only province targets: the per-district split is for admins to enter, never invented.
        area_ids = set(session.scalars(select(IndicatorTarget.area_id)))
        assert area_ids == {plan.root_area_id}
        assert session.get(Area, plan.root_area_id).code == "nt"


def test_shipped_plan_team_kinds_activity_types_deadlines(shared_plan_db: Database) -> None:
    with shared_plan_db.sessions() as session:
        kinds = session.scalars(select(TeamKind.code).order_by(TeamKind.id)).all()
        assert kinds == ["communication", "tkvvtb", "livelihood", "trusted_address",
                         "leaders_club"]
        indicator_of = dict(session.execute(
            select(ActivityType.code, Indicator.code)
            .join(Indicator, ActivityType.indicator_id == Indicator.id)).all())
        assert len(indicator_of) == len(session.scalars(select(ActivityType.id)).all()) == 9
        assert indicator_of["policy_dialogue"] == "policy_dialogues"
        assert indicator_of["trusted_address_case"] == "trusted_addresses"
        assert indicator_of["training"] == "women_cadres_trained"
        assert set(indicator_of.values()) == set(TARGETS)  # every indicator is fed by something
        deadlines = session.execute(
            select(Deadline.code, Deadline.recurrence, Deadline.day, Deadline.month,
                   Deadline.remind_days_before).order_by(Deadline.id)).all()
        assert [tuple(d) for d in deadlines] == [
            ("annual_report", "yearly", 10, 9, [14, 3, 1]),
            ("previous_year_update", "yearly", 25, 1, [14, 3, 1]),
        ]


# --- reloading -----------------------------------------------------------------------------


def test_first_load_counts_each_row_once(db: Database) -> None:
    summary = load(db, DEFAULT_PLAN)
    # plan + 101 areas + 5 kinds + 7 indicators + 7 targets + 9 activity types + 9 topics
    # + 2 deadlines
    assert summary == LoadSummary(created=141, updated=0, deactivated=0)


def test_loading_twice_changes_nothing(plan_db: Database) -> None:
    before = dump(plan_db)
    summary = load(plan_db, DEFAULT_PLAN)
    assert summary == LoadSummary(0, 0, 0)
    assert not summary.changed
    after = dump(plan_db)
    assert after == before
    assert after["plans"][0]["loaded_at"] == before["plans"][0]["loaded_at"]
    assert len(after["audit_log"]) == 1  # only the first load was recorded


def test_renamed_village_keeps_its_id(plan_db: Database, tmp_path: Path) -> None:
    code = "nt.bac-ai.phuoc-dai.ta-lu-1"
    before = area(plan_db, code)
    path = variant(tmp_path, f"{{code: {code}, name: Tà Lú 1,",
                   f"{{code: {code}, name: Tà Lú Một,")
    summary = load(plan_db, path)
    assert summary == LoadSummary(created=0, updated=1, deactivated=0)
    after = area(plan_db, code)
    assert after.id == before.id
    assert (after.name, after.name_folded) == ("Tà Lú Một", "talumot")
    assert after.parent_id == before.parent_id and after.active
    with plan_db.sessions() as session:
        assert session.scalar(select(Area).where(Area.name == "Tà Lú 1")) is None
        plan = current_plan(session)
        assert plan is not None
        assert plan.content_sha256 == read_plan_file(path).sha256
        assert session.scalars(select(AuditLog.action)).all() == ["plan.load", "plan.load"]


def test_removed_village_becomes_inactive_and_keeps_its_id(
    plan_db: Database, tmp_path: Path
) -> None:
    code = "nt.bac-ai.phuoc-dai.chau-dac"
    before = area(plan_db, code)
    line = f"            - {{code: {code}, name: Châu Đắc, level: village}}\n"
    path = variant(tmp_path, line, "")
    assert load(plan_db, path) == LoadSummary(created=0, updated=0, deactivated=1)
    after = area(plan_db, code)
    assert (after.id, after.name, after.parent_id) == (before.id, "Châu Đắc", before.parent_id)
    assert after.active is False
    assert active_levels(plan_db)["village"] == 70
    with plan_db.sessions() as session:
        plan = current_plan(session)
        assert plan is not None
        shown = plan_as_dict(session, plan)
    assert code not in json.dumps(shown)

    # Put back, it comes back with the same id.
    assert load(plan_db, DEFAULT_PLAN) == LoadSummary(created=0, updated=1, deactivated=0)
    again = area(plan_db, code)
    assert (again.id, again.active) == (before.id, True)


def test_reform_moves_a_commune_under_the_province(plan_db: Database, tmp_path: Path) -> None:
    """2025: districts abolished. Ninh Hải goes; its commune Vĩnh Hải hangs off the province."""
    data = yaml.safe_load(SHIPPED)
    districts = data["areas"]["children"]
    ninh_hai = next(d for d in districts if d["code"] == "nt.ninh-hai")
    districts.remove(ninh_hai)
    districts.extend(ninh_hai["children"])
    path = tmp_path / "reform.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")

    province = area(plan_db, "nt")
    district = area(plan_db, "nt.ninh-hai")
    commune = area(plan_db, "nt.ninh-hai.vinh-hai")
    village = area(plan_db, "nt.ninh-hai.vinh-hai.da-hang")
    assert commune.parent_id == district.id

    summary = load(plan_db, path)
    assert (summary.created, summary.deactivated) == (0, 1)
    assert summary.updated >= 1

    moved = area(plan_db, "nt.ninh-hai.vinh-hai")
    assert (moved.id, moved.parent_id, moved.active) == (commune.id, province.id, True)
    gone = area(plan_db, "nt.ninh-hai")
    assert (gone.id, gone.active) == (district.id, False)
    kept = area(plan_db, "nt.ninh-hai.vinh-hai.da-hang")
    assert (kept.id, kept.parent_id, kept.active) == (village.id, commune.id, True)
    assert active_levels(plan_db) == {"province": 1, "district": 5, "commune": 23,
                                      "village": 71}
    with plan_db.sessions() as session:
        plan = current_plan(session)
        assert plan is not None
        tree = plan_as_dict(session, plan)["areas"]
    assert [c["code"] for c in tree["children"]][-1] == "nt.ninh-hai.vinh-hai"
    assert tree["children"][-1]["level"] == "commune"
    assert load(plan_db, path) == LoadSummary(0, 0, 0)  # and the reform reloads cleanly


# --- bad files -----------------------------------------------------------------------------

BAD_EDITS = [
    # (id, old, new, the path the message must name)
    ("missing-name",
     "{code: nt.bac-ai.phuoc-dai.ta-lu-2, name: Tà Lú 2, level: village}",
     "{code: nt.bac-ai.phuoc-dai.ta-lu-2, level: village}",
     "areas.children[0].children[0].children[1].name"),
    ("duplicate-area-code",
     "{code: nt.bac-ai.phuoc-dai.ta-lu-2, name: Tà Lú 2,",
     "{code: nt.bac-ai.phuoc-dai.ta-lu-1, name: Tà Lú 2,",
     "areas.children[0].children[0].children[1].code"),
    ("unknown-indicator",
     "    indicator: communication_teams\n    keywords: [chien dich",
     "    indicator: no_such_indicator\n    keywords: [chien dich",
     "activity_types[2].indicator"),
    ("indicator-not-text",
     "    indicator: policy_dialogues\n",
     "    indicator: [policy_dialogues]\n",
     "activity_types[3].indicator"),
    ("day-31-of-february",
     "    month: 1\n    day: 25\n",
     "    month: 2\n    day: 31\n",
     "deadlines[1].day"),
    ("target-not-a-number",
     "    target: 26\n",
     "    target: abc\n",
     "indicators[1].target"),
    ("unknown-team-kind",
     "    team_kind: livelihood\n",
     "    team_kind: cooperatives\n",
     "indicators[2].team_kind"),
    ("duplicate-indicator",
     "  - code: leaders_clubs\n",
     "  - code: policy_dialogues\n",
     "indicators[5].code"),
    ("bad-recurrence",
     "    recurrence: yearly\n    month: 9\n",
     "    recurrence: weekly\n    month: 9\n",
     "deadlines[0].recurrence"),
    ("phase-end-before-start",
     "  phase_end: 2025-12-31\n",
     "  phase_end: 2021-12-31\n",
     "plan.phase_end"),
    ("children-not-a-list",
     "  name: Ninh Thuận\n  level: province\n  children:\n",
     "  name: Ninh Thuận\n  level: province\n  children: {}\n  old_children:\n",
     "areas.children"),
]


def bad_files(tmp_path: Path) -> list[tuple[str, Path, str]]:
    files = [(case, variant(tmp_path, old, new, f"{case}.yaml"), where)
             for case, old, new, where in BAD_EDITS]
    broken = tmp_path / "invalid-yaml.yaml"
    lines = SHIPPED.splitlines(keepends=True)
    lines[40] = "  - {code: [unclosed\n"
    broken.write_text("".join(lines), encoding="utf-8")
    files.append(("invalid-yaml", broken, "line 41"))
    top = tmp_path / "top-is-a-list.yaml"
    top.write_text("- version: 1\n- plan: {}\n", encoding="utf-8")
    files.append(("top-not-a-mapping", top, "(top)"))
    return files


BAD_CASES = [case for case, *_ in BAD_EDITS] + ["invalid-yaml", "top-not-a-mapping"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_file_names_file_and_yaml_path_and_writes_nothing(
    shared_plan_db: Database, tmp_path: Path, case: str
) -> None:
    _case, path, where = next(f for f in bad_files(tmp_path) if f[0] == case)
    before = dump(shared_plan_db)
    with pytest.raises(PlanError) as err, shared_plan_db.transaction() as session:
        load_plan(session, read_plan_file(path))
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert f": {where}" in message
    assert "\n" not in message
    assert dump(shared_plan_db) == before


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="does not exist") as err:
        read_plan_file(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(err.value)


def test_version_must_be_1(tmp_path: Path) -> None:
    path = variant(tmp_path, "version: 1\n", "version: 2\n")
    with pytest.raises(PlanError, match=r"version: expected 1"):
        read_plan_file(path)


# --- through the command -------------------------------------------------------------------


def cli(db_url: str, tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` on the database `db_url`, run in this process."""
    env = without({"PLAN_FILE", "TZ_NAME", "PORT", "SECRET_KEY", "DUAN8_ENV_FILE"},
                  DATABASE_URL=db_url, DUAN8_INSTANCE=str(tmp_path / "instance"), **extra)
    return run_duan8(*args, cwd=tmp_path, env=env)


def test_cli_plan_load_broken_file(plan_db: Database, db_url: str, tmp_path: Path) -> None:
    _case, path, where = next(f for f in bad_files(tmp_path) if f[0] == "missing-name")
    before = dump(plan_db)
    result = cli(db_url, tmp_path, "plan", "load", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert str(path) in lines[0] and where in lines[0]
    assert "Traceback" not in result.stderr
    assert dump(plan_db) == before


def test_cli_plan_load_twice(db_url: str, tmp_path: Path) -> None:
    first = cli(db_url, tmp_path, "plan", "load", str(DEFAULT_PLAN), PLAN_FILE="off")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        "plan ninh-thuan-2022-2025: 141 created, 0 updated, 0 deactivated")
    second = cli(db_url, tmp_path, "plan", "load", str(DEFAULT_PLAN), PLAN_FILE="off")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == (
        "plan ninh-thuan-2022-2025: 0 created, 0 updated, 0 deactivated")


def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node["children"]:
        out += walk(child)
    return out


def test_cli_plan_show_json(started_db_url: str, tmp_path: Path) -> None:
    result = cli(started_db_url, tmp_path, "plan", "show", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)

    assert data["code"] == "ninh-thuan-2022-2025"
    assert data["name"].startswith("Kế hoạch triển khai Dự án 8 tỉnh Ninh Thuận")
    nodes = walk(data["areas"])
    for node in nodes:
        assert set(node) >= {"code", "name", "level", "children"}
    assert Counter(n["level"] for n in nodes) == {"province": 1, "district": 6, "commune": 23,
                                                  "village": 71}
    assert data["areas"]["code"] == "nt" and len(data["areas"]["children"]) == 6
    assert sum(n["name"] == "Ma Ty" for n in nodes) == 2
    assert sum(n["name"] == "Suối Đá" for n in nodes) == 2
    assert {i["code"]: i["target"] for i in data["indicators"]} == TARGETS
    assert [i["target"] for i in data["indicators"]] == [77, 26, 4, 8, 38, 15, 30]
    assert len(data["team_kinds"]) == 5
    assert len(data["activity_types"]) == 9
    assert all(a["indicator"] in TARGETS for a in data["activity_types"])
    assert [(d["month"], d["day"]) for d in data["deadlines"]] == [(9, 10), (1, 25)]


def test_cli_plan_show_text(plan_db: Database, db_url: str, tmp_path: Path) -> None:
    result = cli(db_url, tmp_path, "plan", "show")
    assert result.returncode == 0, result.stderr
    assert "Ninh Thuận [province] (6)" in result.stdout
    assert "communication_teams: 77" in result.stdout


def test_cli_plan_show_with_no_plan(db_url: str, tmp_path: Path) -> None:
    result = cli(db_url, tmp_path, "plan", "show", "--json", PLAN_FILE="off")
    assert result.returncode == 1
    assert "no plan is loaded" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_plan_show_only_reads(db_url: str, empty_db_url: str, tmp_path: Path) -> None:
    """Looking at the plan neither loads the default plan nor migrates the database."""
    result = cli(db_url, tmp_path, "plan", "show", "--json")
    assert result.returncode == 1 and "no plan is loaded" in result.stderr
    database = Database(db_url)
    with database.sessions() as session:
        assert current_plan(session) is None
    database.dispose()
    result = cli(empty_db_url, tmp_path, "plan", "show")
    assert result.returncode == 1 and "duan8 db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
    engine = create_engine(empty_db_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()
