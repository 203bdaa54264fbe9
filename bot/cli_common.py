"""What every `duan8` command module shares: lazy settings and database, friendly errors, and the
webhook switch of the platforms that can also be polled."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError

from bot.config import Config, ConfigError, load_config
from storage.db import Database
from storage.plan_file import PlanError

F = TypeVar("F", bound=Callable[..., Any])


def friendly(func: F) -> F:
    """Turn the errors a person can fix into one clear line instead of a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigError, PlanError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OperationalError as exc:  # unreachable server, missing file, wrong password
            reason = (str(exc.orig).strip().splitlines() or ["unknown error"])[0]
            click.echo(f"error: DATABASE_URL: cannot use the database: {reason}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


class Env:
    """Configuration and database, made on first use so `--help` needs neither."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._db: Database | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config()
        return self._config

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.config.database_url)
        return self._db

    def prepared_db(self) -> Database:
        """The database, upgraded and with the default plan loaded."""
        from bot.startup import prepare_database

        prepare_database(self.config, self.db)
        return self.db


pass_env = click.make_pass_decorator(Env, ensure=True)


@dataclass(frozen=True)
class WebhookSwitch:
    """A polled platform's two calls that move it between webhook and polling."""

    set_webhook: Callable[[Config, Database, str], Coroutine[Any, Any, None]]
    delete_webhook: Callable[[Config, Database], Coroutine[Any, Any, None]]
    refusals: tuple[type[Exception], ...] = ()  # the platform's errors, shown as one line


def webhook_commands(group: click.Group, *, platform: str, caller: str, events: str, path: str,
                     token: Callable[[Config], str | None], token_name: str,
                     switch: Callable[[], WebhookSwitch]) -> None:
    """`set-webhook URL` and `delete-webhook` for a platform that hands out `events` by polling
    or by calling our webhook at `path`.

    `switch` is called only when a command runs, so the platform's library and the web stack
    behind it are not loaded for `duan8 --help` or any other command (each loads in about a
    third of a second).
    """

    def configured(env: Env) -> Config:
        if not token(env.config):
            raise click.ClickException(f"{token_name} is not set")
        return env.config

    @group.command("set-webhook",
                   help=f"Have {caller} POST {events} to URL (https://…{path}); stops polling.")
    @click.argument("url")
    @pass_env
    @friendly
    def set_command(env: Env, url: str) -> None:
        if not url.startswith("https://"):
            raise click.BadParameter(f"{caller} only calls https:// URLs", param_hint="URL")
        calls = switch()
        refused: tuple[type[Exception], ...] = (ValueError, *calls.refusals)
        try:
            asyncio.run(calls.set_webhook(configured(env), env.prepared_db(), url))
        except refused as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{platform} webhook set to {url}; the worker no longer polls")

    @group.command("delete-webhook",
                   help=f"Remove the webhook; the worker fetches {events} by polling again.")
    @pass_env
    @friendly
    def delete_command(env: Env) -> None:
        calls = switch()
        try:
            asyncio.run(calls.delete_webhook(configured(env), env.prepared_db()))
        except calls.refusals as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{platform} webhook removed; the worker polls for {events}")
