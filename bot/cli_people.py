"""`duan8 admin`, `team` and `invite`: the people who use the service and how they join."""

from __future__ import annotations

import click

from bot.cli_common import Env, friendly, pass_env


@click.group()
def admin() -> None:
    """Administrator accounts of the /admin pages, by role and area."""


@admin.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["province", "district", "commune", "viewer",
                                           "safeguarding"]),
              default="province", show_default=True)
@click.option("--area", "area_code", default=None, help="Area code the admin is limited to.")
@click.password_option(help="Asked for when not given.")
@pass_env
@friendly
def admin_create(env: Env, username: str, role: str, area_code: str | None,
                 password: str) -> None:
    """Create an administrator (or reset the password of an existing one)."""
    from storage.people import UnknownArea, create_admin

    if len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="--password")
    database = env.prepared_db()
    try:
        with database.transaction() as session:
            created = create_admin(session, username, password, role=role, area_code=area_code)
    except UnknownArea:
        raise click.BadParameter(f"no area with code {area_code!r}", param_hint="--area") from None
    click.echo(f"admin {username} {'created' if created else 'updated'}")


@click.group()
def team() -> None:
    """Teams (a village's communication team, a TKVVTB group, a club…)."""


@team.command("create")
@click.option("--village", "area_code", required=True, help="Area code (see `plan show --json`).")
@click.option("--kind", default="communication", show_default=True, help="Team kind code.")
@pass_env
@friendly
def team_create(env: Env, area_code: str, kind: str) -> None:
    """Create (or show) the team of a kind in an area, and print its code."""
    from storage.members import ensure_village_team
    from storage.search import area_id_by_code

    database = env.prepared_db()
    with database.transaction() as session:
        area_id = area_id_by_code(session, area_code)
        if area_id is None:
            raise click.ClickException(f"no area with code {area_code!r}")
        try:
            created = ensure_village_team(session, area_id, kind)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{created.code}\t{created.name}")


@click.group()
def invite() -> None:
    """Invite codes that let a volunteer join a team."""


@invite.command("create")
@click.option("--team", "team_code", required=True, help="Team code (see `team create`).")
@click.option("--role", type=click.Choice(["member", "leader"]), default="member",
              show_default=True)
@click.option("--days", default=30, show_default=True, help="Days until the code expires.")
@click.option("--max-uses", type=click.IntRange(min=1), default=None,
              help="How many people may use it  [default: 50; 1 for a leader's invite]")
@pass_env
@friendly
def invite_create(env: Env, team_code: str, role: str, days: int, max_uses: int | None
                  ) -> None:
    """Make an invite code for a team; a leader's invite makes its user the team leader."""
    max_uses = max_uses or (1 if role == "leader" else 50)
    from storage.members import create_invite
    from storage.models import utcnow

    database = env.prepared_db()
    with database.transaction() as session:
        try:
            code, name = create_invite(session, team_code, role=role, days=days,
                                       max_uses=max_uses, actor="cli", now=utcnow())
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{code}\t{name}\t{role}\texpires in {days} days")


@invite.command("revoke")
@click.argument("code")
@pass_env
@friendly
def invite_revoke(env: Env, code: str) -> None:
    """Stop an invite code from working."""
    from storage.members import revoke_invite
    from storage.models import utcnow

    database = env.prepared_db()
    with database.transaction() as session:
        if not revoke_invite(session, code.replace(" ", ""), actor="cli", now=utcnow()):
            raise click.ClickException(f"no invite code {code!r}")
    click.echo(f"revoked {code.upper()}")
