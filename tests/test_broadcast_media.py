"""Campaign files (a photo, a PDF, a short video) reach members on Telegram and Messenger.

Each platform's fake speaks its protocol: Telegram's sendPhoto/sendDocument/sendVideo with a
multipart upload or a file_id; Messenger's Attachment Upload API and attachment messages by
attachment_id. A file is uploaded once per platform however many members get it.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from broadcast_helpers import TA_LU_1, add_members, team_in
from fakes.graph_api import FakeGraph
from fakes.telegram_api import FakeTelegram, UploadedFile
from PIL import Image
from sqlalchemy import select

from bot.broadcaster import Broadcaster
from bot.channels.messenger import outbound as facebook_bot
from bot.channels.telegram import outbound as telegram_bot
from bot.config import load_config
from bot.sender import OutboxSender
from storage import broadcasts
from storage import content as library
from storage.broadcasts import Audience
from storage.db import Database
from storage.models import Outbox

TOKEN = "123123:MEDIA-test"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def item_with_files(db: Database, media_dir: Path) -> list[int]:
    """A content item holding a photo, a PDF and a video, broadcast to everyone."""
    with db.transaction() as session:
        media = [library.store_content_media(session, media_dir, data)
                 for data in (png(), PDF, MP4)]
        item = library.add_item(session, title="Tài liệu", text="Xem ảnh, tờ rơi và video.",
                                media=media, use_in_village=True)
        broadcasts.create_broadcast(session, item, Audience())
    return media


def drain(db: Database, connect) -> None:
    """Send until every row is sent, in one event loop with the sender `connect` makes."""
    async def run() -> None:
        sender, close = await connect()
        try:
            for _ in range(30):
                await sender.deliver_once()
                with db.sessions() as session:
                    if not session.scalars(select(Outbox.id).where(
                            Outbox.status != "sent")).first():
                        return
                await asyncio.sleep(0.05)
        finally:
            await close()

    asyncio.run(run())


def test_telegram_members_get_the_photo_pdf_and_video_uploaded_once(plan_db, tmp_path):
    media_dir = tmp_path / "media"
    add_members(plan_db, team_in(plan_db, TA_LU_1), 3)
    item_with_files(plan_db, media_dir)
    with FakeTelegram(token=TOKEN) as fake:
        config = load_config({"DATABASE_URL": plan_db.url, "TELEGRAM_BOT_TOKEN": TOKEN,
                              "TELEGRAM_API_URL": fake.url, "QUIET_HOURS": "off",
                              "DUAN8_ENV_FILE": str(tmp_path / "none")},
                             instance_path=tmp_path / "instance")
        Broadcaster(config, plan_db).step()

        async def connect():
            bot = telegram_bot.make_bot(config)
            await bot.initialize()
            return OutboxSender(plan_db, [telegram_bot.TelegramSender(
                bot, telegram_bot.media_out(plan_db, media_dir))]), bot.shutdown

        drain(plan_db, connect)
        texts = fake.calls_to("sendMessage")
        by_method = {m: fake.calls_to(m) for m in ("sendPhoto", "sendDocument", "sendVideo")}
    assert {c.params["chat_id"] for c in texts} == {1_000_000, 1_000_001, 1_000_002}
    assert all("reply_markup" not in c.params for c in texts)  # the buttons end the item
    for method, calls in by_method.items():
        assert len(calls) == 3 and all(c.status == 200 for c in calls), method
        field = {"sendPhoto": "photo", "sendDocument": "document", "sendVideo": "video"}[method]
        uploads = [c for c in calls if isinstance(c.params[field], UploadedFile)]
        assert len(uploads) == 1, f"{method}: the file went up {len(uploads)} times"
        assert all(isinstance(c.params[field], str) for c in calls if c not in uploads)
    assert by_method["sendDocument"][0].params["document"].filename.endswith(".pdf")
    assert all("reply_markup" in c.params for c in by_method["sendVideo"])
    assert not any("reply_markup" in c.params for c in by_method["sendPhoto"])


def test_messenger_members_get_the_files_as_reusable_attachments(plan_db, tmp_path):
    media_dir = tmp_path / "media"
    add_members(plan_db, team_in(plan_db, TA_LU_1), 3, channel="facebook")
    media = item_with_files(plan_db, media_dir)
    with FakeGraph() as graph:
        config = load_config({"DATABASE_URL": plan_db.url, "FB_PAGE_ACCESS_TOKEN": graph.token,
                              "FB_APP_SECRET": "s" * 32, "FB_VERIFY_TOKEN": "v" * 16,
                              "FB_GRAPH_URL": graph.url, "QUIET_HOURS": "off",
                              "DUAN8_ENV_FILE": str(tmp_path / "none")},
                             instance_path=tmp_path / "instance")
        Broadcaster(config, plan_db).step()

        async def connect():
            client = facebook_bot.make_client(config)
            return OutboxSender(plan_db, [facebook_bot.FacebookSender(
                config, client, facebook_bot.media_out(plan_db, media_dir))]), client.aclose

        # An id kept from long ago (expired at Messenger) is replaced: the file goes up again.
        from storage import settings
        with plan_db.transaction() as session:
            settings.put(session, f"facebook.attachment.{media[1]}", '{"id": "1", "at": 0}')
        drain(plan_db, connect)
        uploads = graph.calls_to("message_attachments")
        sent = graph.sent_messages()
        kept = dict(graph.attachments)
    assert len(uploads) == 3 and all(c.status == 200 for c in uploads)
    assert sorted(kind for kind, *_rest in kept.values()) == ["file", "image", "video"]
    names = [f"{m}.{ext}" for m, ext in zip(media, ["png", "pdf", "mp4"], strict=True)]
    assert {kept[a][1] for a in kept} == set(names)
    per_member: dict[str, list[dict]] = {}
    for body in sent:
        per_member.setdefault(body["recipient"]["id"], []).append(body["message"])
    assert len(per_member) == 3
    for messages in per_member.values():
        assert messages[0]["text"].startswith("Tài liệu")
        kinds = [m["attachment"]["type"] for m in messages[1:]]
        assert kinds == ["image", "file", "video"]
        assert all(m["attachment"]["payload"]["attachment_id"] in kept for m in messages[1:])
        assert "quick_replies" in messages[-1]
        assert not any("quick_replies" in m for m in messages[:-1])


def test_a_file_gone_from_the_store_refuses_the_message_before_any_part_goes(plan_db, tmp_path):
    media_dir = tmp_path / "media"
    add_members(plan_db, team_in(plan_db, TA_LU_1), 1)
    item_with_files(plan_db, media_dir)
    for path in media_dir.rglob("*.pdf"):
        path.unlink()
    with FakeTelegram(token=TOKEN) as fake:
        config = load_config({"DATABASE_URL": plan_db.url, "TELEGRAM_BOT_TOKEN": TOKEN,
                              "TELEGRAM_API_URL": fake.url, "QUIET_HOURS": "off",
                              "DUAN8_ENV_FILE": str(tmp_path / "none")},
                             instance_path=tmp_path / "instance")
        Broadcaster(config, plan_db).step()

        async def run() -> None:
            bot = telegram_bot.make_bot(config)
            await bot.initialize()
            sender = OutboxSender(plan_db, [telegram_bot.TelegramSender(
                bot, telegram_bot.media_out(plan_db, media_dir))])
            await sender.deliver_once()
            await bot.shutdown()

        asyncio.run(run())
        assert fake.calls_to("sendMessage") == [] and fake.calls_to("sendPhoto") == []
    with plan_db.sessions() as session:
        row = session.scalars(select(Outbox)).one()
    assert row.status == "failed" and "no file" in row.last_error
