"""Messenger end to end against a fake Graph API on loopback: webhook, photos, sending, window."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import secrets
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from channel_harness import ChannelHarness, channel_config
from chat_helpers import png_bytes
from fakes.graph_api import FakeGraph
from fakes.telegram_api import FakeTelegram
from sqlalchemy import select, update

from bot.app import create_app
from bot.channels.download import MediaError
from bot.channels.messenger import inbound as facebook
from bot.channels.messenger.outbound import FacebookSender, make_client
from bot.channels.messenger.profile import GraphError, setup_profile
from bot.channels.messenger.worker import start
from bot.channels.telegram.outbound import TelegramSender, make_bot
from bot.config import load_config
from bot.dispatcher import Dispatcher
from bot.media_fetcher import MediaFetcher
from bot.sender import OutboxSender
from messages_vi import _, render
from storage import outbox
from storage.models import ConversationState, Identity, InboundEvent, Media, Member, Outbox, utcnow

PAYLOADS = Path(__file__).parent / "payloads" / "facebook"
PAGE_ID = "104857263019284"


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def graph():
    with FakeGraph(token=secrets.token_hex(24)) as server:
        yield server


class Harness(ChannelHarness):
    """The app with Messenger configured, a signed-webhook client and the worker's sender."""

    def __init__(self, config, graph):
        super().__init__(config, facebook.init_app, "facebook")
        self.graph = graph
        self._mid = 0

    def post(self, body: dict | bytes, signature: str | None = "valid"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = sign(self.config.fb_app_secret, raw) \
                if signature == "valid" else signature
        return self.client.post("/webhooks/facebook", data=raw, headers=headers)

    def verify(self, **params: str):
        return self.client.get("/webhooks/facebook", query_string=params)

    def next_mid(self) -> str:
        self._mid += 1
        return f"m_test{self._mid:06d}" + "x" * 60

    def text(self, psid: str, text: str) -> dict:
        body = copy.deepcopy(payload("text"))
        event = body["entry"][0]["messaging"][0]
        event["sender"]["id"] = psid
        event["message"] = {"mid": self.next_mid(), "text": text}
        return body

    def quick_reply(self, psid: str, quick_payload: str, title: str = "…") -> dict:
        body = copy.deepcopy(payload("quick_reply"))
        event = body["entry"][0]["messaging"][0]
        event["sender"]["id"] = psid
        event["message"] = {"mid": self.next_mid(), "text": title,
                            "quick_reply": {"payload": quick_payload}}
        return body

    def postback(self, psid: str, postback_payload: str, ref: str | None = None) -> dict:
        body = copy.deepcopy(payload("postback_get_started"))
        event = body["entry"][0]["messaging"][0]
        event["sender"]["id"] = psid
        event["timestamp"] += self._mid
        self._mid += 1
        event["postback"] = {"title": "…", "payload": postback_payload}
        if ref is not None:
            event["postback"]["referral"] = {"ref": ref, "source": "SHORTLINK",
                                             "type": "OPEN_THREAD"}
        return body

    def say(self, psid: str, *texts: str) -> None:
        for text in texts:
            assert self.post(self.text(psid, text)).status_code == 200

    @contextlib.asynccontextmanager
    async def senders(self):
        async with make_client(self.config) as client:
            yield [FacebookSender(self.config, client)]

    def texts_to(self, psid: str) -> list[str]:
        return [m["message"]["text"] for m in self.graph.sent_messages()
                if m["recipient"]["id"] == psid]


def make_config(db_url, tmp_path, graph, **extra: str):
    env = {"FB_PAGE_ACCESS_TOKEN": graph.token, "FB_APP_SECRET": secrets.token_hex(32),
           "FB_VERIFY_TOKEN": secrets.token_hex(16), "FB_GRAPH_URL": graph.url, **extra}
    return channel_config(db_url, tmp_path, **env)


@pytest.fixture
def fb(started_db_url, tmp_path, graph):
    harness = Harness(make_config(started_db_url, tmp_path, graph), graph)
    yield harness
    harness.close()


# --- verification and signatures --------------------------------------------------------------


def test_subscription_check_echoes_the_challenge_only_for_our_token(fb):
    ok = fb.verify(**{"hub.mode": "subscribe", "hub.verify_token": fb.config.fb_verify_token,
                      "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.data == b"1158201444"
    assert ok.mimetype == "text/plain"
    wrong = fb.verify(**{"hub.mode": "subscribe", "hub.verify_token": "guess",
                         "hub.challenge": "1"})
    assert wrong.status_code == 403
    mode = fb.verify(**{"hub.mode": "unsubscribe", "hub.verify_token": fb.config.fb_verify_token,
                        "hub.challenge": "1"})
    assert mode.status_code == 403
    assert fb.verify(**{"hub.challenge": "1"}).status_code == 403


def test_forged_missing_or_misplaced_signatures_are_refused_before_anything_is_stored(fb):
    body = json.dumps(fb.text("7301928374650012", "xin chao")).encode()
    other = json.dumps(fb.text("7301928374650012", "xin chao!")).encode()
    forged = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    assert fb.post(body, signature=forged).status_code == 403
    assert fb.post(body, signature=None).status_code == 403
    assert fb.post(body, signature=sign(fb.config.fb_app_secret, other)).status_code == 403
    assert fb.post(body, signature="sha1=" + "0" * 40).status_code == 403
    assert fb.count(InboundEvent) == 0 and fb.count(Identity) == 0
    assert fb.post(body).status_code == 200
    assert fb.count(InboundEvent) == 1


def test_a_valid_event_is_answered_by_the_worker_never_from_the_request(fb):
    assert fb.post(fb.text("7301928374650012", "xin chao")).status_code == 200
    assert fb.graph.calls == [], "nothing may be sent from inside the webhook"
    fb.send_all()
    (sent,) = fb.graph.sent_messages()
    assert sent["recipient"]["id"] == "7301928374650012"
    assert sent["messaging_type"] == "RESPONSE"
    assert vi("Do you agree?") in sent["message"]["text"]
    assert [q["payload"] for q in sent["message"]["quick_replies"]] == \
        ["consent.ask:yes", "consent.ask:no"]


def test_without_a_page_token_the_webhook_does_not_exist(db_url, tmp_path):
    config = load_config({"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "x")},
                         instance_path=tmp_path / "i")
    app = create_app(config)
    if "facebook" not in app.blueprints:
        facebook.init_app(app)
    client = app.test_client()
    assert client.post("/webhooks/facebook", json={"object": "page"}).status_code == 404
    assert client.get("/webhooks/facebook?hub.mode=subscribe").status_code == 404


def test_without_an_app_secret_every_event_is_refused(db_url, tmp_path, graph):
    config = make_config(db_url, tmp_path, graph, FB_APP_SECRET="")
    app = create_app(config)
    if "facebook" not in app.blueprints:
        facebook.init_app(app)
    raw = json.dumps(payload("text")).encode()
    response = app.test_client().post("/webhooks/facebook", data=raw,
                                      headers={"X-Hub-Signature-256": sign("", raw)})
    assert response.status_code == 403


# --- events -----------------------------------------------------------------------------------


def test_a_retried_batch_gets_one_reply(fb):
    body = payload("text")
    start_body = fb.postback("7301928374650777", "GET_STARTED")
    for _attempt in range(3):
        assert fb.post(body).status_code == 200
        assert fb.post(start_body).status_code == 200
    fb.send_all()
    assert len(fb.graph.sent_messages()) == 2
    assert fb.count(InboundEvent) == 2


def test_every_event_of_a_multi_entry_batch_is_handled(fb):
    assert fb.post(payload("multi_entry")).status_code == 200
    fb.send_all()
    with fb.db.sessions() as session:
        people = set(session.scalars(select(Identity.external_id).where(
            Identity.channel == "facebook")))
    assert people == {f"730192837465100{n}" for n in range(1, 5)}
    recipients = Counter(m["recipient"]["id"] for m in fb.graph.sent_messages())
    assert recipients == Counter({p: 1 for p in people})


def test_echoes_of_our_own_messages_are_ignored(fb):
    assert fb.post(payload("echo")).status_code == 200
    fb.send_all()
    assert fb.count(Identity) == 0 and fb.count(Outbox) == 0 and fb.graph.calls == []


def test_delivery_receipts_are_only_noted(fb):
    for _attempt in range(2):
        assert fb.post(payload("delivery")).status_code == 200
    assert fb.count(InboundEvent) == 1
    assert fb.count(Identity) == 0 and fb.count(Outbox) == 0


def test_quick_replies_and_menu_postbacks_are_routed_as_payloads(fb):
    psid = "7301928374650012"
    fb.post(fb.text(psid, "xin chao"))
    assert fb.post(payload("quick_reply")).status_code == 200  # "Đồng ý" = consent.ask:yes
    fb.send_all()
    assert vi("Thank you. Now let us find your team.") in fb.texts_to(psid)[-1]
    with fb.db.sessions() as session:
        assert session.scalar(select(Identity.consent).where(
            Identity.external_id == psid)) == "given"
    _join(fb, "7301928374650013")
    fb.post(fb.postback("7301928374650013", "cmd:my_reports"))
    fb.send_all()
    assert vi("You have not sent any reports yet.") in fb.texts_to("7301928374650013")[-1]


def _join(fb, psid: str, via: str = "postback") -> None:
    """Get Started (or an m.me link) with an invite code as ref, consent, then a name."""
    from storage.members import create_invite, ensure_village_team
    from storage.search import area_id_by_code

    with fb.db.transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session, "nt.bac-ai.phuoc-dai.ta-lu-1"))
        code, _name = create_invite(session, team.code, role="member", days=5, max_uses=5,
                                    actor="t", now=utcnow())
    if via == "postback":
        first = fb.postback(psid, "GET_STARTED", ref=code)
    else:
        first = fb.text(psid, "")
        event = first["entry"][0]["messaging"][0]
        del event["message"]
        event["referral"] = {"ref": code, "source": "SHORTLINK", "type": "OPEN_THREAD"}
    assert fb.post(first).status_code == 200
    assert fb.post(fb.quick_reply(psid, "consent.ask:yes", "Đồng ý")).status_code == 200
    fb.say(psid, "Pinăng Thị Hoa")


@pytest.mark.parametrize("via", ["postback", "referral"])
def test_get_started_or_an_m_me_link_with_an_invite_code_joins_a_team(fb, via):
    psid = "7301928374650099"
    _join(fb, psid, via)
    fb.send_all()
    assert any("Tà Lú 1" in text for text in fb.texts_to(psid))
    with fb.db.sessions() as session:
        identity = session.scalar(select(Identity).where(Identity.external_id == psid))
        assert identity.member_id is not None


def test_other_attachments_get_a_polite_answer(fb):
    body = fb.text("7301928374650055", "")
    body["entry"][0]["messaging"][0]["message"] = {
        "mid": fb.next_mid(),
        "attachments": [{"type": "audio", "payload": {"url": "https://cdn.fbsbx.com/v/a.mp4"}}]}
    assert fb.post(body).status_code == 200
    fb.send_all()
    assert vi("Do you agree?") in fb.texts_to("7301928374650055")[-1]


def _to_photo_step(fb, psid: str) -> None:
    _join(fb, psid)
    fb.say(psid, "bao cao", "truyen thong", "hom nay", "ta lu 1", "30", "10", "10", "0",
           "binh dang gioi")


def _image_event(fb, psid: str, url: str, mid: str | None = None) -> dict:
    body = copy.deepcopy(payload("image"))
    event = body["entry"][0]["messaging"][0]
    event["sender"]["id"] = psid
    event["message"]["mid"] = mid or fb.next_mid()
    event["message"]["attachments"][0]["payload"]["url"] = url
    return body


def _fetch(fb) -> None:
    async def go() -> None:
        async with make_client(fb.config) as client:
            fetcher = MediaFetcher(fb.db, fb.config.media_path,
                                   {"facebook": FacebookSender(fb.config, client).fetch_media})
            await fetcher.fetch_once()
    asyncio.run(go())


def test_a_photo_is_counted_at_once_and_fetched_by_the_worker(fb):
    psid = "7301928374650321"
    _to_photo_step(fb, psid)
    url = fb.graph.add_image("v/t1.15752-9/a_n.png", png_bytes(seed=7))
    body = _image_event(fb, psid, url)
    assert fb.post(body).status_code == 200
    assert fb.post(body).status_code == 200  # a retried delivery adds nothing
    with fb.db.sessions() as session:
        state = session.scalar(select(ConversationState).join(Identity).where(
            Identity.external_id == psid))
        assert len(state.draft["media"]) == 1
        (media,) = session.scalars(select(Media)).all()
        assert media.status == "pending" and media.source == f"facebook:{url}"
    _fetch(fb)
    with fb.db.sessions() as session:
        (media,) = session.scalars(select(Media)).all()
        assert media.status == "ready"
        assert (fb.config.media_path / media.storage_key).read_bytes() == png_bytes(seed=7)


def test_a_long_cdn_url_is_kept_whole_and_fetched(fb):
    psid = "7301928374650322"
    _to_photo_step(fb, psid)
    url = fb.graph.add_image("v/" + "s" * 900 + ".png", png_bytes(seed=8))
    assert fb.post(_image_event(fb, psid, url, mid=fb.next_mid())).status_code == 200
    _fetch(fb)
    with fb.db.sessions() as session:
        (media,) = session.scalars(select(Media)).all()
        assert media.status == "ready" and media.source == f"facebook:{url}"


def test_downloads_only_from_messenger_hosts_and_within_the_size_cap(fb):
    big = fb.graph.add_image("big.png", png_bytes(size=fb.config.max_photo_bytes + 10))

    async def go(url: str) -> bytes:
        async with make_client(fb.config) as client:
            return await FacebookSender(fb.config, client).fetch_media(url)

    with pytest.raises(MediaError, match="host"):
        asyncio.run(go("http://169.254.169.254/latest/meta-data"))
    with pytest.raises(MediaError, match="larger"):
        asyncio.run(go(big))


# --- sending ----------------------------------------------------------------------------------


def test_long_choices_become_a_numbered_list_with_numbered_quick_replies(fb):
    psid = "7301928374650400"
    _join(fb, psid)
    fb.say(psid, "bao cao")
    fb.send_all()
    for sent in fb.graph.sent_messages():
        replies = sent["message"].get("quick_replies", [])
        assert len(replies) <= 13 and all(len(q["title"]) <= 20 for q in replies)
    last = fb.graph.sent_messages()[-1]["message"]
    # Six at a time; the list in the text keeps every word of a label its button had to cut.
    assert "1. Truyền thông trực tiếp tại cộng đồng" in last["text"]
    assert f"6. {vi('More')}" in last["text"]
    replies = last["quick_replies"]
    assert [q["title"] for q in replies] == [str(n) for n in range(1, 7)]
    assert all(q["payload"].startswith("report.type:") for q in replies[:5])
    fb.post(fb.quick_reply(psid, replies[5]["payload"], "6"))
    fb.send_all()
    assert "4. Hỗ trợ trường hợp tại địa chỉ tin cậy" in fb.graph.sent_messages()[-1][
        "message"]["text"]
    fb.post(fb.quick_reply(psid, replies[1]["payload"], "2"))
    fb.send_all()
    assert vi("On what date? (day/month/year)") in fb.texts_to(psid)[-1]


def _identity(fb, age: timedelta | None, channel: str = "facebook",
              member_id: int | None = None) -> tuple[int, int]:
    """An identity last heard from `age` ago; returns (identity id, member id)."""
    with fb.db.transaction() as session:
        if member_id is None:
            member = Member(display_name="Hoa")
            session.add(member)
            session.flush()
            member_id = member.id
        identity = Identity(channel=channel, external_id=str(8_800_000 + secrets.randbelow(10**6)),
                            consent="given", member_id=member_id,
                            last_inbound_at=utcnow() - age if age is not None else None)
        session.add(identity)
        session.flush()
        return identity.id, member_id


def _queue(fb, identity_id: int, body: dict, priority: int = outbox.PRIORITY_BULK) -> None:
    with fb.db.transaction() as session:
        outbox.enqueue(session, identity_id, "facebook", body, priority=priority, now=utcnow())


def test_a_long_text_is_split_under_2000_characters_with_nothing_cut(fb):
    identity_id, _member = _identity(fb, timedelta(minutes=5))
    text = " ".join(f"Câu số {n} về bình đẳng giới." for n in range(180))
    assert len(text) > 5000
    buttons = [{"label": "Menu", "payload": "cmd:menu"}]
    _queue(fb, identity_id, {"text": text, "buttons": buttons}, outbox.PRIORITY_REPLY)
    fb.send_all()
    sent = fb.graph.sent_messages()
    assert len(sent) >= 3 and all(len(m["message"]["text"]) <= 2000 for m in sent)
    assert " ".join(m["message"]["text"] for m in sent).split() == text.split()
    assert [bool(m["message"].get("quick_replies")) for m in sent] == \
        [False] * (len(sent) - 1) + [True]


def test_outside_the_24_hour_window_a_broadcast_waits(fb):
    identity_id, _member = _identity(fb, timedelta(hours=30))
    _queue(fb, identity_id, {"text": "Tài liệu mới cho tổ"})
    fb.deliver_once()
    assert [r.status for r in fb.rows()] == ["outside_window"]
    assert fb.graph.calls == []


def test_outside_the_window_it_goes_by_telegram_when_the_member_has_it(fb, tmp_path):
    identity_id, member_id = _identity(fb, timedelta(hours=30))
    _identity(fb, timedelta(days=9), channel="telegram", member_id=member_id)
    _queue(fb, identity_id, {"text": "Tài liệu mới cho tổ"})
    with FakeTelegram(token="123456:TEST-token") as tg:
        config = load_config({"DATABASE_URL": fb.config.database_url,
                              "DUAN8_ENV_FILE": str(tmp_path / "none"),
                              "TELEGRAM_BOT_TOKEN": "123456:TEST-token",
                              "TELEGRAM_API_URL": tg.url}, instance_path=tmp_path / "tgi")

        async def go() -> None:
            bot = make_bot(config)
            await bot.initialize()
            async with make_client(fb.config) as client:
                sender = OutboxSender(fb.db, [FacebookSender(fb.config, client),
                                              TelegramSender(bot)])
                for _round in range(3):
                    await sender.deliver_once()
            await bot.shutdown()

        asyncio.run(go())
        assert tg.sent_texts() == ["Tài liệu mới cho tổ"]
    assert Counter(r.status for r in fb.rows()) == Counter({"diverted": 1, "sent": 1})
    assert fb.graph.calls == []


def test_inside_the_window_it_is_a_response_and_a_tag_reaches_beyond_it(fb):
    recent, _m1 = _identity(fb, timedelta(hours=2))
    away, _m2 = _identity(fb, timedelta(hours=30))
    _queue(fb, recent, {"text": "Nhắc: báo cáo tháng"})
    _queue(fb, away, {"text": "Hội nghị ngày 5/9 đã xác nhận", "tag": "CONFIRMED_EVENT_UPDATE"})
    _queue(fb, away, {"text": "Khuyến mãi", "tag": "PROMOTION"})  # not a tag we may use
    fb.send_all()
    by_text = {m["message"]["text"]: m for m in fb.graph.sent_messages()}
    assert by_text["Nhắc: báo cáo tháng"]["messaging_type"] == "RESPONSE"
    tagged = by_text["Hội nghị ngày 5/9 đã xác nhận"]
    assert tagged["messaging_type"] == "MESSAGE_TAG" and tagged["tag"] == "CONFIRMED_EVENT_UPDATE"
    assert "Khuyến mãi" not in by_text
    assert [r.status for r in fb.rows()] == ["sent", "sent", "outside_window"]


# --- errors -----------------------------------------------------------------------------------


def _one_row(fb) -> Outbox:
    (row,) = fb.rows()
    return row


def test_rate_limited_waits_and_is_sent_later(fb):
    fb.graph.fail_next("rate_limited")
    fb.post(fb.text("7301928374650500", "xin chao"))
    fb.deliver_once()
    row = _one_row(fb)
    assert row.status == "pending" and "rate limited" in row.last_error
    assert row.next_attempt_at > utcnow() + timedelta(seconds=30)
    with fb.db.transaction() as session:
        session.execute(update(Outbox).values(next_attempt_at=utcnow()))
    fb.send_all()
    row = _one_row(fb)
    assert row.status == "sent" and row.attempts == 2 and row.platform_message_id


def test_a_person_not_available_is_unreachable_and_never_retried(fb):
    fb.graph.fail_next("unavailable")
    fb.post(fb.text("7301928374650501", "xin chao"))
    fb.send_all()
    row = _one_row(fb)
    assert row.status == "unreachable" and row.attempts == 1
    assert "isn't available" in row.last_error
    with fb.db.sessions() as session:
        assert session.scalar(select(Identity.unreachable_reason).where(
            Identity.external_id == "7301928374650501"))
    assert len(fb.graph.calls_to("/me/messages")) == 1


@pytest.mark.parametrize("kind", ["500", "drop"])
def test_server_errors_and_broken_connections_are_retried(fb, kind):
    fb.graph.fail_next(kind, count=2)
    fb.post(fb.text("7301928374650502", "xin chao"))
    fb.send_all(rounds=200)
    row = _one_row(fb)
    assert row.status == "sent" and row.attempts == 3


def test_a_refused_token_fails_with_a_reason_a_person_can_act_on(fb):
    fb.graph.fail_next("token")
    fb.post(fb.text("7301928374650503", "xin chao"))
    fb.send_all()
    row = _one_row(fb)
    assert row.status == "failed" and row.attempts == 1
    assert "FB_PAGE_ACCESS_TOKEN" in row.last_error and "expired" in row.last_error


def test_graphs_own_window_refusal_holds_the_row_for_the_members_next_message(fb):
    fb.graph.fail_next("outside_window")
    fb.post(fb.text("7301928374650504", "xin chao"))
    fb.send_all()
    row = _one_row(fb)
    assert row.status == "outside_window" and "24-hour window" in row.last_error
    with fb.db.sessions() as session:
        assert session.scalar(select(Identity.unreachable_reason).where(
            Identity.external_id == "7301928374650504")) is None


# --- setup and the worker ---------------------------------------------------------------------


def test_setup_sets_get_started_and_the_vietnamese_menu(fb):
    assert asyncio.run(setup_profile(fb.config)) == {"result": "success"}
    (call,) = fb.graph.calls_to("/me/messenger_profile")
    # The Page token travels in a header, never in a URL that proxies and logs keep.
    assert call.authorization == f"Bearer {fb.graph.token}"
    assert "access_token" not in call.query
    assert call.body["get_started"] == {"payload": "GET_STARTED"}
    (menu,) = call.body["persistent_menu"]
    assert menu["locale"] == "default"
    assert [(b["type"], b["title"], b["payload"]) for b in menu["call_to_actions"]] == [
        ("postback", vi("Report an activity"), "cmd:report"),
        ("postback", vi("My reports"), "cmd:my_reports"),
        ("postback", vi("Help"), "cmd:help"),
    ]


def test_setup_with_a_wrong_token_says_so(db_url, tmp_path, graph):
    config = make_config(db_url, tmp_path, graph, FB_PAGE_ACCESS_TOKEN="wrong")
    with pytest.raises(GraphError, match="FB_PAGE_ACCESS_TOKEN"):
        asyncio.run(setup_profile(config))


def test_the_worker_start_brings_sender_fetcher_and_closer(fb):
    async def go() -> None:
        started = await start(fb.config, fb.db, Dispatcher(fb.config, fb.db))
        assert started.sender.name == "facebook" and started.poller is None
        assert set(started.fetchers) == {"facebook"}
        for close in started.closers:
            await close()
    asyncio.run(go())


def test_the_page_token_never_reaches_the_logs(fb):
    import logging

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("httpx")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        fb.post(fb.text("7301928374650600", "xin chao"))
        fb.send_all()
        asyncio.run(setup_profile(fb.config))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any("/me/messages" in r for r in records)
    assert not any(fb.graph.token in r for r in records)


@pytest.mark.parametrize(("subcode", "unreachable"), [(1545041, True), (2018001, True),
                                                      (2018108, False), (2018109, False)])
def test_only_no_matching_user_marks_a_member_unreachable(subcode, unreachable):
    from bot.channels.messenger.outbound import graph_failure

    code = 551 if subcode == 1545041 else 100 if subcode == 2018001 else 200
    result = graph_failure(400, {"error": {"code": code, "error_subcode": subcode,
                                           "message": "refused"}})
    assert result.unreachable is unreachable and not result.ok
    if not unreachable:
        assert result.final and "configuration" in (result.error or "")


@pytest.mark.parametrize("text", [" ", "\n\t ", ""])
def test_a_blank_message_is_never_sent(text):
    from bot.channels.messenger.outbound import render_messages

    assert render_messages({"text": text}) == []
    assert render_messages({"text": text, "buttons": [{"label": "Có", "payload": "x"}]}
                           )[0]["text"] == "…"


def test_the_graph_version_is_one_setting_and_its_retirement_is_announced(tmp_path):
    from datetime import date

    from bot.app import create_app
    from bot.channels.messenger.graph_versions import (
        AVAILABLE_UNTIL,
        DEFAULT_GRAPH_VERSION,
        version_warning,
    )
    from bot.config import ConfigError, load_config

    # The default is a version Meta still serves for well over the warning period.
    default_end = AVAILABLE_UNTIL[DEFAULT_GRAPH_VERSION]
    assert default_end is None or default_end > date(2027, 12, 1)
    assert version_warning("v21.0", date(2026, 11, 30)) is not None  # ends 21/01/2027
    assert "21/01/2027" in (version_warning("v21.0", date(2026, 11, 30)) or "")
    assert version_warning("v21.0", date(2026, 10, 1)) is None
    assert "retired" in (version_warning("v20.0", date(2026, 11, 30)) or "")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "DUAN8_ENV_FILE": str(tmp_path / "x"),
           "FB_PAGE_ACCESS_TOKEN": "t", "FB_APP_SECRET": "s", "FB_VERIFY_TOKEN": "v"}
    with pytest.raises(ConfigError, match="FB_GRAPH_VERSION"):
        load_config({**env, "FB_GRAPH_VERSION": "21"}, instance_path=tmp_path)
    old = load_config({**env, "FB_GRAPH_VERSION": "v20.0"}, instance_path=tmp_path)
    health = create_app(old).test_client().get("/healthz").get_json()
    assert any("FB_GRAPH_VERSION v20.0" in w for w in health.get("warnings", []))


def test_calls_use_the_configured_graph_version(fb):
    fb.post(fb.text("7301928374650599", "xin chao"))
    fb.send_all()
    (call,) = fb.graph.calls_to("/me/messages")
    assert call.path.startswith(f"/{fb.config.fb_graph_version}/")
