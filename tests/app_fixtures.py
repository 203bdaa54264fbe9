"""`app` and `config` for modules whose tests share one app (conftest's `module_app`).

A module takes them as `app, config = app_fixtures.app, app_fixtures.config`: each test gets
the app on a database as after the first start, and the app's own configuration (conftest's
`config` names another test database).
"""

from __future__ import annotations

import pytest
from flask import Flask

from bot.app import config_of
from bot.config import Config


@pytest.fixture
def app(started_app: Flask) -> Flask:
    """The module's app on a database as after the first start."""
    return started_app


@pytest.fixture
def config(app: Flask) -> Config:
    """The app's own configuration."""
    return config_of(app)
