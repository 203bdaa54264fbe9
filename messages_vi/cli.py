"""`duan8 i18n`: extract, update and compile the message catalogs beside them."""

from __future__ import annotations

import sys

import click


@click.group()
def i18n() -> None:
    """Message catalogs (messages_vi): extract, update, compile."""


@i18n.command("extract")
def i18n_extract() -> None:
    """Collect every user-facing message from the code into messages_vi/messages.pot."""
    from messages_vi import catalogs

    catalogs.extract()


@i18n.command("update")
def i18n_update() -> None:
    """Merge new messages into the vi and en catalogs (after `extract`)."""
    from messages_vi import catalogs

    catalogs.update()


@i18n.command("compile")
def i18n_compile() -> None:
    """Check and compile the catalogs to .mo files (optional: they also compile at start)."""
    from messages_vi import catalogs

    problems = catalogs.compile_all()
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)
