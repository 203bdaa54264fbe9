"""`duan8 chat`: the console channel, a conversation with the bot in this terminal."""

from __future__ import annotations

import sys

import click

from bot.cli_common import Env, friendly, pass_env


@click.command()
@click.option("--user", default="console-tester", show_default=True,
              help="Who you are to the bot; another name starts another conversation.")
@pass_env
@friendly
def chat(env: Env, user: str) -> None:
    """Talk to the bot in this terminal; buttons are numbered, /photo FILE sends a photo."""
    from bot.channels.console.chat import ConsoleChat
    from bot.dispatcher import Dispatcher

    database = env.prepared_db()
    click.echo("duan8 — /quit to leave, a number to press a button, /photo FILE to send a photo")
    console = ConsoleChat(Dispatcher(env.config, database), database, user, sys.stdout)
    console.deliver()
    console.loop(sys.stdin)
