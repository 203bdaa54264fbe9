"""`duan8 member grant-leader|revoke-leader` and `duan8 team members`: roles are granted by
officers and visible to them; nobody chooses their own."""

from __future__ import annotations

import json

import click

from bot.cli_common import Env, friendly, pass_env


@click.group()
def member() -> None:
    """Members' roles: a team leader is named here or by a leader's invite."""


def _set_leader(env: Env, member_id: int, actor: str, *, leader: bool) -> None:
    from storage.access import set_leader
    from storage.models import utcnow

    database = env.prepared_db()
    with database.transaction() as session:
        try:
            changed = set_leader(session, member_id, leader=leader, actor=f"officer:{actor}",
                                 now=utcnow())
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{changed.id}\t{changed.display_name}\t{changed.role}")


@member.command("grant-leader")
@click.argument("member_id", type=click.IntRange(min=1))
@click.option("--by", "actor", required=True, metavar="NAME",
              help="The officer granting the role, kept in the audit log.")
@pass_env
@friendly
def grant_leader(env: Env, member_id: int, actor: str) -> None:
    """Make MEMBER_ID (from `team members`) the leader of their team."""
    _set_leader(env, member_id, actor, leader=True)


@member.command("revoke-leader")
@click.argument("member_id", type=click.IntRange(min=1))
@click.option("--by", "actor", required=True, metavar="NAME",
              help="The officer withdrawing the role, kept in the audit log.")
@pass_env
@friendly
def revoke_leader(env: Env, member_id: int, actor: str) -> None:
    """Make MEMBER_ID an ordinary member again."""
    _set_leader(env, member_id, actor, leader=False)


@click.command("members")
@click.option("--team", "team_code", required=True, help="Team code (see `plan show --json`).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_env
@friendly
def team_members(env: Env, team_code: str, as_json: bool) -> None:
    """A team's members: id, name, role, where a leader's role came from, chat apps."""
    from storage.access import team_members as listing

    database = env.prepared_db()
    with database.sessions() as session:
        try:
            rows = listing(session, team_code)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps([{"id": r.id, "name": r.name, "role": r.role,
                                "granted_by": r.granted_by, "channels": list(r.channels)}
                               for r in rows], ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row.id}\t{row.name}\t{row.role}\t{row.granted_by or '-'}\t"
                   f"{','.join(row.channels) or '-'}")
