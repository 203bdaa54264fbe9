"""`duan8 plan`: load a provincial plan file, show the loaded plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bot.cli_common import Env, friendly, pass_env


@click.group()
def plan() -> None:
    """The provincial plan: areas, indicators, activity types, deadlines."""


@plan.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@pass_env
@friendly
def plan_load(env: Env, file: Path) -> None:
    """Load or reload a plan file; rows keep their ids by code, so reloading is safe."""
    from storage import migrate
    from storage.plan_file import read_plan_file
    from storage.plans import load_plan

    spec = read_plan_file(file)
    migrate.upgrade(env.db.engine)
    with env.db.transaction() as session:
        summary = load_plan(session, spec, actor="cli")
    click.echo(
        f"plan {spec.code}: {summary.created} created, {summary.updated} updated, "
        f"{summary.deactivated} deactivated"
    )


@plan.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the loaded plan as JSON.")
@pass_env
@friendly
def plan_show(env: Env, as_json: bool) -> None:
    """Show the loaded plan."""
    from storage import migrate
    from storage.plans import current_plan, plan_as_dict

    # Read-only: the database is read as it is, never upgraded or filled by looking at it.
    if migrate.current_revision(env.db.engine) is None:
        raise click.ClickException("the database has no tables yet; start the service or run "
                                   "`duan8 db upgrade`, then `duan8 plan load FILE`")
    with env.db.sessions() as session:
        loaded = current_plan(session)
        if loaded is None:
            raise click.ClickException("no plan is loaded; run `duan8 plan load FILE` (the "
                                       "service loads the default plan when it starts)")
        data = plan_as_dict(session, loaded)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"{data['name']} ({data['phase_start']} – {data['phase_end']})")
    _echo_tree(data["areas"], 0)
    for ind in data["indicators"]:
        click.echo(f"  {ind['code']}: {ind['target']} — {ind['name']}")


def _echo_tree(node: dict[str, Any] | None, depth: int) -> None:
    if node is None or depth > 2:
        return
    count = len(node["children"])
    click.echo(f"{'  ' * depth}{node['name']} [{node['level']}] ({count})")
    for child in node["children"]:
        _echo_tree(child, depth + 1)
