"""Telegram end to end against a fake Bot API on loopback: webhook, polling, photos, sending."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
from pathlib import Path

import pytest
from channel_harness import ChannelHarness, channel_config
from chat_helpers import png_bytes
from fakes.telegram_api import FakeTelegram
from sqlalchemy import select

from bot.app import create_app
from bot.channels.telegram.outbound import TelegramSender, make_bot
from bot.channels.telegram.polling import TelegramPoller
from bot.config import load_config
from bot.dispatcher import Dispatcher
from bot.media_fetcher import MediaFetcher
from messages_vi import _, render
from storage.models import ConversationState, Identity, InboundEvent, Media, Outbox

PAYLOADS = Path(__file__).parent / "payloads" / "telegram"
TOKEN = "123456:TEST-token"


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def fake():
    with FakeTelegram(token=TOKEN) as server:
        yield server


@pytest.fixture
def tg(started_db_url, tmp_path, fake):
    """A configured app, dispatcher and a way to run the worker's sender to completion."""
    secret = secrets.token_urlsafe(24)
    config = channel_config(started_db_url, tmp_path, TELEGRAM_BOT_TOKEN=TOKEN,
                            TELEGRAM_WEBHOOK_SECRET=secret, TELEGRAM_API_URL=fake.url)
    harness = Harness(config, secret, fake)
    yield harness
    harness.close()


class Harness(ChannelHarness):
    def __init__(self, config, secret, fake):
        super().__init__(config)
        self.secret, self.fake = secret, fake

    def post(self, update: dict, secret: str | None = "default"):
        headers = {}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.secret if secret == "default" \
                else secret
        return self.client.post("/webhooks/telegram", json=update, headers=headers)

    @contextlib.asynccontextmanager
    async def senders(self):
        bot = make_bot(self.config)
        await bot.initialize()
        try:
            yield [TelegramSender(bot)]
        finally:
            await bot.shutdown()


def text_update(update_id: int, text: str, chat_id: int = 555001) -> dict:
    update = copy.deepcopy(payload("text"))
    update["update_id"] = update_id
    update["message"]["text"] = text
    update["message"]["chat"]["id"] = chat_id
    update["message"]["from"]["id"] = chat_id
    update["message"]["message_id"] = update_id
    return update


def test_forged_or_missing_secret_is_refused_before_anything_is_stored(tg):
    update = text_update(1000, "xin chao")
    assert tg.post(update, secret="wrong-secret").status_code == 403
    assert tg.post(update, secret=None).status_code == 403
    assert tg.post(update, secret=tg.secret[:-1]).status_code == 403
    assert tg.count(InboundEvent) == 0 and tg.count(Identity) == 0


def test_without_a_token_the_webhook_does_not_exist(db_url, tmp_path):
    config = load_config({"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "x")},
                         instance_path=tmp_path / "i")
    app = create_app(config)
    assert app.test_client().post("/webhooks/telegram", json={"update_id": 1}).status_code == 404


def test_the_same_update_three_times_gets_one_reply(tg):
    update = text_update(2000, "xin chao")
    for _attempt in range(3):
        assert tg.post(update).status_code == 200
    tg.send_all()
    sends = tg.fake.calls_to("sendMessage")
    assert len(sends) == 1
    assert vi("Do you agree?") in sends[0].params["text"]
    assert tg.count(InboundEvent) == 1


def test_button_press_is_acknowledged_and_routed(tg):
    tg.post(text_update(3000, "xin chao", chat_id=777))
    tg.send_all()
    keyboard = tg.fake.calls_to("sendMessage")[-1].params["reply_markup"]
    if isinstance(keyboard, str):
        keyboard = json.loads(keyboard)
    agree = next(b for row in keyboard["inline_keyboard"] for b in row
                 if b["text"] == vi("Agree"))
    press = copy.deepcopy(payload("callback"))
    press["update_id"] = 3001
    press["callback_query"]["data"] = agree["callback_data"]
    press["callback_query"]["message"]["chat"]["id"] = 777
    press["callback_query"]["from"]["id"] = 777
    assert tg.post(press).status_code == 200
    tg.send_all()
    assert tg.fake.calls_to("answerCallbackQuery"), "the spinner must be stopped"
    assert vi("Thank you. Now let us find your team.") in tg.fake.sent_texts()[-1]


def test_an_old_button_is_answered_like_any_stale_input(tg):
    tg.post(text_update(3100, "xin chao", chat_id=778))
    press = copy.deepcopy(payload("callback"))
    press["update_id"] = 3101
    press["callback_query"]["data"] = "report.type:1"  # from a report long finished
    press["callback_query"]["message"]["chat"]["id"] = 778
    press["callback_query"]["from"]["id"] = 778
    tg.post(press)
    tg.send_all()
    assert vi("Please choose Agree or Do not agree.") in tg.fake.sent_texts()[-1]


def _join(tg, chat_id: int, first_update: int) -> int:
    """Consent and join through Telegram; returns the next free update id."""
    from storage.members import create_invite, ensure_village_team
    from storage.models import utcnow
    from storage.search import area_id_by_code

    with tg.db.transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session, "nt.bac-ai.phuoc-dai.ta-lu-1"))
        code, _name = create_invite(session, team.code, role="member", days=5, max_uses=5,
                                    actor="t", now=utcnow())
    n = first_update
    for text in (f"/start {code}", "dong y", "Pinăng Thị Hoa"):
        tg.post(text_update(n, text, chat_id=chat_id))
        n += 1
    return n


def test_deep_link_start_code_joins_a_team(tg):
    _join(tg, 4242, 4000)
    tg.send_all()
    assert any("Tà Lú 1" in text for text in tg.fake.sent_texts())
    with tg.db.sessions() as session:
        identity = session.scalar(select(Identity).where(Identity.external_id == "4242"))
        assert identity.member_id is not None


def _at_photo_step(tg, chat_id: int, first_update: int) -> int:
    """Join, then answer a report up to its photos; returns the next free update id."""
    n = _join(tg, chat_id, first_update)
    for text in ("bao cao", "truyen thong", "hom nay", "ta lu 1", "30", "10", "10", "0",
                 "binh dang gioi"):
        tg.post(text_update(n, text, chat_id=chat_id))
        n += 1
    return n


def test_photos_and_an_album_stay_in_one_draft_and_are_fetched_later(tg):
    n = _at_photo_step(tg, 9001, 5000)
    tg.fake.add_file("photo-big", png_bytes(seed=1), file_path="photos/a.png")
    tg.fake.add_file("album-1", png_bytes(seed=2), file_path="photos/b.png")
    tg.fake.add_file("album-2", png_bytes(seed=3), file_path="photos/c.png")
    for name, file_id in (("photo", "photo-big"), ("album_1", "album-1"), ("album_2", "album-2")):
        update = copy.deepcopy(payload(name))
        update["update_id"] = n
        n += 1
        update["message"]["chat"]["id"] = update["message"]["from"]["id"] = 9001
        update["message"]["photo"][-1]["file_id"] = file_id
        for size in update["message"]["photo"]:
            size["file_size"] = min(size.get("file_size") or 1000, 50_000)
        assert tg.post(update).status_code == 200
    with tg.db.sessions() as session:
        state = session.scalar(select(ConversationState).join(Identity).where(
            Identity.external_id == "9001"))
        assert len(state.draft["media"]) == 3
        assert {m.status for m in session.scalars(select(Media))} == {"pending"}

    async def fetch() -> None:
        bot = make_bot(tg.config)
        await bot.initialize()
        fetcher = MediaFetcher(tg.db, tg.config.media_path,
                               {"telegram": TelegramSender(bot).fetch_media})
        await fetcher.fetch_once()
        await bot.shutdown()

    asyncio.run(fetch())
    with tg.db.sessions() as session:
        rows = session.scalars(select(Media)).all()
        assert {m.status for m in rows} == {"ready"}
        assert all((tg.config.media_path / m.storage_key).is_file() for m in rows)


def test_a_platform_photo_that_is_no_picture_leaves_no_row_and_no_file(tg):
    n = _at_photo_step(tg, 9050, 5500)
    tg.fake.add_file("not-a-picture", b"<html>an error page</html>", file_path="photos/x.png")
    update = copy.deepcopy(payload("photo"))
    update["update_id"] = n
    update["message"]["chat"]["id"] = update["message"]["from"]["id"] = 9050
    update["message"]["photo"][-1]["file_id"] = "not-a-picture"
    for size in update["message"]["photo"]:
        size["file_size"] = min(size.get("file_size") or 1000, 50_000)
    assert tg.post(update).status_code == 200
    assert tg.count(Media) == 1  # counted at once, fetched after the webhook

    async def fetch() -> None:
        bot = make_bot(tg.config)
        await bot.initialize()
        fetcher = MediaFetcher(tg.db, tg.config.media_path,
                               {"telegram": TelegramSender(bot).fetch_media})
        await fetcher.fetch_once()
        await bot.shutdown()

    asyncio.run(fetch())
    assert tg.count(Media) == 0
    media_root = tg.config.media_path
    assert not media_root.exists() or not [f for f in media_root.rglob("*") if f.is_file()]


def test_a_photo_too_large_is_refused_without_downloading(tg):
    n = _at_photo_step(tg, 9100, 6000)
    update = copy.deepcopy(payload("photo"))
    update["update_id"] = n
    update["message"]["chat"]["id"] = update["message"]["from"]["id"] = 9100
    update["message"]["photo"][-1]["file_size"] = tg.config.max_photo_bytes + 1
    tg.post(update)
    tg.send_all()
    assert any(vi("That photo is too large (more than {limit} MB). Send a smaller one.",
                  limit=tg.config.max_photo_bytes // (1024 * 1024)) in t
               for t in tg.fake.sent_texts())
    assert tg.count(Media) == 0


def test_edited_message_gets_an_explanation(tg):
    update = copy.deepcopy(payload("edited_message"))
    tg.post(update)
    tg.send_all()
    assert vi("I cannot use an edited message. Please send the corrected answer as a new "
              "message.") in tg.fake.sent_texts()[-1]


def test_a_member_who_blocked_the_bot_is_marked_unreachable(tg):
    blocked = payload("blocked")
    chat = str(blocked["my_chat_member"]["chat"]["id"])
    tg.post(text_update(7000, "xin chao", chat_id=int(chat)))
    assert tg.post(blocked).status_code == 200
    with tg.db.sessions() as session:
        identity = session.scalar(select(Identity).where(Identity.external_id == chat))
        assert identity.unreachable_reason


def test_group_messages_get_no_conversation(tg):
    tg.post(payload("group_text"))
    tg.send_all()
    assert tg.fake.calls_to("sendMessage") == []
    assert tg.count(Identity) == 0


# --- polling ---------------------------------------------------------------------------------


def test_polling_resumes_from_the_stored_offset_after_a_restart(tg):
    for i in range(3):
        tg.fake.queue_update(text_update(8000 + i, "xin chao", chat_id=8800 + i))

    async def poll_with_new_process_state() -> int:
        bot = make_bot(tg.config)
        await bot.initialize()
        poller = TelegramPoller(bot, Dispatcher(tg.config, tg.db), tg.db, timeout=0)
        handled = await poller.poll_once(timeout=0)
        await bot.shutdown()
        return handled

    assert asyncio.run(poll_with_new_process_state()) == 3
    tg.fake.queue_update(text_update(8003, "xin chao", chat_id=8803))
    # A "restarted" poller: new Bot, new Dispatcher; only the database remembers the offset.
    assert asyncio.run(poll_with_new_process_state()) == 1
    assert asyncio.run(poll_with_new_process_state()) == 0
    offsets = [c.params.get("offset") for c in tg.fake.calls_to("getUpdates")]
    assert offsets[1] == 8003 and offsets[2] == 8004
    assert tg.count(InboundEvent) == 4


# --- the sender ------------------------------------------------------------------------------


def test_429_waits_retry_after_and_then_sends(tg):
    tg.fake.fail_next("sendMessage", "429", retry_after=1)
    tg.post(text_update(9500, "xin chao", chat_id=321))
    tg.send_all()
    with tg.db.sessions() as session:
        row = session.scalar(select(Outbox))
        assert row.status == "sent" and row.attempts == 2 and row.platform_message_id


def test_server_errors_are_retried_with_backoff(tg):
    tg.fake.fail_next("sendMessage", "500", count=2)
    tg.post(text_update(9600, "xin chao", chat_id=322))
    tg.send_all(rounds=200)
    with tg.db.sessions() as session:
        row = session.scalar(select(Outbox))
        assert row.status == "sent" and row.attempts == 3


def test_blocked_member_is_unreachable_and_never_retried(tg):
    tg.fake.block_chat(323)
    tg.post(text_update(9700, "xin chao", chat_id=323))
    tg.send_all()
    with tg.db.sessions() as session:
        row = session.scalar(select(Outbox))
        assert row.status == "unreachable" and "blocked" in row.last_error
        assert row.attempts == 1
        identity = session.scalar(select(Identity).where(Identity.external_id == "323"))
        assert identity.unreachable_reason
    assert len(tg.fake.calls_to("sendMessage")) == 1


def test_chat_not_found_is_unreachable(tg):
    tg.fake.fail_next("sendMessage", "400_chat_not_found")
    tg.post(text_update(9800, "xin chao", chat_id=324))
    tg.send_all()
    with tg.db.sessions() as session:
        row = session.scalar(select(Outbox))
        assert row.status == "unreachable" and "chat not found" in row.last_error.lower()


def test_a_long_text_is_split_never_cut(tg):
    from bot.channels.base import split_text

    text = ("Một câu khá dài về bình đẳng giới. " * 300).strip()
    parts = split_text(text, 4096)
    assert all(len(p) <= 4096 for p in parts) and len(parts) > 1
    assert " ".join(parts).split() == text.split()


def test_the_worker_polls_answers_and_stops_cleanly(tg):
    """`duan8 worker` as a whole: polling (the default mode), sending, clean shutdown."""
    import threading

    from bot.serve import run_worker

    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(tg.config, tg.db, stop), daemon=True)
    thread.start()
    try:
        tg.fake.queue_update(text_update(11_000, "xin chao", chat_id=31337))
        calls = tg.fake.wait_for_calls("sendMessage", 1, timeout=20)
        assert vi("Do you agree?") in calls[0].params["text"]
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


@pytest.mark.parametrize("text", [" ", "\n\t ", ""])
def test_a_blank_text_is_never_sent_to_telegram(text):
    import asyncio as aio

    from bot.channels.base import EMPTY_ERROR
    from bot.channels.telegram.outbound import TelegramSender
    from storage.outbox import OutboundMessage

    class NoRequest:
        async def post(self, *args: object, **kwargs: object) -> dict[str, int]:
            raise AssertionError("a blank text reached the Bot API")

        async def post_encoded(self, *args: object, **kwargs: object) -> dict[str, int]:
            raise AssertionError("a blank text reached the Bot API")

    class NoBot:
        request = NoRequest()

    sender = TelegramSender.__new__(TelegramSender)
    sender.bot = NoBot()
    sender._send_message_url = "http://127.0.0.1:9/botX/sendMessage"
    sender.media = None
    message = OutboundMessage(id=1, identity_id=1, channel="telegram", external_id="5",
                              payload={"text": text}, attempts=0)
    result = aio.run(sender.send(message))
    assert not result.ok and result.final and result.error == EMPTY_ERROR
