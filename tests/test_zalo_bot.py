"""Zalo Bot Platform end to end against a fake Bot API on loopback: webhook, polling, sending."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
from pathlib import Path

import httpx
import pytest
from channel_harness import ChannelHarness, channel_config
from chat_helpers import png_bytes
from fakes.zalo_bot_api import FakeZaloBot
from sqlalchemy import select

from bot.app import create_app
from bot.channels.zalo_bot import inbound as zalo_bot
from bot.channels.zalo_bot.outbound import (
    TEXT_LIMIT,
    ZaloBotApi,
    ZaloBotError,
    ZaloBotSender,
    failure,
    with_choices,
)
from bot.channels.zalo_bot.polling import MODE_KEY, ZaloBotPoller, delete_webhook, set_webhook
from bot.channels.zalo_bot.worker import start
from bot.config import load_config
from bot.dispatcher import Dispatcher
from bot.media_fetcher import MediaFetcher
from bot.sender import OutboxSender
from messages_vi import _, render
from storage import conversation, outbox, settings
from storage.models import ConversationState, Identity, InboundEvent, Media, Outbox, utcnow

PAYLOADS = Path(__file__).parent / "payloads" / "zalo_bot"
TOKEN = "1459232241454765289:test-zalo-bot-token"
CHAT = "e4ea2cd5189df1c3a88c"


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def fake():
    with FakeZaloBot(token=TOKEN, long_poll_cap=0.2) as server:
        yield server


class Harness(ChannelHarness):
    def __init__(self, config, secret, fake):
        super().__init__(config, zalo_bot.init_app, "zalo_bot")
        self.secret, self.fake = secret, fake
        self.counter = 0

    def post(self, body: dict, secret: str | None = "default"):
        headers = {}
        if secret is not None:
            headers["X-Bot-Api-Secret-Token"] = self.secret if secret == "default" else secret
        return self.client.post("/webhooks/zalo-bot", json=body, headers=headers)

    def say(self, text: str, chat: str = CHAT, *, wrapped: bool = True):
        """A member types `text`; each call is a new message (a fresh message_id)."""
        self.counter += 1
        body = payload("text")
        event = body["result"]
        event["message"]["text"] = text
        event["message"]["chat"]["id"] = event["message"]["from"]["id"] = chat
        event["message"]["message_id"] = f"msg{self.counter:05d}{chat[:6]}"
        return self.post(body if wrapped else event)

    @contextlib.asynccontextmanager
    async def senders(self):
        api = ZaloBotApi(self.config)
        try:
            yield [ZaloBotSender(api, self.db)]
        finally:
            await api.aclose()

    def only_row(self) -> Outbox:
        with self.db.sessions() as session:
            return session.scalar(select(Outbox))


@pytest.fixture
def zb(started_db_url, tmp_path, fake):
    secret = secrets.token_urlsafe(24)
    config = channel_config(started_db_url, tmp_path, ZALO_BOT_TOKEN=TOKEN,
                            ZALO_BOT_WEBHOOK_SECRET=secret, ZALO_BOT_API_URL=fake.url)
    harness = Harness(config, secret, fake)
    yield harness
    harness.close()


def _join(zb: Harness, chat: str) -> None:
    """Consent and join a team by typing an invite code, as a Zalo member would."""
    from storage.members import create_invite, ensure_village_team
    from storage.search import area_id_by_code

    with zb.db.transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session, "nt.bac-ai.phuoc-dai.ta-lu-1"))
        code, _name = create_invite(session, team.code, role="member", days=5, max_uses=5,
                                    actor="t", now=utcnow())
    for text in ("xin chao", "dong y", code, "Pinăng Thị Hoa"):
        assert zb.say(text, chat).status_code == 200


# --- the webhook -----------------------------------------------------------------------------


def test_forged_or_missing_secret_is_refused_before_anything_is_stored(zb):
    body = payload("text")
    assert zb.post(body, secret="wrong-secret").status_code == 403
    assert zb.post(body, secret=None).status_code == 403
    assert zb.post(body, secret=zb.secret[:-1]).status_code == 403
    assert zb.post(body, secret=zb.secret + "x").status_code == 403
    assert zb.count(InboundEvent) == 0 and zb.count(Identity) == 0
    assert zb.post(body).status_code == 200
    assert zb.count(InboundEvent) == 1


def test_without_a_token_the_webhook_does_not_exist(db_url, tmp_path):
    config = load_config({"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "x")},
                         instance_path=tmp_path / "i")
    app = create_app(config)
    if "zalo_bot" not in app.blueprints:
        zalo_bot.init_app(app)
    response = app.test_client().post("/webhooks/zalo-bot", json=payload("text"))
    assert response.status_code == 404


def test_a_body_that_is_not_an_event_is_refused(zb):
    assert zb.post({"ok": True, "result": {"hello": 1}}).status_code == 200
    assert zb.count(InboundEvent) == 0


def test_the_same_event_three_times_gets_one_reply(zb):
    body = payload("text")
    for _attempt in range(3):
        assert zb.post(body).status_code == 200
    zb.send_all()
    sends = zb.fake.calls_to("sendMessage")
    assert len(sends) == 1
    assert sends[0].params["chat_id"] == CHAT
    assert vi("Do you agree?") in sends[0].params["text"]
    assert zb.count(InboundEvent) == 1


def test_wrapped_and_unwrapped_bodies_are_both_answered(zb):
    unwrapped = payload("text_unwrapped")
    assert "ok" not in unwrapped
    assert zb.post(payload("text")).status_code == 200
    assert zb.post(unwrapped).status_code == 200
    assert zb.post(unwrapped).status_code == 200  # a repeat, unwrapped this time
    zb.send_all()
    chats = sorted(c.params["chat_id"] for c in zb.fake.calls_to("sendMessage"))
    assert chats == sorted([CHAT, unwrapped["message"]["chat"]["id"]])


def test_buttons_are_a_numbered_list_and_typing_1_presses_the_first(zb):
    zb.say("xin chao")
    zb.send_all()
    shown = zb.fake.sent_texts(CHAT)[-1]
    assert shown.endswith(f"1. {vi('Agree')}\n2. {vi('Do not agree')}")
    with zb.db.sessions() as session:
        stored = json.loads(settings.get(session, f"zalo_bot.buttons.{CHAT}"))
    assert [b["label"] for b in stored] == [vi("Agree"), vi("Do not agree")]
    zb.say("1")
    zb.send_all()
    assert vi("Thank you. Now let us find your team.") in zb.fake.sent_texts(CHAT)[-1]
    with zb.db.sessions() as session:
        identity = session.scalar(select(Identity).where(Identity.external_id == CHAT))
        assert identity.consent == "given"


def test_a_number_out_of_range_is_ordinary_text(zb):
    zb.say("xin chao")
    zb.send_all()
    zb.say("7")
    zb.send_all()
    assert vi("Please choose Agree or Do not agree.") in zb.fake.sent_texts(CHAT)[-1]


def test_a_count_question_takes_numbers_literally():
    text, choices = with_choices("How many women?", [{"label": "0", "payload": "report.women:0"}])
    assert text == "How many women?" and choices == []
    buttons = [{"label": "A", "payload": "a"}, {"label": "B", "payload": "b"}]
    text, choices = with_choices("", buttons)
    assert text == "1. A\n2. B" and [c["payload"] for c in choices] == ["a", "b"]


def test_a_member_reports_with_numbers_and_a_photo_is_fetched_later(zb):
    _join(zb, CHAT)
    zb.send_all()
    for text in ("bao cao", "truyen thong", "hom nay", "ta lu 1", "30", "10", "1", "0",
                 "binh dang gioi"):
        zb.say(text)
        zb.send_all()
    with zb.db.sessions() as session:
        state = session.scalar(select(ConversationState).join(Identity).where(
            Identity.external_id == CHAT))
        # "1" answered a count question whose only button was "0": one person, not a press.
        assert state.draft["ethnic"] == 1 and state.draft["children"] == 0
    image = payload("image")
    image["result"]["message"]["photo_url"] = zb.fake.add_image("photos/a.png", png_bytes(seed=7))
    assert zb.post(image).status_code == 200
    with zb.db.sessions() as session:
        state = session.scalar(select(ConversationState).join(Identity).where(
            Identity.external_id == CHAT))
        assert len(state.draft["media"]) == 1
        assert {m.status for m in session.scalars(select(Media))} == {"pending"}

    async def fetch() -> None:
        api = ZaloBotApi(zb.config)
        sender = ZaloBotSender(api, zb.db, max_photo_bytes=zb.config.max_photo_bytes)
        await MediaFetcher(zb.db, zb.config.media_path, {"zalo_bot": sender.fetch_media}
                           ).fetch_once()
        await api.aclose()

    asyncio.run(fetch())
    with zb.db.sessions() as session:
        rows = session.scalars(select(Media)).all()
        assert {m.status for m in rows} == {"ready"}
        assert all((zb.config.media_path / m.storage_key).is_file() for m in rows)


def test_a_long_photo_url_is_kept_whole_and_fetched(zb):
    _join(zb, CHAT)
    for text in ("bao cao", "truyen thong", "hom nay", "ta lu 1", "30", "10", "10", "0",
                 "binh dang gioi"):
        zb.say(text)
    url = zb.fake.add_image("photos/" + "x" * 400 + ".png", png_bytes(seed=9))
    image = payload("image")
    image["result"]["message"]["photo_url"] = url
    assert zb.post(image).status_code == 200

    async def fetch() -> None:
        api = ZaloBotApi(zb.config)
        await MediaFetcher(zb.db, zb.config.media_path,
                           {"zalo_bot": ZaloBotSender(api, zb.db).fetch_media}).fetch_once()
        await api.aclose()

    asyncio.run(fetch())
    with zb.db.sessions() as session:
        row = session.scalar(select(Media))
        assert row.source == f"zalo_bot:{url}"
        assert row.status == "ready"


def test_a_download_over_the_size_cap_is_refused(zb):
    url = zb.fake.add_image("big.png", png_bytes(size=4000))

    async def fetch() -> None:
        api = ZaloBotApi(zb.config)
        try:
            with pytest.raises(ValueError, match="limit"):
                await ZaloBotSender(api, zb.db, max_photo_bytes=1000).fetch_media(url)
            assert len(await ZaloBotSender(api, zb.db).fetch_media(url)) > 4000
        finally:
            await api.aclose()

    asyncio.run(fetch())


def test_sticker_and_unsupported_messages_get_a_polite_answer(zb):
    zb.post(payload("unsupported"))  # a first message that is not text: the greeting
    zb.send_all()
    assert vi("Do you agree?") in zb.fake.sent_texts(CHAT)[-1]
    zb.say("dong y")
    zb.post(payload("sticker"))
    zb.send_all()
    assert vi("I received an empty message or only symbols.") in zb.fake.sent_texts(CHAT)[-1]


def test_the_image_field_may_be_called_photo():
    event = payload("image")["result"]
    message = event["message"]
    message["photo"] = message.pop("photo_url")
    incoming = zalo_bot.to_incoming(event)
    assert incoming is not None and incoming.photos[0].source == f"zalo_bot:{message['photo']}"
    assert incoming.event_id == f"message.image.received:{message['message_id']}"


def test_group_messages_and_other_bots_get_no_conversation(zb):
    group = payload("text")
    group["result"]["message"]["chat"] = {"id": "g1234567890", "chat_type": "GROUP"}
    bot = payload("text_unwrapped")
    bot["message"]["from"]["is_bot"] = True
    assert zb.post(group).status_code == 200 and zb.post(bot).status_code == 200
    zb.send_all()
    assert zb.fake.calls_to("sendMessage") == []
    assert zb.count(Identity) == 0 and zb.count(InboundEvent) == 2


# --- sending ---------------------------------------------------------------------------------


def test_a_5000_character_reply_is_split_never_cut(zb):
    text = ("Một câu khá dài về bình đẳng giới trong thôn. " * 110).strip()
    assert len(text) > 5000
    with zb.db.transaction() as session:
        identity = conversation.get_or_create_identity(session, "zalo_bot", CHAT, "vi", utcnow())
        outbox.enqueue(session, identity, "zalo_bot",
                       {"text": text, "buttons": [{"label": "Menu", "payload": "cmd:menu"}],
                        "media": []}, now=utcnow())
    zb.send_all()
    parts = zb.fake.sent_texts(CHAT)
    assert len(parts) == 3 and all(len(p) <= TEXT_LIMIT for p in parts)
    assert parts[-1].endswith("\n\n1. Menu")
    assert " ".join(parts).removesuffix("\n\n1. Menu").split() == text.split()
    assert zb.only_row().status == "sent"


def test_429_waits_and_then_sends(zb):
    zb.fake.fail_next("sendMessage", "429", retry_after=1)
    zb.say("xin chao")
    zb.send_all()
    row = zb.only_row()
    assert row.status == "sent" and row.attempts == 2 and row.platform_message_id
    assert failure(ZaloBotError(429, "Quota exceeded")).retry_after == 30.0


def test_server_errors_are_retried(zb):
    zb.fake.fail_next("sendMessage", "500", count=2)
    zb.say("xin chao")
    zb.send_all(rounds=200)
    row = zb.only_row()
    assert row.status == "sent" and row.attempts == 3


def test_a_dropped_connection_is_a_retry_not_a_loss(zb):
    zb.fake.fail_next("sendMessage", "drop")
    zb.say("xin chao")
    zb.send_all(rounds=200)
    row = zb.only_row()
    assert row.status == "sent" and row.attempts == 2


@pytest.mark.heavy
def test_a_slow_api_times_out_and_is_retried(zb):
    # The one slow answer comes long after the client's timeout; the timeout itself is long
    # enough that an ordinary answer on a loaded machine (the suite runs in two processes)
    # never reaches it, so exactly the first try times out.
    zb.fake.fail_next("sendMessage", "slow", delay=3.0)
    zb.say("xin chao")

    async def go() -> None:
        api = ZaloBotApi(zb.config, client=httpx.AsyncClient(timeout=1.0))
        sender = OutboxSender(zb.db, [ZaloBotSender(api, zb.db)])
        for _round in range(200):
            if await sender.deliver_once() == 0 and not zb.due():
                break
            await asyncio.sleep(0.05)
        await api.aclose()

    asyncio.run(go())
    row = zb.only_row()
    assert row.status == "sent" and row.attempts == 2


def test_blocked_member_is_unreachable_and_never_retried(zb):
    zb.fake.block_chat(CHAT)
    zb.say("xin chao")
    zb.send_all()
    row = zb.only_row()
    assert row.status == "unreachable" and "blocked" in row.last_error and row.attempts == 1
    with zb.db.sessions() as session:
        identity = session.scalar(select(Identity).where(Identity.external_id == CHAT))
        assert identity.unreachable_reason
    assert len(zb.fake.calls_to("sendMessage")) == 1


def test_other_refusals_are_final_with_the_description():
    result = failure(ZaloBotError(400, "Bad request: text must be 1 to 2000 characters"))
    assert result.final and "1 to 2000" in result.error
    assert not failure(ZaloBotError(None, "ReadTimeout")).final
    assert not failure(ZaloBotError(401, "Unauthorized")).final


# --- polling and modes -----------------------------------------------------------------------


def _poll(zb: Harness) -> int:
    """One getUpdates round by a poller with fresh process state; the database remembers."""
    async def go() -> int:
        api = ZaloBotApi(zb.config)
        try:
            return await ZaloBotPoller(api, Dispatcher(zb.config, zb.db)).poll_once(timeout=0)
        finally:
            await api.aclose()
    return asyncio.run(go())


def test_polling_handles_queued_events_and_a_restart_never_answers_twice(zb):
    events = []
    for i in range(3):
        event = copy.deepcopy(payload("text_unwrapped"))
        event["message"]["message_id"] = f"poll{i}"
        event["message"]["chat"]["id"] = event["message"]["from"]["id"] = f"chat{i}"
        events.append(event)
        zb.fake.queue_update(event)
    assert _poll(zb) == 3
    assert zb.fake.pending_updates() == []
    assert _poll(zb) == 0  # the long poll ended empty (408)
    zb.send_all()
    assert len(zb.fake.calls_to("sendMessage")) == 3
    # Zalo hands the last event out again after our crash: a new poller must not answer twice.
    zb.fake.queue_update(events[-1])
    assert _poll(zb) == 1
    zb.send_all()
    assert len(zb.fake.calls_to("sendMessage")) == 3
    assert zb.count(InboundEvent) == 3


def test_webhook_mode_is_stored_and_stops_polling(zb):
    async def go() -> None:
        await set_webhook(zb.config, zb.db, "https://duan8.example.vn/webhooks/zalo-bot")
        assert zb.fake.webhook_url.endswith("/webhooks/zalo-bot")
        assert zb.fake.webhook_secret == zb.secret
        started = await start(zb.config, zb.db, Dispatcher(zb.config, zb.db))
        assert started.poller is None and "zalo_bot" in started.fetchers
        for close in started.closers:
            await close()
        await delete_webhook(zb.config, zb.db)
        assert zb.fake.webhook_url == ""
        started = await start(zb.config, zb.db, Dispatcher(zb.config, zb.db))
        assert started.poller is not None and started.sender.name == "zalo_bot"
        for close in started.closers:
            await close()

    asyncio.run(go())
    with zb.db.sessions() as session:
        assert settings.get(session, MODE_KEY) == "polling"


def test_the_commands_switch_modes_and_say_the_platforms_refusal_in_one_line(zb):
    """`duan8 zalo-bot set-webhook|delete-webhook`, whose platform code loads only when run."""
    from click.testing import CliRunner

    from bot.cli import cli
    from bot.cli_common import Env

    def run(*args: str):
        env = Env()
        env._config = zb.config
        return CliRunner().invoke(cli, ["zalo-bot", *args], obj=env)

    url = "https://duan8.example.vn/webhooks/zalo-bot"
    assert run("set-webhook", "http://duan8.example.vn/x").exit_code == 2
    result = run("set-webhook", url)
    assert result.exit_code == 0, result.output
    assert zb.fake.webhook_url == url and "no longer polls" in result.output
    result = run("delete-webhook")
    assert result.exit_code == 0, result.output
    assert zb.fake.webhook_url == ""
    zb.fake.fail_next("setWebhook", "500")
    result = run("set-webhook", url)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("Error:")


def test_a_short_secret_or_a_wrong_token_is_said_at_once(zb, tmp_path):
    short = load_config({"DATABASE_URL": zb.config.database_url,
                         "DUAN8_ENV_FILE": str(tmp_path / "x"), "ZALO_BOT_TOKEN": TOKEN,
                         "ZALO_BOT_WEBHOOK_SECRET": "short", "ZALO_BOT_API_URL": zb.fake.url},
                        instance_path=tmp_path / "i")
    with pytest.raises(ValueError, match="8 to 256"):
        asyncio.run(set_webhook(short, zb.db, "https://duan8.example.vn/webhooks/zalo-bot"))
    wrong = load_config({"DATABASE_URL": zb.config.database_url,
                         "DUAN8_ENV_FILE": str(tmp_path / "x"), "ZALO_BOT_TOKEN": "1:wrong",
                         "ZALO_BOT_API_URL": zb.fake.url}, instance_path=tmp_path / "i")
    with pytest.raises(ZaloBotError) as caught:
        asyncio.run(start(wrong, zb.db, Dispatcher(wrong, zb.db)))
    assert caught.value.code == 401


def test_the_poller_runs_until_stopped(zb):
    import threading

    stop = threading.Event()

    async def go() -> None:
        started = await start(zb.config, zb.db, Dispatcher(zb.config, zb.db))
        task = asyncio.create_task(started.poller.run(stop))
        zb.fake.queue_update(payload("text_unwrapped"))
        for _wait in range(100):
            if zb.count(InboundEvent):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        for close in started.closers:
            await close()

    asyncio.run(go())
    assert zb.count(InboundEvent) == 1


def test_a_failed_save_while_polling_is_retried_not_lost(zb, monkeypatch):
    from bot.channels.zalo_bot import polling as zalo_bot_api

    real = zalo_bot_api.handle_update
    calls = []

    def flaky(dispatcher, update):
        calls.append(update)
        if len(calls) == 1:
            raise RuntimeError("database briefly away")
        real(dispatcher, update)

    monkeypatch.setattr(zalo_bot_api, "handle_update", flaky)
    zb.fake.queue_update(payload("text_unwrapped"))
    assert _poll(zb) == 1
    assert len(calls) == 2 and zb.count(InboundEvent) == 1


def test_remembering_choices_never_resends_a_delivered_message(zb, monkeypatch):
    from bot.channels.zalo_bot import outbound as zalo_bot_api

    def broken(*args, **kwargs):
        raise RuntimeError("settings table locked")

    monkeypatch.setattr(zalo_bot_api, "remember_buttons", broken)
    zb.say("xin chao")
    zb.send_all()
    assert len(zb.fake.calls_to("sendMessage")) == 1
    assert zb.only_row().status == "sent"


def test_getupdates_is_refused_while_a_webhook_is_set(zb):
    asyncio.run(set_webhook(zb.config, zb.db, "https://duan8.example.vn/webhooks/zalo-bot"))
    with pytest.raises(ZaloBotError) as caught:
        _poll(zb)
    assert caught.value.code == 409


@pytest.mark.parametrize("attachments", [
    [{"type": "image", "payload": {"url": "https://f1.example-zdn.vn/photo/a.jpg"}}],
    [{"type": "image", "url": "https://f1.example-zdn.vn/photo/a.jpg"}],
    [{"type": "sticker", "payload": {"url": "https://x/s.png"}},
     {"type": "image", "payload": {"url": "https://f1.example-zdn.vn/photo/a.jpg"}}],
])
def test_an_image_may_come_under_attachments(attachments):
    event = payload("image")["result"]
    message = event["message"]
    message.pop("photo_url")
    message["attachments"] = attachments
    incoming = zalo_bot.to_incoming(event)
    assert incoming is not None
    assert incoming.photos[0].source == "zalo_bot:https://f1.example-zdn.vn/photo/a.jpg"
