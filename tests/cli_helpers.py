"""A `duan8` command run inside the test process and handed back as a finished process.

Starting `python -m bot` costs half a second or more of CPU per command, nearly all of it
imports; run here, a command costs a few milliseconds. Where the process itself is what a test
checks (the console script, what importing the command tree loads, processes racing each other)
the test starts a real one instead.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from bot.cli import cli
from bot.cli_common import Env

# What `python -m bot` calls itself in its usage lines and in --version.
PROG_NAME = "python -m bot"


def without(names: Iterable[str], **extra: str) -> dict[str, str | None]:
    """Changes to the inherited environment: every one of `names` removed, then `extra` set."""
    return {**dict.fromkeys(names), **extra}


def run_duan8(*args: str, cwd: Path, env: Mapping[str, str | None],
              input: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in the directory `cwd`, seeing this process's environment changed by
    `env` (None removes a variable): its exit code, standard output and standard error.

    An exception the command does not turn into an exit status fails the test with its
    traceback, where a process would have exited 1 with the traceback on standard error.
    """
    command_env = Env()  # what the console script hands the command tree
    with _as_its_own_process(cwd):
        try:
            result = CliRunner().invoke(cli, list(args), input=input, env=env, obj=command_env,
                                        prog_name=PROG_NAME, catch_exceptions=False)
        finally:
            # A process's connections close when it exits; this one's must not outlive it.
            if command_env._db is not None:
                command_env._db.dispose()
    return subprocess.CompletedProcess([PROG_NAME, *args], result.exit_code, result.stdout,
                                       result.stderr)


@contextmanager
def _as_its_own_process(cwd: Path) -> Iterator[None]:
    """What a command changes for its process, set back for the tests after it.

    The command reads `.env` from the working directory; it configures logging as a fresh
    process would (`logging.basicConfig` writes to standard error only when the root logger has
    no handler yet, so pytest's own handlers are set aside meanwhile) and sets the levels of
    some libraries' loggers; serving commands tune the interpreter's switch interval.
    """
    cwd_before = os.getcwd()
    environ_before = dict(os.environ)
    switch_interval = sys.getswitchinterval()
    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    levels = {name: logger.level for name, logger in logging.Logger.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    try:
        for handler in root_handlers:
            root.removeHandler(handler)
        os.chdir(cwd)
        yield
    finally:
        os.chdir(cwd_before)
        if dict(os.environ) != environ_before:
            os.environ.clear()
            os.environ.update(environ_before)
        sys.setswitchinterval(switch_interval)
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            handler.close()
        for handler in root_handlers:
            root.addHandler(handler)
        root.setLevel(root_level)
        for name, logger in logging.Logger.manager.loggerDict.items():
            level = levels.get(name, logging.NOTSET)
            if isinstance(logger, logging.Logger) and logger.level != level:
                logger.setLevel(level)
        # Admins' safeguarding phrases are kept for a minute per process; a process that ends
        # takes them with it.
        from storage.safeguarding import forget_phrase_cache

        forget_phrase_cache()
