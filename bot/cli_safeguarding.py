"""`duan8 safeguarding`, `duan8 consent`, `duan8 member erase`: cases, officers, the phrase
list, the consent notice's versions, and erasure on a member's request."""

from __future__ import annotations

import getpass

import click

from bot.cli_common import Env, friendly, pass_env


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@click.group()
def safeguarding() -> None:
    """Disclosures of violence or abuse: cases, the officers who receive them, the phrases."""


@safeguarding.command("grant")
@click.option("--member", "member_id", type=int, required=True, help="The member's number.")
@click.option("--area", "area_code", required=True, metavar="CODE",
              help="Area the officer receives cases for, with everything under it.")
@pass_env
@friendly
def grant(env: Env, member_id: int, area_code: str) -> None:
    """Give a member the safeguarding officer role for an area (they are told of its cases)."""
    from storage import safeguarding as store
    from storage.models import utcnow

    with env.prepared_db().transaction() as session:
        if not store.grant_officer(session, member_id, area_code, actor=_actor(), now=utcnow()):
            raise click.BadParameter("no such member or area", param_hint="--member/--area")
    click.echo(f"member {member_id} is a safeguarding officer for {area_code}")


@safeguarding.command("officers")
@pass_env
@friendly
def list_officers(env: Env) -> None:
    """Every safeguarding officer and their area."""
    from storage import safeguarding as store

    with env.prepared_db().sessions() as session:
        for member_id, name, area in store.officers(session):
            click.echo(f"{member_id}\t{name}\t{area}")


@safeguarding.command("cases")
@click.option("--status", type=click.Choice(["open", "contacted", "closed"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@pass_env
@friendly
def cases(env: Env, status: str | None, limit: int) -> None:
    """Cases, newest first (a province admin's view: every area). Each read is audited."""
    from storage import safeguarding as store
    from storage.models import AuditLog, utcnow

    tz = env.config.tz
    with env.prepared_db().transaction() as session:
        rows = store.cases_visible_to(session, store.Reader(province_admin=True),
                                      status=status, limit=limit)
        session.add(AuditLog(actor=_actor(), at=utcnow(), action="case.list",
                             object_type="case", detail={"count": len(rows)}))
    for row in rows:
        click.echo(f"{row.number}\t{row.created_at.astimezone(tz):%d/%m/%Y %H:%M}\t"
                   f"{row.status}\t{row.category}\t{row.team or row.area}\t{row.member_name}")
        click.echo(f"\t{row.text}")


@safeguarding.command("set-status")
@click.argument("number")
@click.argument("status", type=click.Choice(["open", "contacted", "closed"]))
@pass_env
@friendly
def set_status(env: Env, number: str, status: str) -> None:
    """Move a case (HT-00012 or 12) to open, contacted or closed."""
    from storage import safeguarding as store
    from storage.models import utcnow

    digits = number.upper().removeprefix("HT-").lstrip("0") or "0"
    if not digits.isdigit():
        raise click.BadParameter("expected a case number such as HT-00012", param_hint="NUMBER")
    with env.prepared_db().transaction() as session:
        if not store.set_case_status(session, store.Reader(province_admin=True), int(digits),
                                     store.CaseStatus(status), actor=_actor(), now=utcnow()):
            raise click.BadParameter("no such case", param_hint="NUMBER")
    click.echo(f"{store.case_number(int(digits))}: {status}")


@safeguarding.group("phrase")
def phrase() -> None:
    """The phrases that make a message a disclosure, beyond the shipped list."""


@phrase.command("add")
@click.argument("text")
@click.option("--category", type=click.Choice(["violence", "sexual_abuse", "trafficking",
                                               "child_at_risk"]), default="violence",
              show_default=True)
@pass_env
@friendly
def phrase_add(env: Env, text: str, category: str) -> None:
    """Add a phrase (typed with or without diacritics); it is read as a disclosure alone."""
    from storage import safeguarding as store
    from storage.models import utcnow

    with env.prepared_db().transaction() as session:
        try:
            folded = store.add_phrase(session, text, category, actor=_actor(), now=utcnow())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="TEXT") from None
    click.echo(f"added: {folded} ({category}); running processes use it within a minute")


@phrase.command("remove")
@click.argument("text")
@pass_env
@friendly
def phrase_remove(env: Env, text: str) -> None:
    """Remove a phrase an admin added (the shipped list is edited in the source)."""
    from storage import safeguarding as store

    with env.prepared_db().transaction() as session:
        found = store.remove_phrase(session, text)
    click.echo("removed" if found else "no such phrase")


@phrase.command("list")
@pass_env
@friendly
def phrase_list(env: Env) -> None:
    """The shipped phrases, then those admins added."""
    from handlers.safeguarding import shipped_phrases
    from storage import safeguarding as store

    shipped = shipped_phrases()
    for text, category in shipped.alone:
        click.echo(f"shipped\t{category}\t{text}")
    for text, category in shipped.with_signal:
        click.echo(f"shipped\t{category}\t{text} (with a person or a call for help)")
    with env.prepared_db().sessions() as session:
        store.forget_phrase_cache()
        for text, category in store.added_phrases(session):
            click.echo(f"added\t{category}\t{text}")


@click.group()
def consent() -> None:
    """The consent notice: its version, and asking everyone again after it changed."""


@consent.command("reask")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_env
@friendly
def reask(env: Env, yes: bool) -> None:
    """Ask consent again, at their next message, of everyone who agreed to an older notice."""
    from handlers.onboarding import CONSENT_NOTICE_VERSION
    from storage.privacy import ask_consent_again

    if not yes:
        click.confirm(f"Ask everyone who has not agreed to notice {CONSENT_NOTICE_VERSION} "
                      "again?", abort=True)
    with env.prepared_db().transaction() as session:
        count = ask_consent_again(session, CONSENT_NOTICE_VERSION)
    click.echo(f"{count} will be asked again (notice {CONSENT_NOTICE_VERSION})")


@click.command("erase")
@click.option("--member", "member_id", type=int, required=True, help="The member's number.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_env
@friendly
def member_erase(env: Env, member_id: int, yes: bool) -> None:
    """Erase a member's personal data on their request (audited); reports stay as counts."""
    from sqlalchemy import select

    from storage.models import AuditLog, Identity, Member, utcnow
    from storage.privacy import erase

    if not yes:
        click.confirm(f"Erase member {member_id}'s personal data? This cannot be undone.",
                      abort=True)
    now = utcnow()
    with env.prepared_db().transaction() as session:
        found = session.get(Member, member_id)
        if found is None or found.erased_at is not None:
            raise click.BadParameter("no such member, or already erased", param_hint="--member")
        identity_id = session.scalar(select(Identity.id).where(Identity.member_id == member_id)
                                     .limit(1))
        if identity_id is None:
            found.display_name, found.erased_at, found.consent_at = "", now, None
        else:
            erase(session, identity_id, env.config.media_path, now)
        session.add(AuditLog(actor=_actor(), at=now, action="member.erase_on_request",
                             object_type="member", object_id=str(member_id)))
    click.echo(f"member {member_id} erased")


@click.group()
def retention() -> None:
    """What is kept only for a while: unfinished drafts, event keys, delivered messages' words."""


@retention.command("run")
@pass_env
@friendly
def retention_run(env: Env) -> None:
    """Warn owners of drafts about to be deleted, then prune (the worker does this daily)."""
    from bot.retention import run_retention
    from storage.models import utcnow

    warned, pruned = run_retention(env.config, env.prepared_db(), utcnow())
    click.echo(f"warned {warned}; pruned {pruned.drafts} drafts, {pruned.photos} photos, "
               f"{pruned.inbound_events} event keys, {pruned.payloads} message payloads")
