"""The web tier's doors: limits on bodies and senders, headers, the cookie, media hosts."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import app_fixtures
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import web_guard
from bot.app import create_app, db_of
from bot.channels.download import MediaHosts, download_capped
from bot.config import ConfigError, hide_password, load_config
from bot.startup import prepare_database
from messages_vi import _, render
from storage import throttle
from storage.members import ensure_village_team
from storage.models import InboundEvent, Team
from storage.search import area_id_by_code

app, config = app_fixtures.app, app_fixtures.config  # the module-app fixtures


def post(client, text: str = "xin chao", client_id: str | None = None):
    return client.post("/chat/api/messages", json={"id": client_id or uuid.uuid4().hex,
                                                   "text": text})


# --- web chat -----------------------------------------------------------------------------


def test_a_message_id_past_any_stored_id_is_a_400(app):
    client = app.test_client()
    for after in ("99999999999999999999", "-1", "abc", "²", ""):
        assert client.get(f"/chat/api/messages?after={after}").status_code == 400
    assert client.get("/chat/api/messages?after=0").status_code == 200


def test_too_many_messages_from_one_session_get_429_and_a_vietnamese_answer(app):
    client = app.test_client()
    for _n in range(web_guard.MESSAGES_PER_SESSION.count):
        assert post(client).status_code == 202
    refused = post(client)
    assert refused.status_code == 429
    seconds = int(refused.headers["Retry-After"])
    assert 0 < seconds <= 60
    assert refused.get_json()["message"] == render(_(
        "You are sending too fast. Please wait {seconds} seconds, then send again.",
        seconds=seconds), "vi")
    # Another visitor is not slowed by the first one.
    assert post(app.test_client()).status_code == 202


def test_many_sessions_from_one_address_share_its_limit(app, monkeypatch):
    monkeypatch.setattr(web_guard, "MESSAGES_PER_ADDRESS",
                        throttle.Limit("webchat.msg.address", 12, timedelta(minutes=1)))
    accepted = 0
    for _n in range(6):
        client = app.test_client()  # a new browser session each time
        client.environ_base["REMOTE_ADDR"] = f"2001:db8:1:2::{_n}"  # one /64
        accepted += sum(post(client).status_code == 202 for _m in range(3))
    assert accepted == 12
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "2001:db8:9::1"
    assert post(elsewhere).status_code == 202


def test_photos_are_limited_per_session(app):
    client = app.test_client()
    answers = [client.post("/chat/api/photos", data={"id": uuid.uuid4().hex, "photo": (
        __import__("io").BytesIO(b"x"), "a.png")}, content_type="multipart/form-data")
        for _n in range(web_guard.PHOTOS_PER_SESSION.count + 1)]
    assert [a.status_code for a in answers[:-1]] == [202] * web_guard.PHOTOS_PER_SESSION.count
    assert answers[-1].status_code == 429


def test_client_message_ids_belong_to_one_session(app):
    first, second = app.test_client(), app.test_client()
    assert post(first, client_id="same-id-123").get_json()["duplicate"] is False
    assert post(second, client_id="same-id-123").get_json()["duplicate"] is False
    assert post(second, client_id="same-id-123").get_json()["duplicate"] is True
    with db_of(app).sessions() as session:
        assert session.query(InboundEvent).count() == 2


def test_security_headers_and_a_nonce_for_the_page_script(app):
    page = app.test_client().get("/chat")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "same-origin"
    found = re.search(r"'nonce-([^']+)'", csp)
    assert found is not None
    nonce = found.group(1)
    assert f'<script nonce="{nonce}">' in page.get_data(as_text=True)
    assert "Strict-Transport-Security" not in page.headers  # only over HTTPS


def test_the_cookie_is_secure_over_https_and_lasts_weeks_not_a_year(app, config):
    plain = app.test_client().get("/chat").headers["Set-Cookie"]
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    secure = app.test_client().get("/chat", base_url="https://chat.example.org")
    assert "Secure" in secure.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in secure.headers
    assert app.permanent_session_lifetime == timedelta(days=config.webchat_session_days) \
        == timedelta(days=30)


def test_behind_a_proxy_the_forwarded_scheme_and_address_count(db_url, tmp_path):
    config = load_config({"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "x"),
                          "WEB_PROXY_HOPS": "1"}, instance_path=tmp_path / "i")
    proxied = create_app(config)
    prepare_database(config, db_of(proxied))
    response = proxied.test_client().get("/chat", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.4"})
    assert "Secure" in response.headers["Set-Cookie"]
    db_of(proxied).dispose()


@pytest.mark.parametrize(("path", "size"), [
    ("/chat/api/messages", web_guard.JSON_BODY + 1),
    ("/webhooks/telegram", web_guard.WEBHOOK_BODY + 1),
    ("/webhooks/zalo", web_guard.WEBHOOK_BODY + 1),
    ("/healthz", web_guard.DEFAULT_BODY + 1),
])
def test_bodies_over_the_route_limit_are_refused_unread(app, path, size):
    response = app.test_client().post(path, data=b"x" * size,
                                      content_type="application/json")
    assert response.status_code == 413


def test_the_photo_form_may_hold_every_photo_at_its_limit(app, config):
    assert app.config["MAX_CONTENT_LENGTH"] >= 10 * config.max_photo_bytes


# --- settings and logs ----------------------------------------------------------------------


@given(password=st.text(alphabet=st.characters(blacklist_categories=["Cs", "Zs", "Cc"]),
                        min_size=1, max_size=20).filter(lambda p: not set(p) & set("/?#")))
def test_a_database_url_never_shows_its_password(password):
    url = f"postgresql://duan8:{password}@db.example.org:notaport/duan8"
    assert f":{password}@" not in hide_password(url)
    with pytest.raises(ConfigError) as raised:
        load_config({"DATABASE_URL": url, "DUAN8_ENV_FILE": "/nonexistent/.env"})
    assert f":{password}@" not in str(raised.value)


def test_the_access_log_format_leaves_out_query_strings():
    from bot import gunicorn_conf

    assert "%(q)s" not in gunicorn_conf.access_log_format
    assert "%(r)s" not in gunicorn_conf.access_log_format
    assert "%(U)s" in gunicorn_conf.access_log_format


# --- teams ----------------------------------------------------------------------------------


def test_two_first_joins_of_a_village_make_one_team(app):
    db = db_of(app)
    with db.sessions() as session:
        area = area_id_by_code(session, "nt.bac-ai.phuoc-dai.ta-lu-2")
    assert area is not None
    barrier = threading.Barrier(2)
    made: list[int] = []
    errors: list[BaseException] = []

    def join() -> None:
        try:
            with db.transaction() as session:
                session.connection()  # start the transaction, then race
                if not db.is_sqlite:  # SQLite lets one writer in at a time: no race there
                    barrier.wait(5)
                made.append(ensure_village_team(session, area).id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=join) for _n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(made) == 2 and made[0] == made[1]
    with db.sessions() as session:
        assert session.query(Team).filter(Team.area_id == area).count() == 1


# --- media ---------------------------------------------------------------------------------


@given(host=st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,2}", fullmatch=True),
       scheme=st.sampled_from(["http", "https", "ftp"]))
def test_media_comes_only_from_the_platforms_hosts_over_https(host, scheme):
    hosts = MediaHosts(("zdn.vn", "zadn.vn"), "http://127.0.0.1:8080")
    url = f"{scheme}://{host}/a.jpg"
    allowed = scheme == "https" and (host in ("zdn.vn", "zadn.vn")
                                     or host.endswith((".zdn.vn", ".zadn.vn")))
    assert hosts.allows(url) is allowed
    assert hosts.allows(f"https://{host}.zdn.vn.evil.example/a.jpg") is False
    assert hosts.allows("https://user@photo.zdn.vn/a.jpg") is False
    assert hosts.allows("http://127.0.0.1:8080/images/a.jpg") is True
    assert hosts.allows("http://127.0.0.1:8081/images/a.jpg") is False


def test_a_redirect_off_the_platform_is_not_followed():
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path == "/images/a.jpg":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{other.server_port}/secret")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"abc")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    other = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    for srv in (server, other):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_port}"
    try:
        async def fetch(path: str) -> bytes:
            async with httpx.AsyncClient() as client:
                return await download_capped(client, origin + path, 1000,
                                             MediaHosts(("zdn.vn",), origin))

        with pytest.raises(ValueError, match="not a media host"):
            asyncio.run(fetch("/images/a.jpg"))
        assert "/secret" not in hits
        assert asyncio.run(fetch("/images/b.jpg")) == b"abc"
        with pytest.raises(ValueError, match="limit"):
            asyncio.run(_capped(origin))
    finally:
        for srv in (server, other):
            srv.shutdown()


async def _capped(origin: str) -> bytes:
    async with httpx.AsyncClient() as client:
        return await download_capped(client, origin + "/images/b.jpg", 2,
                                     MediaHosts((), origin))


def test_the_development_server_logs_no_query_string(app, caplog):
    import logging

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True,
                         request_handler=web_guard.PathOnlyRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            httpx.get(f"http://127.0.0.1:{server.server_port}/webhooks/facebook"
                      "?hub.mode=subscribe&hub.verify_token=SECRET-TOKEN&hub.challenge=1")
    finally:
        server.shutdown()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "/webhooks/facebook" in logged and "SECRET-TOKEN" not in logged
