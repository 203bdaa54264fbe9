"""The type checker over the service's packages: zero errors.

It runs here, inside the suite, rather than before it in `make test`: under pytest-xdist its
ten-odd seconds on a new checkout (a warm cache makes it a fraction of a second) overlap the
other tests instead of being added to them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "storage", "messages_vi")


@pytest.mark.heavy
def test_mypy_finds_no_error() -> None:
    from mypy import api

    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(ROOT / ".mypy_cache"),
        *(str(ROOT / package) for package in PACKAGES),
    ])
    assert status == 0, stdout + stderr
