"""`duan8 zalo`: the Zalo Official Account's first authorisation."""

from __future__ import annotations

import click

from bot.cli_common import Env, friendly, pass_env


@click.group()
def zalo() -> None:
    """Zalo Official Account: first-time authorisation (the worker keeps tokens fresh after)."""


@zalo.command("authorize")
@click.option("--redirect-uri", required=True, metavar="URL",
              help="The callback URL registered for the Zalo app (developers.zalo.me).")
@pass_env
@friendly
def zalo_authorize(env: Env, redirect_uri: str) -> None:
    """Open Zalo's permission page, paste back the code, and store the OA's token pair."""
    import asyncio

    from bot.channels.zalo_oa.tokens import (
        ZaloTokenError,
        authorize_url,
        code_from_redirect,
        exchange_code,
    )

    config = env.config
    if not config.zalo_app_id or not config.zalo_app_secret:
        raise click.ClickException("ZALO_APP_ID and ZALO_APP_SECRET must be set")
    url, verifier, state = authorize_url(config, redirect_uri)
    click.echo("1. Signed in to Zalo as an admin of the Official Account, open:")
    click.echo(f"   {url}")
    click.echo(f"2. Allow access; Zalo then sends the browser to {redirect_uri}?code=…")
    answer = click.prompt("3. Paste that whole address (or only the code)")
    try:
        code = code_from_redirect(answer, state)
        pair = asyncio.run(exchange_code(config, env.prepared_db(), code, verifier))
    except (ValueError, ZaloTokenError) as exc:
        raise click.ClickException(str(exc)) from None
    until = (pair.access_expires_at.strftime("%Y-%m-%d %H:%M UTC")
             if pair.access_expires_at else "unknown")
    click.echo(f"Zalo tokens stored (access token valid until {until}); the worker keeps "
               "them fresh from now on.")
