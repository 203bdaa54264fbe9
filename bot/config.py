"""Configuration from the environment and an optional `.env` file, validated once at start."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from bot.channels.messenger.graph_versions import DEFAULT_GRAPH_VERSION, is_version
from bot.quiet_hours import DEFAULT_QUIET_HOURS, QuietHours
from bot.ratelimit import RATE_LIMIT_ENV, TELEGRAM, Limits, parse_limits
from storage.retention import RetentionPolicy

log = logging.getLogger(__name__)

DEFAULT_PLAN = Path(__file__).resolve().parent.parent / "plans" / "ninh-thuan-2022-2025.yaml"


class ConfigError(Exception):
    """A bad setting; the message names the variable and is shown as one line."""


# Zalo's picture CDNs (zdn.vn, zadn.vn) and its own domains, Meta's attachment CDNs; overridable
# by ZALO_MEDIA_HOSTS / ZALO_BOT_MEDIA_HOSTS / FB_MEDIA_HOSTS (comma-separated host suffixes).
MEDIA_HOSTS = {"zalo": ("zdn.vn", "zadn.vn", "zalo.me", "zaloapp.com"),
               "zalo_bot": ("zdn.vn", "zadn.vn", "zalo.me", "zaloapp.com", "zaloplatforms.com"),
               "facebook": ("fbcdn.net", "fbsbx.com", "facebook.com")}
MEDIA_HOSTS_ENV = {"zalo": "ZALO_MEDIA_HOSTS", "zalo_bot": "ZALO_BOT_MEDIA_HOSTS",
                   "facebook": "FB_MEDIA_HOSTS"}


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole-number setting within bounds, or a ConfigError naming it."""
    text = (env.get(name) or str(default)).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {text!r}")
    return int(text)


def _hosts(env: Mapping[str, str], channel: str) -> tuple[str, ...]:
    text = env.get(MEDIA_HOSTS_ENV[channel], "").strip()
    if not text:
        return MEDIA_HOSTS[channel]
    hosts = tuple(h.strip().lower().lstrip("*").lstrip(".") for h in text.split(",") if h.strip())
    if not hosts or any(not re.fullmatch(r"[a-z0-9.-]+\.[a-z0-9-]+", h) for h in hosts):
        raise ConfigError(f"{MEDIA_HOSTS_ENV[channel]} must be host names separated by commas, "
                          f"e.g. zdn.vn,zadn.vn; got {text!r}")
    return hosts


@dataclass(frozen=True)
class Config:
    """Every setting the service reads; built by `load_config`, passed explicitly everywhere."""

    database_url: str
    secret_key: str
    instance_path: Path
    port: int = 5000
    tz_name: str = "Asia/Ho_Chi_Minh"
    # Local hours in which nothing the service starts itself (broadcasts, reminders) is sent.
    quiet_hours: QuietHours = field(default_factory=lambda: QuietHours.parse(DEFAULT_QUIET_HOURS))
    plan_file: Path | None = DEFAULT_PLAN
    reminder_time: str = "08:00"  # local HH:MM reminders and escalations go out (REMINDER_TIME)
    media_dir: Path | None = None
    max_photo_bytes: int = 5 * 1024 * 1024
    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    fb_page_access_token: str | None = None
    fb_app_secret: str | None = None
    fb_verify_token: str | None = None
    fb_graph_url: str = "https://graph.facebook.com"
    fb_graph_version: str = DEFAULT_GRAPH_VERSION
    zalo_app_id: str | None = None
    zalo_app_secret: str | None = None
    zalo_oa_secret_key: str | None = None
    zalo_oa_access_token: str | None = None
    zalo_oa_refresh_token: str | None = None
    zalo_api_url: str = "https://openapi.zalo.me"
    zalo_oauth_url: str = "https://oauth.zaloapp.com"
    # Zalo OA's reply policy (bot/channels/zalo_oa/quota.py): the free window after a member's
    # last message, a free-message count in it (None: no count), and whether to use the
    # billed days Zalo delivers after the free window.
    zalo_cs_window_hours: float = 48.0
    zalo_cs_quota: int | None = None
    zalo_billed_days: int = 7
    zalo_use_billed: bool = False
    zalo_bot_token: str | None = None
    zalo_bot_webhook_secret: str | None = None
    zalo_bot_api_url: str = "https://bot-api.zaloplatforms.com"
    # How long unfinished drafts, event keys and delivered messages' words are kept.
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    # Operators' send-rate overrides by channel, checked at load (bot.ratelimit.parse_limits).
    rate_limits: Mapping[str, str] = field(default_factory=dict)
    # A signed Zalo OA event older (or further ahead) than this many seconds is a replay.
    zalo_max_event_age: int = 900
    # Reverse proxies in front of the web process whose X-Forwarded-For/-Proto are believed.
    web_proxy_hops: int = 0
    # A small request body's whole arrival, and the longest silence within any body (seconds).
    web_body_seconds: int = 10
    web_body_idle_seconds: int = 5
    # Host suffixes members' pictures may be downloaded from, by channel (HTTPS only).
    media_hosts: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(MEDIA_HOSTS))
    webchat_session_days: int = 30
    # Zalo OA's monthly proactive messages (1,000 free for a verified OA), and how many of
    # them broadcasts leave for reminders.
    zalo_proactive_quota: int = 1000
    zalo_proactive_reserve: int = 200
    # A total of participants above this is asked about before it is saved.
    max_participants: int = 500

    def limits_for(self, channel: str, default: Limits) -> Limits:
        """A channel's send limits: the platform's published numbers unless overridden."""
        text = self.rate_limits.get(channel)
        return parse_limits(text, default) if text else default

    @property
    def tz(self) -> ZoneInfo:
        """The programme's time zone: deadlines and "today" are local, never UTC."""
        return ZoneInfo(self.tz_name)

    @property
    def media_path(self) -> Path:
        """Where uploaded photos live when no other store is configured."""
        return self.media_dir or self.instance_path / "media"

    @property
    def is_sqlite(self) -> bool:
        """SQLite serves one process; some behaviour (leases, locking) differs."""
        return self.database_url.startswith("sqlite")

    def channel_enabled(self, name: str) -> bool:
        """A platform channel is on only when its token is set; web chat and console always are."""
        tokens = {
            "webchat": "on",
            "console": "on",
            "telegram": self.telegram_bot_token,
            "facebook": self.fb_page_access_token,
            "zalo": self.zalo_oa_access_token or self.zalo_oa_refresh_token,
            "zalo_bot": self.zalo_bot_token,
        }
        return bool(tokens.get(name))


def read_dotenv(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of a `.env` file (python-dotenv's syntax, no ${VAR} expansion).

    A line that is not a setting fails start-up naming the file and line, rather than being
    skipped with a warning: a mistyped secret must not leave a channel silently off.
    """
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.error or (binding.key is not None and binding.value is None):
                raise ConfigError(f"{path}: line {binding.original.line} is not KEY=VALUE")
    values = dotenv_values(path, interpolate=False, encoding="utf-8")
    return {key: value for key, value in values.items() if value is not None}


def _secret_key(instance: Path) -> str:
    """Generate the signing key once and keep it, so sessions survive restarts.

    Several gunicorn workers start at once on a new machine: the key is written to a private
    temporary file and linked into place, which only one of them can win; all then read it.
    """
    key_file = instance / "secret_key"
    if not key_file.is_file():
        instance.mkdir(parents=True, exist_ok=True)
        # Owner-only permissions: the key signs admin sessions.
        fd, tmp = tempfile.mkstemp(dir=instance, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, key_file)
        finally:
            os.unlink(tmp)
    key = key_file.read_text(encoding="utf-8").strip()
    if not key:
        raise ConfigError(f"SECRET_KEY: the key file {key_file} is empty; delete it or set "
                          "SECRET_KEY")
    return key


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _days(env: Mapping[str, str], name: str, default: int) -> int:
    text = (env.get(name) or str(default)).strip()
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise ConfigError(f"{name} must be a whole number of days from 1 to 3650, got {text!r}")
    return int(text)


def hide_password(url: str) -> str:
    """A database URL fit for a message: whatever sits between "user:" and the host is hidden,
    even when the URL is too malformed to parse (an "@" or ":" inside the password)."""
    return re.sub(r"(://[^:/@\s]*:)[^\s]*@", r"\1***@", url)


def load_config(
    environ: Mapping[str, str] | None = None, *, instance_path: Path | None = None
) -> Config:
    """Build the configuration; any bad value raises ConfigError naming the variable."""
    base_env = dict(os.environ if environ is None else environ)
    instance = Path(instance_path or base_env.get("DUAN8_INSTANCE") or Path.cwd() / "instance")
    env = {**read_dotenv(Path(base_env.get("DUAN8_ENV_FILE", ".env"))), **base_env}

    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'duan8.db'}"
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            f"DATABASE_URL is not a database URL: {hide_password(database_url)!r} "
            "(expected e.g. sqlite:///instance/duan8.db or postgresql+psycopg://user@host/db)"
        ) from None
    if url.drivername in {"postgresql", "postgres"}:
        # psycopg 3 is the driver we ship; plain postgresql:// would look for psycopg2, and
        # postgres:// (what Heroku-style hosts set) is a name SQLAlchemy no longer knows.
        url = url.set(drivername="postgresql+psycopg")
        database_url = url.render_as_string(hide_password=False)
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ConfigError(f"DATABASE_URL: unsupported database {url.get_backend_name()!r}")
    try:
        url.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"DATABASE_URL: cannot use driver {url.drivername!r}: {exc}") from None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"DATABASE_URL: cannot create the folder of {url.database!r}: {exc.strerror}"
            ) from None

    tz_name = env.get("TZ_NAME") or "Asia/Ho_Chi_Minh"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"TZ_NAME is not a known time zone: {tz_name!r}") from None

    try:
        quiet_hours = QuietHours.parse(env.get("QUIET_HOURS") or DEFAULT_QUIET_HOURS)
    except ValueError as exc:
        raise ConfigError(f"QUIET_HOURS: {exc}") from None

    reminder_time = (env.get("REMINDER_TIME") or "08:00").strip()
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", reminder_time):
        raise ConfigError(f"REMINDER_TIME must be a local time HH:MM, got {reminder_time!r}")

    port_text = env.get("PORT") or "5000"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"PORT must be a number between 1 and 65535, got {port_text!r}")

    plan_text = env.get("PLAN_FILE")
    plan_file: Path | None = Path(plan_text) if plan_text else DEFAULT_PLAN
    if plan_text is not None and plan_text.lower() in {"", "none", "off"}:
        plan_file = None
    elif plan_file is not None and not plan_file.is_file():
        raise ConfigError(f"PLAN_FILE does not exist: {plan_file}")

    max_photo = env.get("MAX_PHOTO_BYTES") or str(5 * 1024 * 1024)
    if not max_photo.isdigit():
        raise ConfigError(f"MAX_PHOTO_BYTES must be a whole number of bytes, got {max_photo!r}")

    retention = RetentionPolicy(
        draft_days=_days(env, "RETENTION_DRAFT_DAYS", 30),
        warn_days=_days(env, "RETENTION_WARN_DAYS", 3),
        payload_days=_days(env, "RETENTION_PAYLOAD_DAYS", 90),
        loose_photo_minutes=_whole(env, "LOOSE_PHOTO_MINUTES", 30, 0, 24 * 60),
    )
    if retention.warn_days >= retention.draft_days:
        raise ConfigError("RETENTION_WARN_DAYS must be fewer than RETENTION_DRAFT_DAYS")

    window_text = (env.get("ZALO_CS_WINDOW_HOURS") or "48").strip()
    try:
        window_hours = float(window_text)
    except ValueError:
        window_hours = -1.0
    if not 0 < window_hours <= 24 * 30:
        raise ConfigError(f"ZALO_CS_WINDOW_HOURS must be a number of hours from 1 to 720, got "
                          f"{window_text!r}")
    quota_text = (env.get("ZALO_CS_QUOTA") or "0").strip()
    if not quota_text.isdigit() or int(quota_text) > 1000:
        raise ConfigError(f"ZALO_CS_QUOTA must be a whole number from 0 (no count) to 1000, got "
                          f"{quota_text!r}")
    billed_text = (env.get("ZALO_BILLED_DAYS") or "7").strip()
    if not billed_text.isdigit() or int(billed_text) > 30:
        raise ConfigError(f"ZALO_BILLED_DAYS must be a whole number of days from 0 to 30, got "
                          f"{billed_text!r}")
    use_billed_text = (env.get("ZALO_USE_BILLED") or "off").strip().lower()
    if use_billed_text not in {"on", "off", "true", "false", "1", "0", "yes", "no"}:
        raise ConfigError(f"ZALO_USE_BILLED must be on or off, got {use_billed_text!r}")

    graph_version = (env.get("FB_GRAPH_VERSION") or DEFAULT_GRAPH_VERSION).strip()
    if not is_version(graph_version):
        raise ConfigError(f"FB_GRAPH_VERSION must look like {DEFAULT_GRAPH_VERSION}, got "
                          f"{graph_version!r}")

    rate_limits = {channel: env[name].strip() for channel, name in RATE_LIMIT_ENV.items()
                   if env.get(name, "").strip()}
    for channel, text in rate_limits.items():
        try:
            parse_limits(text, TELEGRAM)
        except ValueError as exc:
            raise ConfigError(f"{RATE_LIMIT_ENV[channel]}: {exc}") from None

    proactive: dict[str, int] = {}
    for name, default in (("ZALO_PROACTIVE_QUOTA", "1000"), ("ZALO_PROACTIVE_RESERVE", "200")):
        value = (env.get(name) or default).strip()
        if not value.isdigit():
            raise ConfigError(f"{name} must be a whole number of messages a month, got "
                              f"{value!r}")
        proactive[name] = int(value)

    return Config(
        database_url=database_url,
        secret_key=env.get("SECRET_KEY") or _secret_key(instance),
        instance_path=instance,
        port=int(port_text),
        tz_name=tz_name,
        quiet_hours=quiet_hours,
        plan_file=plan_file,
        reminder_time=reminder_time,
        media_dir=Path(env["MEDIA_DIR"]) if env.get("MEDIA_DIR") else None,
        max_photo_bytes=int(max_photo),
        telegram_bot_token=env.get("TELEGRAM_BOT_TOKEN") or None,
        telegram_webhook_secret=env.get("TELEGRAM_WEBHOOK_SECRET") or None,
        telegram_api_url=_url(env, "TELEGRAM_API_URL", "https://api.telegram.org"),
        fb_page_access_token=env.get("FB_PAGE_ACCESS_TOKEN") or None,
        fb_app_secret=env.get("FB_APP_SECRET") or None,
        fb_verify_token=env.get("FB_VERIFY_TOKEN") or None,
        fb_graph_url=_url(env, "FB_GRAPH_URL", "https://graph.facebook.com"),
        fb_graph_version=graph_version,
        zalo_app_id=env.get("ZALO_APP_ID") or None,
        zalo_app_secret=env.get("ZALO_APP_SECRET") or None,
        zalo_oa_secret_key=env.get("ZALO_OA_SECRET_KEY") or None,
        zalo_oa_access_token=env.get("ZALO_OA_ACCESS_TOKEN") or None,
        zalo_oa_refresh_token=env.get("ZALO_OA_REFRESH_TOKEN") or None,
        zalo_api_url=_url(env, "ZALO_API_URL", "https://openapi.zalo.me"),
        zalo_oauth_url=_url(env, "ZALO_OAUTH_URL", "https://oauth.zaloapp.com"),
        zalo_cs_window_hours=window_hours,
        zalo_cs_quota=int(quota_text) or None,
        zalo_billed_days=int(billed_text),
        zalo_use_billed=use_billed_text in {"on", "true", "1", "yes"},
        zalo_bot_token=env.get("ZALO_BOT_TOKEN") or None,
        zalo_bot_webhook_secret=env.get("ZALO_BOT_WEBHOOK_SECRET") or None,
        zalo_bot_api_url=_url(env, "ZALO_BOT_API_URL", "https://bot-api.zaloplatforms.com"),
        rate_limits=rate_limits,
        retention=retention,
        zalo_max_event_age=_whole(env, "ZALO_MAX_EVENT_AGE", 900, 10, 7 * 24 * 3600),
        web_proxy_hops=_whole(env, "WEB_PROXY_HOPS", 0, 0, 5),
        web_body_seconds=_whole(env, "WEB_BODY_SECONDS", 10, 1, 120),
        web_body_idle_seconds=_whole(env, "WEB_BODY_IDLE_SECONDS", 5, 1, 120),
        media_hosts={channel: _hosts(env, channel) for channel in MEDIA_HOSTS},
        webchat_session_days=_whole(env, "WEBCHAT_SESSION_DAYS", 30, 1, 365),
        zalo_proactive_quota=proactive["ZALO_PROACTIVE_QUOTA"],
        zalo_proactive_reserve=proactive["ZALO_PROACTIVE_RESERVE"],
        max_participants=_whole(env, "MAX_PARTICIPANTS", 500, 1, 100000),
    )
