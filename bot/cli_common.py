"""What every `duan8` command module shares: lazy settings and database, and friendly errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
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
