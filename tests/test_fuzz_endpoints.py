"""Every endpoint, fed well-formed-but-wrong bodies with valid signatures: never a 5xx, never a
traceback in the log.

Each body starts from a real payload of the platform (tests/payloads) and has one to three of
its fields replaced by values of the wrong kind: strings where objects belong, lists for texts,
numbers of 10^20, lone surrogates, NUL bytes, ids of 300 characters, 1,000 levels of nesting,
missing fields.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fakes.zalo_api import sign as zalo_sign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import web_guard
from bot.app import create_app, db_of
from bot.config import load_config
from bot.startup import prepare_database

PAYLOADS = Path(__file__).parent / "payloads"
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def deep(levels: int) -> Any:
    value: Any = "x"
    for level in range(levels):
        value = [value] if level % 2 else {"a": value}
    return value


WRONG = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([1e20, -1.5, 0.1, 10**20, 2**63, -(2**63) - 1]),
    st.text(max_size=30),
    st.sampled_from(["\ud800", "a\x00b", "\x00", "x" * 300, "9" * 300, "\udfff\ud800",
                     "/start \x00", "cmd:", "cmd:team", "link.undo:99999999999999999999",
                     "join.role:leader", " "]),
    st.lists(st.integers() | st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6), max_size=3),
    st.integers(min_value=30, max_value=400).map(deep),
)


ODD_TEXT = st.one_of(st.text(max_size=30), st.sampled_from([
    "\ud800", "a\x00b", "\x00", "x" * 300, "9" * 300, "\udfff\ud800", "/start \x00" + "y" * 40,
    "cmd:team", "link.undo:99999999999999999999", "join.role:leader", "report.date:x", " ",
    "lien ket", "0912 345 678", "ABCD-EFGH-JKMN"]))
ODD_INT = st.one_of(st.integers(min_value=-(2**62), max_value=2**62),
                    st.sampled_from([0, -1, 2**31, 2**53 + 1, 2**63 - 1]))


def same_kind(original: Any) -> st.SearchStrategy[Any]:
    """A value of the original's kind, but odd: what passes a type check and must still work."""
    if isinstance(original, bool):
        return st.booleans()
    if isinstance(original, int):
        return ODD_INT
    if isinstance(original, str):
        return ODD_TEXT
    if isinstance(original, list):
        return st.lists(st.just(original[0]) if original else st.none(), max_size=12)
    return WRONG


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, the root's children first."""
    found: list[tuple[Any, ...]] = []
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else [])
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


@st.composite
def mutated(draw: st.DrawFn, template: Any) -> Any:
    value = json.loads(json.dumps(template))
    for _step in range(draw(st.integers(1, 3))):
        places = paths(value)
        if not places:
            break
        place = draw(st.sampled_from(places))
        parent = value
        for key in place[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["odd", "odd", "wrong", "drop"]))
        if action == "drop" and isinstance(parent, dict):
            parent.pop(place[-1], None)
        elif action == "odd":
            parent[place[-1]] = draw(same_kind(parent[place[-1]]))
        else:
            parent[place[-1]] = draw(WRONG)
    return value


def templates(platform: str) -> list[Any]:
    return [json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((PAYLOADS / platform).glob("*.json"))]


class Site:
    """One app with every channel on; the web process never calls out to a platform."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.tg_secret = secrets.token_urlsafe(16)
        self.fb_secret = secrets.token_hex(16)
        self.zalo_app, self.zalo_key = "4321098765432109876", secrets.token_hex(8)
        self.zb_secret = secrets.token_urlsafe(16)
        closed = "http://127.0.0.1:9"
        self.config = load_config({
            "DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "absent.env"),
            "TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_WEBHOOK_SECRET": self.tg_secret,
            "TELEGRAM_API_URL": closed,
            "FB_PAGE_ACCESS_TOKEN": "t", "FB_APP_SECRET": self.fb_secret,
            "FB_VERIFY_TOKEN": "v", "FB_GRAPH_URL": closed,
            "ZALO_APP_ID": self.zalo_app, "ZALO_OA_SECRET_KEY": self.zalo_key,
            "ZALO_OA_ACCESS_TOKEN": "a", "ZALO_OA_REFRESH_TOKEN": "r", "ZALO_API_URL": closed,
            "ZALO_OAUTH_URL": closed,
            "ZALO_BOT_TOKEN": "1:y", "ZALO_BOT_WEBHOOK_SECRET": self.zb_secret,
            "ZALO_BOT_API_URL": closed,
        }, instance_path=tmp_path / "instance")
        self.app = create_app(self.config)
        prepare_database(self.config, db_of(self.app))
        self.client = self.app.test_client()

    def telegram(self, body: bytes):
        return self.client.post("/webhooks/telegram", data=body, headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": self.tg_secret})

    def facebook(self, body: bytes):
        mac = "sha256=" + hmac.new(self.fb_secret.encode(), body, hashlib.sha256).hexdigest()
        return self.client.post("/webhooks/facebook", data=body, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": mac})

    def zalo(self, body: bytes, timestamp: str):
        return self.client.post("/webhooks/zalo", data=body, headers={
            "Content-Type": "application/json",
            "X-ZEvent-Signature": zalo_sign(body, self.zalo_app, timestamp, self.zalo_key)})

    def zalo_bot(self, body: bytes):
        return self.client.post("/webhooks/zalo-bot", data=body, headers={
            "Content-Type": "application/json", "X-Bot-Api-Secret-Token": self.zb_secret})


@pytest.fixture
def site(started_db_url, tmp_path):
    built = Site(started_db_url, tmp_path)
    yield built
    db_of(built.app).dispose()


@pytest.fixture
def tracebacks(caplog):
    """Log records that carry a traceback or an error: there must be none."""
    caplog.set_level(logging.WARNING)

    def found() -> list[str]:
        # The edge's last resort (bot.inbound_guard.guarded) answers 200 to a body that
        # raised anywhere in its handling: that is a bug found, not a body handled.
        return [f"{r.name}: {r.getMessage()[:200]}" for r in caplog.records
                if r.exc_info or r.levelno >= logging.ERROR or r.name == "bot.inbound_guard"]

    return found


def body_of(value: Any) -> bytes:
    return json.dumps(value).encode()  # ASCII escapes keep lone surrogates in the JSON


# --- platforms ------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_telegram_never_fails(site, tracebacks, data):
    template = data.draw(st.sampled_from(templates("telegram")))
    template = {**template, "update_id": secrets.randbelow(2**31)}
    response = site.telegram(body_of(data.draw(mutated(template))))
    assert response.status_code == 200
    assert tracebacks() == []


@FUZZ
@given(data=st.data())
def test_facebook_never_fails(site, tracebacks, data):
    template = data.draw(st.sampled_from(templates("facebook")))
    response = site.facebook(body_of(data.draw(mutated(template))))
    assert response.status_code == 200
    assert tracebacks() == []


@FUZZ
@given(data=st.data())
def test_zalo_oa_never_fails(site, tracebacks, data):
    template = data.draw(st.sampled_from(templates("zalo")))
    now = str(int(time.time() * 1000))
    template = {**template, "app_id": site.zalo_app, "timestamp": now}
    value = data.draw(mutated(template))
    stamp = value.get("timestamp") if isinstance(value, dict) else None
    signed = stamp if isinstance(stamp, str) and stamp.isascii() and stamp.isdigit() else now
    response = site.zalo(body_of(value), signed)
    # A timestamp replaced by a wrong kind leaves nothing to check the MAC with: 403.
    assert response.status_code == (200 if stamp == now else response.status_code)
    assert response.status_code in (200, 403)
    assert tracebacks() == []


@FUZZ
@given(data=st.data())
def test_zalo_bot_never_fails(site, tracebacks, data):
    template = data.draw(st.sampled_from(templates("zalo_bot")))
    response = site.zalo_bot(body_of(data.draw(mutated(template))))
    assert response.status_code == 200
    assert tracebacks() == []


# --- web chat --------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_web_chat_messages_never_fail(site, tracebacks, data):
    template = {"id": uuid.uuid4().hex, "text": "xin chao", "payload": "cmd:menu",
                "start": "ABCD2345"}
    client = site.app.test_client()  # a visitor of its own: limits are per session
    client.environ_base["REMOTE_ADDR"] = f"10.{data.draw(st.integers(0, 255))}.0.1"
    body = body_of(data.draw(mutated(template)))
    response = client.post("/chat/api/messages", data=body, content_type="application/json")
    # A mutation can grow past the web chat's body limit: that alone is refused as too large.
    allowed = (413,) if len(body) > web_guard.JSON_BODY else (202, 400, 429)
    assert response.status_code in allowed
    assert tracebacks() == []


@FUZZ
@given(after=st.one_of(st.text(max_size=30), st.integers(-(2**80), 2**80).map(str),
                       st.sampled_from(["99999999999999999999", "²", "١٢", "1e5", "-1", ""])))
def test_web_chat_reading_never_fails(site, tracebacks, after):
    response = site.client.get("/chat/api/messages", query_string={"after": after})
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert after.isascii() and after.isdigit() and len(after) <= 18
    assert tracebacks() == []


@FUZZ
@given(client_id=st.one_of(st.text(max_size=80), st.just(uuid.uuid4().hex)),
       text=st.one_of(st.text(max_size=50), st.just("a\x00b")),
       photo=st.binary(max_size=2000), kind=st.sampled_from(["image/png", "text/plain", ""]))
def test_web_chat_photos_never_fail(site, tracebacks, client_id, text, photo, kind):
    client = site.app.test_client()
    response = client.post("/chat/api/photos", data={
        "id": client_id, "text": text, "photo": (io.BytesIO(photo), "p.png", kind)},
        content_type="multipart/form-data")
    assert response.status_code in (202, 400, 429)
    assert tracebacks() == []


# --- the examples of the class, each on every endpoint ----------------------------------------


@pytest.mark.parametrize("levels", [1000, 100_000])
def test_deep_json_is_refused_quietly_everywhere(site, tracebacks, levels):
    body = ("[" * levels + "]" * levels).encode()
    assert site.telegram(body).status_code == 200
    assert site.facebook(body).status_code == 200
    assert site.zalo_bot(body).status_code == 200
    # The web chat answers the visitor: 400, or 413 past the message's size limit.
    assert site.client.post("/chat/api/messages", data=body,
                            content_type="application/json").status_code in (400, 413)
    # Zalo: no timestamp in the bytes, so the MAC cannot match and nothing is parsed.
    assert site.zalo(body, "").status_code == 403
    now = str(int(time.time() * 1000))
    wrapped = (f'{{"timestamp": "{now}", "x": ' + "[" * levels + "]" * levels + "}").encode()
    assert site.zalo(wrapped, now).status_code == 200
    assert tracebacks() == []


def test_zalo_checks_the_mac_before_parsing(site, tracebacks):
    # A lone surrogate where the timestamp belongs, unsigned: refused before any parsing.
    body = b'{"app_id": "4321098765432109876", "timestamp": "\\ud800", "event_name": "x"}'
    response = site.client.post("/webhooks/zalo", data=body, headers={
        "Content-Type": "application/json", "X-ZEvent-Signature": "mac=" + "0" * 64})
    assert response.status_code == 403
    assert tracebacks() == []


def test_zalo_refuses_a_replayed_event(site):
    template = templates("zalo")[-1]
    old = str(int((time.time() - 2 * site.config.zalo_max_event_age) * 1000))
    ahead = str(int((time.time() + 2 * site.config.zalo_max_event_age) * 1000))
    for stamp in (old, ahead):
        body = body_of({**template, "app_id": site.zalo_app, "timestamp": stamp})
        assert site.zalo(body, stamp).status_code == 403
    fresh = str(int(time.time() * 1000))
    body = body_of({**template, "app_id": site.zalo_app, "timestamp": fresh})
    assert site.zalo(body, fresh).status_code == 200


@pytest.mark.parametrize("change", [
    {"message": "hello"},
    {"message": {"message_id": 1, "date": 1, "text": "x"}},
    {"message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"},
                 "text": ["x"]}},
    {"message": {"message_id": 1, "date": 10**20, "chat": {"id": 1, "type": "private"}}},
    {"message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"},
                 "photo": [{"file_id": "a", "file_unique_id": "b", "width": 1, "height": 1,
                            "file_size": "9"}]}},
    {"callback_query": {"id": "1", "from": {"id": 1, "is_bot": False, "first_name": "a"},
                        "data": True}},
    {"message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"},
                 "text": "a\x00b\ud800"}},
])
def test_the_reported_telegram_bodies_are_dropped_or_answered(site, tracebacks, change):
    response = site.telegram(body_of({"update_id": secrets.randbelow(2**31), **change}))
    assert response.status_code == 200
    assert tracebacks() == []


def test_ids_of_300_characters_and_nul_bytes_are_stored_safely(site, tracebacks):
    for chat_id in ("x" * 300, "a\x00b", "\ud800"):
        body = body_of({"event_name": "message.text.received", "message": {
            "message_id": chat_id, "text": "xin chao", "date": 1,
            "chat": {"id": chat_id, "chat_type": "PRIVATE"},
            "from": {"id": chat_id, "is_bot": False}}})
        assert site.zalo_bot(body).status_code == 200
    assert tracebacks() == []
