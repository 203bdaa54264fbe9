"""Reading and checking a plan file; every error names the file and the path inside it."""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml


class PlanError(Exception):
    """A plan file that cannot be loaded; the message says where and what."""


@dataclass(frozen=True)
class AreaSpec:
    code: str
    name: str
    level: str
    children: tuple[AreaSpec, ...] = ()

    def walk(self) -> list[tuple[AreaSpec, str | None, int]]:
        """Every node with its parent's code and its position among siblings, parents first."""
        out: list[tuple[AreaSpec, str | None, int]] = [(self, None, 0)]
        stack = [self]
        while stack:
            node = stack.pop(0)
            for position, child in enumerate(node.children):
                out.append((child, node.code, position))
                stack.append(child)
        return out


MEASURE_KINDS = ("active_teams", "report_count", "participant_sum")
MEASURE_PERIODS = ("selected", "phase_to_date")
PARTICIPANT_FIELDS = ("total", "women", "ethnic", "children")


@dataclass(frozen=True)
class MeasureSpec:
    """How an indicator is counted, as the plan file says it.

    kind: active_teams (teams of the indicator's team kind with at least one report in the
    period), report_count (reports of the activity types) or participant_sum (the sum of one
    participant field over reports of the activity types). period: selected (the period asked
    for) or phase_to_date (from the phase's first day to the end of the period asked for).
    """

    kind: str
    period: str
    activity_types: tuple[str, ...] = ()
    field: str = "total"


@dataclass(frozen=True)
class IndicatorSpec:
    code: str
    name: str
    description: str
    unit: str
    team_kind: str | None
    target: int
    measure: MeasureSpec | None = None
    targets: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ActivityTypeSpec:
    code: str
    name: str
    indicator: str | None
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class DeadlineSpec:
    code: str
    name: str
    recurrence: str
    month: int | None
    day: int
    remind_days_before: tuple[int, ...]
    period: str = "year"  # the unit a due date asks about: year | quarter | month
    period_offset: int = 0  # 0: the period the due date falls in; -1: the one before


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    phase_start: date
    phase_end: date
    source: str
    areas: AreaSpec
    team_kinds: tuple[tuple[str, str], ...]
    indicators: tuple[IndicatorSpec, ...]
    activity_types: tuple[ActivityTypeSpec, ...]
    topics: tuple[tuple[str, str], ...]
    deadlines: tuple[DeadlineSpec, ...]
    sha256: str = field(default="", compare=False)


class _Mapping(dict[Any, Any]):
    """A parsed mapping that remembers the line of each key, for errors that name the line."""

    lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    """YAML's safe loader, keeping each mapping key's line number."""


# PyYAML's binding to libyaml (its "CLoader" classes, in the wheels PyPI ships) reads the shipped
# plan in about 4 ms against 26 ms for the pure-Python parser, and its nodes carry the same
# lines. Every process that finds no plan loaded reads the file, as does each check of a plan.
_FastLineLoader: type[yaml.SafeLoader] = _LineLoader
if yaml.__with_libyaml__:
    class _CLineLoader(yaml.CSafeLoader):
        """The same loader over libyaml's parser."""

    _FastLineLoader = _CLineLoader  # type: ignore[assignment]


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    out = _Mapping()
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


for _loader in (_LineLoader, _FastLineLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    """Typed access to parsed YAML that reports the dotted path of whatever is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, what: str) -> PlanError:
        return PlanError(f"{self.source}: {path}: {what}")

    def known(self, data: dict[str, Any], path: str, keys: set[str]) -> None:
        """Refuse a key the format does not have: a misspelt key would otherwise be ignored."""
        for key in data:
            if key not in keys:
                line = getattr(data, "lines", {}).get(key)
                where = f"line {line}: " if line else ""
                raise self.fail(f"{where}{path}.{key}" if path != "(top)" else f"{where}{key}",
                                f"unknown key (expected one of: {', '.join(sorted(keys))})")

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "expected a mapping (key: value)")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, "expected a list")
        return value

    def text(self, data: dict[str, Any], key: str, path: str, *, required: bool = True) -> str:
        value = data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise self.fail(f"{path}.{key}", "expected non-empty text")
        return str(value).strip()

    def integer(self, data: dict[str, Any], key: str, path: str, low: int, high: int) -> int:
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(f"{path}.{key}", f"expected a whole number from {low} to {high}")
        return value

    def day(self, data: dict[str, Any], key: str, path: str) -> date:
        value = data.get(key)
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.fail(f"{path}.{key}", "expected a date as YYYY-MM-DD") from None

    def unique(self, codes: list[str], path: str) -> None:
        seen: set[str] = set()
        for index, code in enumerate(codes):
            if code in seen:
                raise self.fail(f"{path}[{index}].code", f"duplicate code {code!r}")
            seen.add(code)


def _area(reader: _Reader, value: Any, path: str, depth: int = 0) -> AreaSpec:
    if depth > 12:
        raise reader.fail(path, "the area tree is deeper than 12 levels")
    data = reader.mapping(value, path)
    children = tuple(
        _area(reader, child, f"{path}.children[{i}]", depth + 1)
        for i, child in enumerate(reader.items(data.get("children", []), f"{path}.children"))
    )
    spec = AreaSpec(
        code=reader.text(data, "code", path),
        name=reader.text(data, "name", path),
        level=reader.text(data, "level", path),
        children=children,
    )
    reader.known(data, path, {"code", "name", "level", "children"})
    return spec


def _area_paths(node: AreaSpec, path: str) -> list[tuple[AreaSpec, str]]:
    """Every node of the tree with its path in the file, in file order."""
    out = [(node, path)]
    for i, child in enumerate(node.children):
        out += _area_paths(child, f"{path}.children[{i}]")
    return out


def _targets(
    reader: _Reader, value: Any, path: str, area_codes: set[str]
) -> tuple[tuple[str, int], ...]:
    """Per-area targets: `targets: {area code: number}`; every code must be an area's."""
    if value is None:
        return ()
    data = reader.mapping(value, path)
    out = []
    for code, target in data.items():
        line = getattr(data, "lines", {}).get(code)
        where = f"line {line}: {path}.{code}" if line else f"{path}.{code}"
        if code not in area_codes:
            raise reader.fail(where, f"unknown area code {code!r}")
        if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target <= 10**7:
            raise reader.fail(where, "expected a whole number from 0 to 10000000")
        out.append((str(code), target))
    return tuple(out)


def _measure(
    reader: _Reader, value: Any, path: str, indicator: IndicatorSpec, type_codes: set[str]
) -> MeasureSpec | None:
    if value is None:
        return None
    data = reader.mapping(value, path)
    kind = data.get("kind")
    if kind not in MEASURE_KINDS:
        raise reader.fail(f"{path}.kind", f"expected one of: {', '.join(MEASURE_KINDS)}")
    period = data.get("period")
    if period not in MEASURE_PERIODS:
        raise reader.fail(f"{path}.period", f"expected one of: {', '.join(MEASURE_PERIODS)}")
    if kind == "active_teams":
        reader.known(data, path, {"kind", "period"})
        if indicator.team_kind is None:
            raise reader.fail(path, "active_teams counts the indicator's team_kind, "
                              "which this indicator does not have")
        return MeasureSpec(kind=kind, period=period)
    types = reader.items(data.get("activity_types"), f"{path}.activity_types")
    if not types:
        raise reader.fail(f"{path}.activity_types", "expected at least one activity type")
    for k, code in enumerate(types):
        if code not in type_codes:
            raise reader.fail(f"{path}.activity_types[{k}]", f"unknown activity type {code!r}")
    field_name = "total"
    if kind == "participant_sum":
        reader.known(data, path, {"kind", "period", "activity_types", "field"})
        field_name = data.get("field", "total")
        if field_name not in PARTICIPANT_FIELDS:
            raise reader.fail(f"{path}.field",
                              f"expected one of: {', '.join(PARTICIPANT_FIELDS)}")
    else:
        reader.known(data, path, {"kind", "period", "activity_types"})
    return MeasureSpec(kind=kind, period=period, activity_types=tuple(types), field=field_name)


def parse_plan(raw: str, source: str) -> PlanSpec:
    """Check a plan document fully before anything is written."""
    reader = _Reader(source)
    try:
        try:
            document = yaml.load(raw, Loader=_FastLineLoader)  # a SafeLoader subclass
        except yaml.YAMLError:
            # libyaml words its syntax errors differently and places some a line later: a
            # broken file is read again by the pure-Python parser, whose report names the line
            # where the mistake is.
            document = yaml.load(raw, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise reader.fail(where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    top = reader.mapping(document, "(top)")
    if top.get("version") != 1:
        raise reader.fail("version", "expected 1")
    reader.known(top, "(top)", {"version", "plan", "areas", "team_kinds", "indicators",
                                "activity_types", "topics", "deadlines"})
    plan = reader.mapping(top.get("plan"), "plan")
    start, end = reader.day(plan, "phase_start", "plan"), reader.day(plan, "phase_end", "plan")
    if end < start:
        raise reader.fail("plan.phase_end", "is before plan.phase_start")
    reader.known(plan, "plan", {"code", "name", "phase_start", "phase_end", "source"})

    areas = _area(reader, top.get("areas"), "areas")
    seen_codes: dict[str, str] = {}
    for node, path in _area_paths(areas, "areas"):
        if node.code in seen_codes:
            raise reader.fail(f"{path}.code", f"duplicate area code {node.code!r} "
                              f"(first used at {seen_codes[node.code]})")
        seen_codes[node.code] = path

    kinds_raw = reader.items(top.get("team_kinds"), "team_kinds")
    kinds = []
    for i, item in enumerate(kinds_raw):
        data = reader.mapping(item, f"team_kinds[{i}]")
        kinds.append((reader.text(data, "code", f"team_kinds[{i}]"),
                      reader.text(data, "name", f"team_kinds[{i}]")))
        reader.known(data, f"team_kinds[{i}]", {"code", "name"})
    reader.unique([code for code, _ in kinds], "team_kinds")
    kind_codes = {code for code, _ in kinds}

    area_codes = set(seen_codes)
    indicators = []
    indicator_data = reader.items(top.get("indicators"), "indicators")
    for i, item in enumerate(indicator_data):
        path = f"indicators[{i}]"
        data = reader.mapping(item, path)
        kind = data.get("team_kind")
        if kind is not None and (not isinstance(kind, str) or kind not in kind_codes):
            raise reader.fail(f"{path}.team_kind", f"unknown team kind {kind!r}")
        indicators.append(IndicatorSpec(
            code=reader.text(data, "code", path),
            name=reader.text(data, "name", path),
            description=reader.text(data, "description", path, required=False),
            unit=reader.text(data, "unit", path, required=False),
            team_kind=kind,
            target=reader.integer(data, "target", path, 0, 10_000_000),
            targets=_targets(reader, data.get("targets"), f"{path}.targets", area_codes),
        ))
        reader.known(data, path, {"code", "name", "description", "unit", "team_kind", "target",
                                  "targets", "measure"})
    reader.unique([ind.code for ind in indicators], "indicators")
    indicator_codes = {ind.code for ind in indicators}

    activity_types = []
    all_keywords: dict[str, str] = {}
    for i, item in enumerate(reader.items(top.get("activity_types"), "activity_types")):
        path = f"activity_types[{i}]"
        data = reader.mapping(item, path)
        indicator = data.get("indicator")
        if indicator is not None and (
            not isinstance(indicator, str) or indicator not in indicator_codes
        ):
            raise reader.fail(f"{path}.indicator", f"unknown indicator {indicator!r}")
        keywords = reader.items(data.get("keywords", []), f"{path}.keywords")
        for k, word in enumerate(keywords):
            if not isinstance(word, str) or not word.strip():
                raise reader.fail(f"{path}.keywords[{k}]", "expected non-empty text")
            if word in all_keywords:
                raise reader.fail(f"{path}.keywords[{k}]",
                                  f"keyword {word!r} is already used by {all_keywords[word]!r}")
            all_keywords[word] = str(data.get("code"))
        activity_types.append(ActivityTypeSpec(
            code=reader.text(data, "code", path),
            name=reader.text(data, "name", path),
            indicator=indicator,
            keywords=tuple(word.strip() for word in keywords),
        ))
        reader.known(data, path, {"code", "name", "indicator", "keywords"})
    reader.unique([a.code for a in activity_types], "activity_types")
    type_codes = {a.code for a in activity_types}
    indicators = [
        replace(ind, measure=_measure(reader, indicator_data[i].get("measure"),
                                      f"indicators[{i}].measure", ind, type_codes))
        for i, ind in enumerate(indicators)
    ]

    topics = []
    for i, item in enumerate(reader.items(top.get("topics", []), "topics")):
        data = reader.mapping(item, f"topics[{i}]")
        topics.append((reader.text(data, "code", f"topics[{i}]"),
                       reader.text(data, "name", f"topics[{i}]")))
        reader.known(data, f"topics[{i}]", {"code", "name"})
    reader.unique([code for code, _ in topics], "topics")

    deadlines = []
    for i, item in enumerate(reader.items(top.get("deadlines", []), "deadlines")):
        path = f"deadlines[{i}]"
        data = reader.mapping(item, path)
        recurrence = data.get("recurrence")
        if not isinstance(recurrence, str) or recurrence not in {"yearly", "quarterly",
                                                                 "monthly"}:
            raise reader.fail(f"{path}.recurrence", "expected yearly, quarterly or monthly")
        unit = {"yearly": "year", "quarterly": "quarter", "monthly": "month"}[recurrence]
        period = data.get("period", unit)
        if period not in {"year", "quarter", "month"}:
            raise reader.fail(f"{path}.period", "expected year, quarter or month")
        offset = data.get("period_offset", 0)
        if offset not in (0, -1) or isinstance(offset, bool):
            raise reader.fail(f"{path}.period_offset", "expected 0 (this period) or -1 (the "
                                                       "previous one)")
        month = (reader.integer(data, "month", path, 1, 12) if recurrence == "yearly"
                 else reader.integer(data, "month", path, 1, 3) if recurrence == "quarterly"
                 else None)
        day = reader.integer(data, "day", path, 1, 31)
        if recurrence == "yearly" and month and day > calendar.monthrange(2024, month)[1]:
            raise reader.fail(f"{path}.day", f"month {month} has no day {day}")
        reminders = reader.items(data.get("remind_days_before", []), f"{path}.remind_days_before")
        for k, days in enumerate(reminders):
            if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 366:
                raise reader.fail(f"{path}.remind_days_before[{k}]",
                                  "expected a whole number of days from 0 to 366")
        deadlines.append(DeadlineSpec(
            code=reader.text(data, "code", path),
            name=reader.text(data, "name", path),
            recurrence=recurrence,
            month=month,
            day=day,
            remind_days_before=tuple(sorted(set(reminders), reverse=True)),
            period=str(period),
            period_offset=int(offset),
        ))
        reader.known(data, path, {"code", "name", "recurrence", "month", "day",
                                  "remind_days_before", "period", "period_offset"})
    reader.unique([d.code for d in deadlines], "deadlines")

    return PlanSpec(
        code=reader.text(plan, "code", "plan"),
        name=reader.text(plan, "name", "plan"),
        phase_start=start,
        phase_end=end,
        source=reader.text(plan, "source", "plan", required=False),
        areas=areas,
        team_kinds=tuple(kinds),
        indicators=tuple(indicators),
        activity_types=tuple(activity_types),
        topics=tuple(topics),
        deadlines=tuple(deadlines),
        sha256=hashlib.sha256(raw.encode("utf-8")).hexdigest(),
    )


def read_plan_file(path: Path) -> PlanSpec:
    """Read and check a plan file from disk."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path}: the file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path}: cannot be read: {exc}") from None
    return parse_plan(raw, str(path))
