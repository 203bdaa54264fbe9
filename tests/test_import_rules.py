"""The rooms of the code, checked: which package may import what (DESIGN.md's "rooms").

Each rule is one row of RULES: the folder it covers, the modules it may not import, and the
names it may import even so. A name matches a module when it is that module or inside it.
"""

from __future__ import annotations

import ast
import keyword
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = ("flask", "httpx", "aiohttp", "telegram", "werkzeug")


@dataclass(frozen=True)
class Rule:
    """Modules under `folder` import none of `forbidden`, except the names in `allowed`."""

    folder: str
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    why: str = ""


RULES = (
    Rule("storage", ("handlers", "bot", "messages_vi"),
         why="storage writes SQL and owns its values; it imports no other room"),
    Rule("handlers", ("bot", *PLATFORM_LIBRARIES, "sqlalchemy"),
         allowed=("sqlalchemy.orm.Session",),
         why="conversations know no platform, no HTTP, and no SQL beyond the session handed in"),
    Rule("messages_vi", ("bot", "handlers", "storage"),
         why="the words users read depend on nothing else of ours"),
)


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def imported_names(source: str, module: str) -> list[tuple[int, str]]:
    """Every dotted name a module's source imports, with its line: `from a.b import c` is
    a.b.c, `import a.b` is a.b; relative imports are resolved against `module`."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, *([base] if base else [])])
            names.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return names


def violations(rule: Rule, source: str, module: str) -> list[str]:
    """The imports of one module that break a rule."""
    return [
        f"{module}:{line} imports {name}"
        for line, name in imported_names(source, module)
        if any(_within(name, bad) for bad in rule.forbidden)
        and not any(_within(name, ok) for ok in rule.allowed)
    ]


def _modules(folder: str) -> list[tuple[str, Path]]:
    paths = sorted((ROOT / folder).rglob("*.py"))
    return [(".".join(p.relative_to(ROOT).with_suffix("").parts), p) for p in paths]


@pytest.mark.parametrize("rule", RULES, ids=[r.folder for r in RULES])
def test_rooms_import_only_what_they_may(rule: Rule) -> None:
    modules = _modules(rule.folder)
    assert modules, f"no module under {rule.folder}/"
    found = [v for module, path in modules
             for v in violations(rule, path.read_text(encoding="utf-8"), module)]
    assert not found, f"{rule.why}:\n" + "\n".join(found)


def test_the_checker_sees_every_form_of_import() -> None:
    storage = RULES[0]
    source = (
        "import handlers\n"
        "import bot.dispatcher as d\n"
        "from handlers.types import State\n"
        "from messages_vi import _\n"
        "def f():\n"
        "    from bot import config\n"
        "from ..handlers import flow\n"
    )
    found = violations(storage, source, "storage.sub.mod")
    # The relative import resolves to storage.handlers.flow: inside storage, so allowed.
    assert [v.split(" imports ")[1] for v in found] == [
        "handlers", "bot.dispatcher", "handlers.types.State", "messages_vi._", "bot.config"]
    assert violations(storage, "from storage.values import State\nimport sqlalchemy\n",
                      "storage.x") == []


def test_handlers_may_take_the_session_type_and_nothing_else_of_sqlalchemy() -> None:
    handlers = RULES[1]
    assert violations(handlers, "from sqlalchemy.orm import Session\n", "handlers.x") == []
    assert violations(handlers, "from sqlalchemy.orm import Session, relationship\n",
                      "handlers.x") == ["handlers.x:1 imports sqlalchemy.orm.relationship"]
    assert violations(handlers, "from sqlalchemy import select\n", "handlers.x")
    assert violations(handlers, "import werkzeug.security\n", "handlers.x")
    # A name that merely begins like a forbidden one is somebody else's.
    assert violations(handlers, "import flask_babel_like\nimport botany\n", "handlers.x") == []


# Module names, which a Python keyword ("as", "if", "in"…) can never be.
_segment = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name))


@given(rule=st.sampled_from(RULES), inner=st.lists(_segment, max_size=3), leaf=_segment)
def test_any_module_inside_a_forbidden_one_is_caught(rule: Rule, inner: list[str],
                                                     leaf: str) -> None:
    for bad in rule.forbidden:
        name = ".".join([bad, *inner])
        allowed = any(_within(f"{name}.{leaf}", ok) for ok in rule.allowed)
        assert bool(violations(rule, f"from {name} import {leaf}\n", "x.y")) != allowed
        if not any(_within(name, ok) for ok in rule.allowed):
            assert violations(rule, f"import {name}\n", "x.y")
