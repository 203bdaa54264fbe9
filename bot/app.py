"""The Flask application factory: web chat, platform webhooks and health, one per process."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, redirect, url_for

from bot import __version__, admin, web_guard
from bot.channels.messenger import inbound as facebook
from bot.channels.messenger.graph_versions import version_warning
from bot.channels.telegram import inbound as telegram
from bot.channels.webchat import inbound as webchat
from bot.channels.zalo_bot import inbound as zalo_bot
from bot.channels.zalo_oa import inbound as zalo
from bot.config import Config, load_config
from bot.dispatcher import Dispatcher, Wakeup
from bot.inbound_guard import SafeJSONProvider
from storage import migrate
from storage.db import Database

log = logging.getLogger(__name__)


def create_app(
    config: Config | None = None, *, db: Database | None = None, wakeup: Wakeup | None = None
) -> Flask:
    """Build an app around one configuration; tests pass their own, production reads the env."""
    config = config or load_config()
    app = Flask(__name__, instance_path=str(config.instance_path.resolve()))
    app.config.update(SECRET_KEY=config.secret_key)
    app.json = SafeJSONProvider(app)
    web_guard.install(app, proxy_hops=config.web_proxy_hops,
                      upload_limit=webchat.upload_limit(config.max_photo_bytes),
                      session_days=config.webchat_session_days,
                      times=web_guard.BodyTimes(small=config.web_body_seconds,
                                                idle=config.web_body_idle_seconds))
    database = db or Database(config.database_url)
    app.extensions["duan8.config"] = config
    app.extensions["duan8.db"] = database
    app.extensions["duan8.dispatcher"] = Dispatcher(config, database, wakeup)
    if config.channel_enabled("facebook"):
        warning = version_warning(config.fb_graph_version, datetime.now(UTC).date())
        if warning:
            log.warning("%s", warning)
    webchat.init_app(app)
    telegram.init_app(app)
    zalo_bot.init_app(app)
    facebook.init_app(app)
    zalo.init_app(app)
    admin.init_app(app)

    @app.get("/")
    def index() -> Any:
        return redirect(url_for("webchat.page"))

    @app.get("/healthz")
    def healthz() -> Any:
        database = app.extensions["duan8.db"]
        body: dict[str, Any] = {"status": "ok", "version": __version__}
        try:
            database.ping()
            body["database"] = "reachable"
            body["migration"] = migrate.current_revision(database.engine)
            body["migration_head"] = migrate.head_revision()
        except Exception as exc:  # health must answer, whatever the database does
            log.warning("health check: database unreachable: %s", exc)
            body.update(status="error", database="unreachable")
            return jsonify(body), 503
        if body["migration"] != body["migration_head"]:
            body["status"] = "degraded"
        if config.channel_enabled("facebook"):
            warning = version_warning(config.fb_graph_version, datetime.now(UTC).date())
            if warning:
                body["warnings"] = [warning]
        return jsonify(body), 200

    return app


def config_of(app: Flask) -> Config:
    """The configuration an app was built with."""
    return app.extensions["duan8.config"]


def db_of(app: Flask) -> Database:
    """The database an app was built with."""
    return app.extensions["duan8.db"]
