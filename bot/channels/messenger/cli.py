"""`duan8 facebook`: the Messenger Page's Get Started button and menu."""

from __future__ import annotations

import click

from bot.cli_common import Env, friendly, pass_env


@click.group()
def facebook() -> None:
    """Facebook Messenger: the Page's Get Started button and persistent menu."""


@facebook.command("setup")
@pass_env
@friendly
def facebook_setup(env: Env) -> None:
    """Set the Get Started button and the Vietnamese persistent menu on the Page."""
    import asyncio

    from bot.channels.messenger.profile import GraphError, setup_profile

    if not env.config.fb_page_access_token:
        raise click.ClickException("FB_PAGE_ACCESS_TOKEN is not set")
    try:
        answer = asyncio.run(setup_profile(env.config))
    except GraphError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Messenger profile set (Get Started, menu): {answer.get('result', answer)}")
