"""The fake Telegram Bot API server itself, so Telegram channel tests can trust what it answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import telegram
from fakes.telegram_api import DEFAULT_TOKEN, FakeTelegram, UploadedFile

PAYLOADS = Path(__file__).parent / "payloads" / "telegram"
PAYLOAD_FILES = sorted(PAYLOADS.glob("*.json"))


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    """A fresh fake server per test, closed afterwards."""
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def api(tg: FakeTelegram) -> Iterator[httpx.Client]:
    """A keep-alive client rooted at the bot's API prefix."""
    with httpx.Client(base_url=f"{tg.url}/bot{tg.token}", timeout=5) as client:
        yield client


def payload(name: str) -> dict:
    """One recorded Update payload."""
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def test_get_me(api: httpx.Client, tg: FakeTelegram) -> None:
    response = api.get("/getMe")

    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["result"]["is_bot"] is True
    assert body["result"]["id"] == int(DEFAULT_TOKEN.split(":")[0])
    assert body["result"]["username"] == "duan8_test_bot"
    assert [call.method for call in tg.calls] == ["getMe"]


def test_method_names_are_case_insensitive(api: httpx.Client, tg: FakeTelegram) -> None:
    assert api.post("/getme").json()["ok"] is True
    assert tg.calls_to("getMe")


def test_wrong_token_is_unauthorized(tg: FakeTelegram) -> None:
    response = httpx.post(f"{tg.url}/bot999:wrong/getMe")

    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert tg.calls == []


def test_unknown_method_is_not_found(api: httpx.Client) -> None:
    response = api.post("/sendTelepathy", json={"chat_id": 1})

    assert response.status_code == 404
    assert response.json()["ok"] is False


def test_send_message_is_recorded_with_increasing_ids(api: httpx.Client, tg: FakeTelegram) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Đồng ý", "callback_data": "consent.ask:yes"}]]}
    first = api.post(
        "/sendMessage", json={"chat_id": 42, "text": "xin chào", "reply_markup": keyboard}
    ).json()["result"]
    # Form-encoded, as python-telegram-bot sends it: non-string values are JSON strings.
    second = api.post(
        "/sendMessage",
        data={"chat_id": "42", "text": "tạm biệt", "reply_markup": json.dumps(keyboard)},
    ).json()["result"]

    assert second["message_id"] > first["message_id"]
    assert first["chat"]["id"] == 42 and first["chat"]["type"] == "private"
    assert first["text"] == "xin chào"
    assert isinstance(first["date"], int)
    assert first["reply_markup"] == keyboard == second["reply_markup"]
    calls = tg.calls_to("sendMessage")
    assert [call.params for call in calls] == [
        {"chat_id": 42, "text": "xin chào", "reply_markup": keyboard},
        {"chat_id": 42, "text": "tạm biệt", "reply_markup": keyboard},
    ]
    assert calls[0].time <= calls[1].time
    assert tg.sent_texts() == ["xin chào", "tạm biệt"]
    assert tg.sent_texts(chat_id=7) == []
    assert [chat for _, chat in tg.accepted_sends()] == [42, 42]

    tg.clear()
    assert tg.calls == [] and tg.accepted_sends() == []


def test_empty_text_is_a_bad_request(api: httpx.Client, tg: FakeTelegram) -> None:
    response = api.post("/sendMessage", json={"chat_id": "42", "text": ""})

    assert response.status_code == 400
    assert response.json()["description"] == "Bad Request: message text is empty"
    assert tg.sent_texts() == []


def test_fail_next_429_then_success(api: httpx.Client, tg: FakeTelegram) -> None:
    tg.fail_next("sendMessage", "429", retry_after=3)

    refused = api.post("/sendMessage", json={"chat_id": 1, "text": "một"})
    accepted = api.post("/sendMessage", json={"chat_id": 1, "text": "một"})

    assert refused.status_code == 429
    assert refused.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert accepted.status_code == 200
    assert [call.status for call in tg.calls_to("sendMessage")] == [429, 200]
    assert tg.sent_texts() == ["một"]


@pytest.mark.parametrize(
    ("kind", "status", "description"),
    [
        ("500", 500, "Internal Server Error"),
        ("403_blocked", 403, "Forbidden: bot was blocked by the user"),
        ("400_chat_not_found", 400, "Bad Request: chat not found"),
    ],
)
def test_fail_next_error_kinds(
    api: httpx.Client, tg: FakeTelegram, kind: str, status: int, description: str
) -> None:
    tg.fail_next("sendMessage", kind, count=2)

    answers = [api.post("/sendMessage", json={"chat_id": 1, "text": "a"}) for _ in range(3)]

    assert [a.status_code for a in answers] == [status, status, 200]
    assert answers[0].json() == {"ok": False, "error_code": status, "description": description}


def test_fail_next_slow_and_drop(api: httpx.Client, tg: FakeTelegram) -> None:
    tg.fail_next("getMe", "slow", delay=0.3)
    started = time.monotonic()
    assert api.get("/getMe").status_code == 200
    assert time.monotonic() - started >= 0.3

    tg.fail_next("sendMessage", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/sendMessage", json={"chat_id": 1, "text": "mất"})
    assert api.post("/sendMessage", json={"chat_id": 1, "text": "còn"}).status_code == 200
    assert tg.sent_texts() == ["còn"]
    assert [call.status for call in tg.calls_to("sendMessage")] == [0, 200]


def test_fail_next_rejects_unknown_kinds(tg: FakeTelegram) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        tg.fail_next("sendMessage", "418")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tg.fail_next("sendMessage", "slow", delai=1)


def test_block_chat(api: httpx.Client, tg: FakeTelegram) -> None:
    tg.block_chat(5012345678)

    blocked = api.post("/sendMessage", json={"chat_id": 5012345678, "text": "chào"})
    as_string = api.post("/sendMessage", json={"chat_id": "5012345678", "text": "chào"})
    other = api.post("/sendMessage", json={"chat_id": 6123456789, "text": "chào"})

    assert blocked.status_code == as_string.status_code == 403
    assert blocked.json() == {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }
    assert other.status_code == 200
    tg.unblock_chat(5012345678)
    assert api.post("/sendMessage", json={"chat_id": 5012345678, "text": "x"}).is_success


def test_rate_limit_one_chat(api: httpx.Client, tg: FakeTelegram) -> None:
    tg.rate_limit()
    started = time.monotonic()

    answers = [api.post("/sendMessage", json={"chat_id": 77, "text": f"{i}"}) for i in range(40)]

    elapsed = time.monotonic() - started
    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(ok) + len(refused) == 40
    assert 1 <= len(ok) <= int(elapsed) + 1
    for answer in refused:
        retry_after = answer.json()["parameters"]["retry_after"]
        assert isinstance(retry_after, int) and retry_after >= 1
        assert answer.json()["description"] == f"Too Many Requests: retry after {retry_after}"
    assert tg.too_many_requests == len(refused)
    assert len(tg.accepted_sends()) == len(ok)


def test_rate_limit_25_chats_pass(api: httpx.Client, tg: FakeTelegram) -> None:
    tg.rate_limit()
    started = time.monotonic()

    answers = [api.post("/sendMessage", json={"chat_id": c, "text": "x"}) for c in range(1, 26)]

    assert time.monotonic() - started < 1.0
    assert [a.status_code for a in answers] == [200] * 25
    assert tg.too_many_requests == 0
    assert tg.peak_rate() == 25
    assert tg.achieved_rate() > 25


def test_rate_limit_35_chats_hit_global_limit(api: httpx.Client, tg: FakeTelegram) -> None:
    tg.rate_limit()
    started = time.monotonic()

    answers = [api.post("/sendMessage", json={"chat_id": c, "text": "x"}) for c in range(1, 36)]

    statuses = [a.status_code for a in answers]
    assert statuses.count(429) >= 1
    if time.monotonic() - started < 1.0:
        assert statuses == [200] * 30 + [429] * 5
    assert tg.too_many_requests == statuses.count(429)
    assert tg.peak_rate() <= 30


def test_rate_limit_groups_per_minute(api: httpx.Client, tg: FakeTelegram) -> None:
    tg.rate_limit(global_per_second=None, per_chat_per_second=None, per_group_per_minute=20)

    statuses = [
        api.post("/sendMessage", json={"chat_id": -4012345678, "text": "x"}).status_code
        for _ in range(22)
    ]
    private = api.post("/sendMessage", json={"chat_id": 5, "text": "x"})

    assert statuses == [200] * 20 + [429] * 2
    assert private.status_code == 200
    last = api.post("/sendMessage", json={"chat_id": -4012345678, "text": "x"}).json()
    assert last["parameters"]["retry_after"] > 50

    tg.unlimited()
    assert api.post("/sendMessage", json={"chat_id": -4012345678, "text": "x"}).is_success


def test_get_updates_offset_semantics(api: httpx.Client, tg: FakeTelegram) -> None:
    ids = [tg.queue_update(payload(name)) for name in ("text.json", "callback.json", "photo.json")]

    first = api.post("/getUpdates", json={"limit": 2}).json()["result"]
    again = api.post("/getUpdates", json={}).json()["result"]
    confirmed = api.post("/getUpdates", json={"offset": ids[-1] + 1}).json()["result"]
    afterwards = api.post("/getUpdates", json={}).json()["result"]

    assert [u["update_id"] for u in first] == ids[:2]
    assert [u["update_id"] for u in again] == ids  # not confirmed yet: delivered again
    assert confirmed == [] and afterwards == []
    assert tg.pending_updates() == []
    assert tg.queue_update({"message": payload("text.json")["message"]}) == ids[-1] + 1


def test_get_updates_partial_confirmation(api: httpx.Client, tg: FakeTelegram) -> None:
    ids = [tg.queue_update(payload(name)) for name in ("text.json", "callback.json", "photo.json")]

    result = api.get("/getUpdates", params={"offset": ids[1]}).json()["result"]

    assert [u["update_id"] for u in result] == ids[1:]
    assert [u["update_id"] for u in tg.pending_updates()] == ids[1:]


def test_get_updates_long_poll_wakes_on_new_update(api: httpx.Client, tg: FakeTelegram) -> None:
    update = payload("text.json")
    timer = threading.Timer(0.2, tg.queue_update, args=(update,))
    timer.start()
    started = time.monotonic()

    result = api.post("/getUpdates", json={"timeout": 2}).json()["result"]

    timer.join()
    assert 0.1 < time.monotonic() - started < 1.5
    assert result == [update]


def test_get_updates_long_poll_is_capped() -> None:
    with FakeTelegram(long_poll_cap=0.3) as tg:
        started = time.monotonic()
        response = httpx.post(f"{tg.url}/bot{tg.token}/getUpdates", json={"timeout": 30})
        elapsed = time.monotonic() - started

    assert response.json() == {"ok": True, "result": []}
    assert 0.25 < elapsed < 1.5


def test_webhook_set_info_delete(api: httpx.Client, tg: FakeTelegram) -> None:
    tg.queue_update(payload("text.json"))
    set_answer = api.post(
        "/setWebhook", json={"url": "https://duan8.example/telegram", "secret_token": "s3cret"}
    )

    assert set_answer.json() == {"ok": True, "result": True}
    assert tg.webhook_url == "https://duan8.example/telegram"
    assert tg.webhook_secret == "s3cret"
    assert api.post("/getUpdates").status_code == 409

    assert api.post("/deleteWebhook", json={"drop_pending_updates": True}).json()["result"]
    assert tg.webhook_url == "" and tg.webhook_secret is None
    assert api.post("/getUpdates").json()["result"] == []


def test_get_file_and_download(api: httpx.Client, tg: FakeTelegram) -> None:
    data = bytes(range(256)) * 4
    tg.add_file("AgACAgUAAxkBAAIBaWmZ3xQ1wC", data, file_path="photos/file_7.jpg")

    info = api.post("/getFile", json={"file_id": "AgACAgUAAxkBAAIBaWmZ3xQ1wC"}).json()["result"]
    download = httpx.get(f"{tg.url}/file/bot{tg.token}/{info['file_path']}")

    assert info["file_path"] == "photos/file_7.jpg"
    assert info["file_size"] == len(data)
    assert download.status_code == 200 and download.content == data
    assert api.post("/getFile", json={"file_id": "nope"}).status_code == 400
    assert httpx.get(f"{tg.url}/file/bot{tg.token}/photos/none.jpg").status_code == 404
    assert httpx.get(f"{tg.url}/file/bot1:bad/photos/file_7.jpg").status_code == 401


def test_multipart_send_photo(api: httpx.Client, tg: FakeTelegram) -> None:
    image = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\r\n--\r\n\xff\xd9"

    response = api.post(
        "/sendPhoto",
        data={"chat_id": "5012345678", "caption": "Ảnh băng rôn"},
        files={"photo": ("banner.jpg", image, "image/jpeg")},
    )

    assert response.status_code == 200
    message = response.json()["result"]
    assert message["caption"] == "Ảnh băng rôn"
    assert message["photo"][-1]["file_size"] == len(image)
    (call,) = tg.calls_to("sendPhoto")
    assert call.params["chat_id"] == 5012345678
    assert call.params["caption"] == "Ảnh băng rôn"
    assert call.params["photo"] == UploadedFile("banner.jpg", "image/jpeg", image)
    info = api.post("/getFile", json={"file_id": message["photo"][-1]["file_id"]}).json()
    stored = httpx.get(f"{tg.url}/file/bot{tg.token}/{info['result']['file_path']}")
    assert stored.content == image


def test_concurrent_sends_from_an_asyncio_loop_in_another_thread(tg: FakeTelegram) -> None:
    results: list[int] = []

    async def send_many() -> None:
        async with httpx.AsyncClient(base_url=f"{tg.url}/bot{tg.token}") as client:
            answers = await asyncio.gather(
                *(client.post("/sendMessage", json={"chat_id": i, "text": "x"}) for i in range(60))
            )
        results.extend(a.json()["result"]["message_id"] for a in answers)

    worker = threading.Thread(target=asyncio.run, args=(send_many(),))
    worker.start()
    tg.wait_for_calls("sendMessage", 60, timeout=5)
    worker.join(timeout=5)

    assert len(set(results)) == 60
    assert len(tg.accepted_sends()) == 60


def test_keep_alive_throughput(api: httpx.Client, tg: FakeTelegram) -> None:
    started = time.monotonic()
    for i in range(300):
        api.post("/sendMessage", json={"chat_id": i + 1, "text": "x"})
    elapsed = time.monotonic() - started

    assert len(tg.accepted_sends()) == 300
    assert elapsed < 3.0


def test_close_stops_serving_and_releases_long_polls() -> None:
    tg = FakeTelegram()

    def long_poll() -> None:
        # Closing may answer the poll or reset its connection; either releases it.
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{tg.url}/bot{tg.token}/getUpdates", json={"timeout": 2})

    poll = threading.Thread(target=long_poll)
    poll.start()
    time.sleep(0.1)
    started = time.monotonic()
    tg.close()
    poll.join(timeout=3)

    assert time.monotonic() - started < 1.0
    assert not poll.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tg.url}/bot{tg.token}/getMe")
    tg.close()  # idempotent


def test_python_telegram_bot_talks_to_the_fake(tg: FakeTelegram) -> None:
    tg.queue_update(payload("text.json"))
    tg.queue_update(payload("start_deeplink.json"))
    tg.add_file("photo-1", b"\x89PNG fake", file_path="photos/file_1.jpg")

    async def scenario() -> None:
        bot = telegram.Bot(tg.token, base_url=f"{tg.url}/bot", base_file_url=f"{tg.url}/file/bot")
        async with bot:
            me = await bot.get_me()
            assert me.username == "duan8_test_bot"
            sent = await bot.send_message(5012345678, "xin chào")
            assert sent.text == "xin chào" and sent.chat.id == 5012345678
            updates = await bot.get_updates(timeout=0)
            assert [u.message.text for u in updates] == ["xin chào", "/start ABCD2345"]
            assert updates[0].message.from_user.language_code == "vi"
            assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()
            file = await bot.get_file("photo-1")
            assert await file.download_as_bytearray() == bytearray(b"\x89PNG fake")
            photo = await bot.send_photo(5012345678, b"\xff\xd8 jpeg", caption="ảnh")
            assert photo.caption == "ảnh"

    asyncio.run(scenario())

    assert tg.sent_texts(5012345678) == ["xin chào"]
    (photo_call,) = tg.calls_to("sendPhoto")
    assert isinstance(photo_call.params["photo"], UploadedFile)
    assert photo_call.params["photo"].data == b"\xff\xd8 jpeg"
    assert photo_call.params["chat_id"] == 5012345678


# PTB itself warns when it builds RetryAfter with an int retry_after (deprecated since 22.2).
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_python_telegram_bot_sees_telegram_errors(tg: FakeTelegram) -> None:
    tg.fail_next("sendMessage", "429", retry_after=2)
    tg.block_chat(6123456789)

    async def scenario() -> None:
        bot = telegram.Bot(tg.token, base_url=f"{tg.url}/bot", base_file_url=f"{tg.url}/file/bot")
        async with bot:
            with pytest.raises(telegram.error.RetryAfter):
                await bot.send_message(5012345678, "một")
            with pytest.raises(telegram.error.Forbidden, match="blocked"):
                await bot.send_message(6123456789, "hai")

    asyncio.run(scenario())


def test_payload_update_ids_are_distinct() -> None:
    ids = [payload(path.name)["update_id"] for path in PAYLOAD_FILES]

    assert len(PAYLOAD_FILES) == 9
    assert all(isinstance(i, int) for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", PAYLOAD_FILES, ids=lambda p: p.name)
def test_payload_parses_as_update(path: Path) -> None:
    bot = telegram.Bot(DEFAULT_TOKEN)
    update = telegram.Update.de_json(json.loads(path.read_text(encoding="utf-8")), bot)

    assert update.update_id > 0
    assert update.effective_chat is not None


def test_payload_contents() -> None:
    bot = telegram.Bot(DEFAULT_TOKEN)

    def load(name: str) -> telegram.Update:
        return telegram.Update.de_json(payload(name), bot)

    assert load("text.json").effective_user.language_code == "vi"
    start = load("start_deeplink.json").message
    assert start.text == "/start ABCD2345"
    assert start.parse_entities([telegram.MessageEntity.BOT_COMMAND]) != {}
    callback = load("callback.json").callback_query
    assert callback.data == "consent.ask:yes" and callback.message and callback.chat_instance
    photo = load("photo.json").message
    assert [p.width for p in photo.photo] == sorted(p.width for p in photo.photo)
    assert len(photo.photo) == 3 and photo.caption
    album = [load("album_1.json").message, load("album_2.json").message]
    assert album[0].media_group_id == album[1].media_group_id is not None
    assert load("edited_message.json").edited_message.edit_date is not None
    member = load("blocked.json").my_chat_member
    assert member.new_chat_member.status == telegram.ChatMember.BANNED  # "kicked"
    group = load("group_text.json").message.chat
    assert group.id < 0 and group.type == telegram.Chat.GROUP
