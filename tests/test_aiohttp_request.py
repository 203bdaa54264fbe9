"""python-telegram-bot over aiohttp: the same wire format, and failures in its own terms."""

from __future__ import annotations

import asyncio
import socket

from chat_helpers import png_bytes
from fakes.telegram_api import FakeTelegram, UploadedFile
from telegram import Bot

from bot.channels.telegram.aiohttp_request import AiohttpRequest
from bot.channels.telegram.outbound import TelegramSender
from storage.outbox import OutboundMessage

TOKEN = "515151:AIOHTTP-test"


def bot_at(url: str, **timeouts: float) -> Bot:
    """A Bot whose calls go through AiohttpRequest to `url`."""
    return Bot(TOKEN, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot",
               request=AiohttpRequest(**timeouts))


def message(text: str, buttons: list[dict[str, str]] | None = None) -> OutboundMessage:
    return OutboundMessage(id=1, identity_id=1, channel="telegram", external_id="777",
                           payload={"text": text, "buttons": buttons or []}, attempts=1)


def test_text_and_buttons_arrive_as_the_default_client_sends_them() -> None:
    async def run(url: str) -> None:
        bot = bot_at(url)
        async with bot:
            result = await TelegramSender(bot).send(
                message("Xin chào", [{"label": "Báo cáo", "payload": "report"}]))
            assert result.ok and result.platform_message_id

    with FakeTelegram(token=TOKEN) as fake:
        asyncio.run(run(fake.url))
        [call] = fake.calls_to("sendMessage")
        assert call.params["text"] == "Xin chào"
        keyboard = call.params["reply_markup"]["inline_keyboard"]
        assert keyboard[0][0] == {"text": "Báo cáo", "callback_data": "report"}


def test_a_file_goes_as_multipart_with_its_name_and_type() -> None:
    photo = png_bytes(seed=3)

    async def run(url: str) -> None:
        async with bot_at(url) as bot:
            await bot.send_photo(chat_id=777, photo=photo, caption="Ảnh buổi họp",
                                 filename="hop.png")

    with FakeTelegram(token=TOKEN) as fake:
        asyncio.run(run(fake.url))
        [call] = fake.calls_to("sendPhoto")
        upload = call.params["photo"]
        assert isinstance(upload, UploadedFile)
        assert upload.data == photo and upload.filename == "hop.png"
        assert call.params["caption"] == "Ảnh buổi họp"


def test_a_slow_answer_is_a_network_failure_the_sender_retries() -> None:
    async def run(url: str) -> None:
        async with bot_at(url, read_timeout=0.3) as bot:
            result = await TelegramSender(bot).send(message("chậm"))
            assert not result.ok and not result.final and not result.unreachable
            assert result.error and result.error.startswith("network")

    with FakeTelegram(token=TOKEN) as fake:
        fake.fail_next("sendMessage", "slow", delay=2.0)
        asyncio.run(run(fake.url))


def test_nobody_listening_is_a_network_failure_too() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def run() -> None:
        bot = bot_at(f"http://127.0.0.1:{port}", connect_timeout=1.0)
        await bot.request.initialize()  # not bot.initialize(): its getMe would fail first
        try:
            result = await TelegramSender(bot).send(message("alo"))
        finally:
            await bot.request.shutdown()
        assert not result.ok and result.error and result.error.startswith("network")

    asyncio.run(run())


def test_a_prepared_body_is_the_json_of_the_call() -> None:
    import json

    from bot.channels.telegram.outbound import send_text_body, wire_keyboard

    buttons = [{"label": "Đã nhận", "payload": "ack:1"}]
    assert json.loads(send_text_body(-100, 'Tin "mới"\n', buttons)) == {
        "chat_id": -100, "text": 'Tin "mới"\n', "reply_markup": wire_keyboard(buttons)}
    assert json.loads(send_text_body(7, "x", [])) == {"chat_id": 7, "text": "x"}
