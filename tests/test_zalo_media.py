"""Zalo OA photos out and the free-reply quota, against the fake OA API on loopback.

Photos are uploaded once and sent as a media template, within Zalo's size and type limits; the
ninth free message after one member message waits for the member to write again.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from chat_helpers import png_bytes
from fakes.zalo_api import CS_PATH, TOKEN_PATH, UPLOAD_PATH
from PIL import Image
from sqlalchemy import func, select
from zalo_helpers import USER, Harness, running

from storage import outbox, settings
from storage.media import store_photo
from storage.models import Identity, Media, Outbox, utcnow


@pytest.fixture
def zh(started_db_url: str, tmp_path: Path) -> Iterator[Harness]:
    """The app against a fake OA API, on the database under test."""
    with running(started_db_url, tmp_path) as harness:
        yield harness


# --- photos out ----------------------------------------------------------------------------------


def _member(zh, user: str, age: timedelta = timedelta(hours=1)) -> int:
    """A consenting Zalo identity that wrote `age` ago."""
    with zh.db.transaction() as session:
        identity = Identity(channel="zalo", external_id=user, consent="given",
                            last_inbound_at=utcnow() - age)
        session.add(identity)
        session.flush()
        return identity.id


def _noise(image: Image.Image, fmt: str) -> bytes:
    """A real picture of random pixels: it does not compress, so its size is its pixels'."""
    noisy = Image.frombytes("RGB", image.size, os.urandom(image.width * image.height * 3))
    out = io.BytesIO()
    noisy.save(out, format=fmt)
    return out.getvalue()


def _photo(zh, data: bytes, owner: int | None = None) -> int:
    """A photo in the media store, as an admin's upload or a member's report would leave it."""
    with zh.db.transaction() as session:
        if owner is None:
            owner = session.scalar(select(Identity.id).order_by(Identity.id))
        stored = store_photo(session, zh.config.media_path, owner, data, max_bytes=10_000_000)
        assert stored.media_id is not None, stored.error
        return stored.media_id


def _queue(zh, identity_id: int, payload: dict, priority: int = outbox.PRIORITY_BULK) -> int:
    with zh.db.transaction() as session:
        return outbox.enqueue(session, identity_id, "zalo", payload, priority=priority,
                              now=utcnow())


def _row(zh, row_id: int) -> Outbox:
    with zh.db.sessions() as session:
        return session.get_one(Outbox, row_id)


def test_a_photo_is_uploaded_then_sent_as_a_media_template_with_its_caption(zh):
    identity = _member(zh, USER)
    picture = png_bytes(seed=7)
    media_id = _photo(zh, picture, identity)
    row = _queue(zh, identity, {"text": "Tờ rơi tháng này", "media": [media_id]})
    zh.send_all()
    assert _row(zh, row).status == "sent"
    uploads = zh.fake.uploads()
    assert len(uploads) == 1
    upload = uploads[0]
    assert upload.headers["access_token"] == zh.fake.access_token
    assert upload.params["file"]["content_type"] == "image/png"
    assert upload.files["file"] == picture
    attachment_id = upload.answer["data"]["attachment_id"]
    assert zh.fake.sent_photos(USER) == [(attachment_id, "Tờ rơi tháng này")]
    message = zh.fake.sent(USER)[0].params["message"]
    assert message["attachment"] == {"type": "template", "payload": {
        "template_type": "media",
        "elements": [{"media_type": "image", "attachment_id": attachment_id}]}}
    paths = [c.path for c in zh.fake.calls if c.path != TOKEN_PATH]
    assert paths == [UPLOAD_PATH, CS_PATH]  # uploaded before anything is sent
    with zh.db.sessions() as session:
        assert settings.get(session, f"zalo.attachment.{media_id}") == attachment_id


def test_a_long_text_goes_first_and_each_photo_is_its_own_message(zh):
    identity = _member(zh, USER)
    first, second = _photo(zh, png_bytes(seed=8), identity), _photo(zh, png_bytes(seed=9),
                                                                     identity)
    text = ("Một câu khá dài về bình đẳng giới. " * 80).strip()
    _queue(zh, identity, {"text": text, "media": [first, second]})
    zh.send_all()
    sent = zh.fake.sent(USER)
    assert len(sent) == 3
    assert "attachment" not in sent[0].params["message"]
    photos = zh.fake.sent_photos(USER)
    assert len(photos) == 2 and photos[1][1] == ""  # only the first photo carries words
    assert " ".join([sent[0].params["message"]["text"], photos[0][1]]).split() == text.split()


def test_one_photo_to_two_members_is_uploaded_once(zh):
    first, second = _member(zh, USER), _member(zh, "7654321098765432401")
    media_id = _photo(zh, png_bytes(seed=10), first)
    rows = [_queue(zh, who, {"text": "Tài liệu mới", "media": [media_id]})
            for who in (first, second)]
    zh.send_all()
    assert [_row(zh, r).status for r in rows] == ["sent", "sent"]
    assert len(zh.fake.uploads()) == 1
    photos = zh.fake.sent_photos(USER) + zh.fake.sent_photos("7654321098765432401")
    assert len(photos) == 2 and photos[0][0] == photos[1][0]
    # A restarted worker (nothing in memory) takes the id from the database.
    third = _member(zh, "7654321098765432402")
    _queue(zh, third, {"text": "", "media": [media_id]})
    zh.send_all()
    assert len(zh.fake.uploads()) == 1
    assert zh.fake.sent_photos("7654321098765432402") == [(photos[0][0], "")]


def test_an_attachment_zalo_no_longer_knows_is_uploaded_again_once(zh):
    identity = _member(zh, USER)
    media_id = _photo(zh, png_bytes(seed=11), identity)
    _queue(zh, identity, {"text": "một", "media": [media_id]})
    zh.send_all()
    zh.fake.forget_attachments()
    row = _queue(zh, identity, {"text": "hai", "media": [media_id]})
    zh.send_all()
    assert _row(zh, row).status == "sent"
    assert len(zh.fake.uploads()) == 2
    fresh = zh.fake.uploads()[1].answer["data"]["attachment_id"]
    assert zh.fake.sent_photos(USER)[-1] == (fresh, "hai")
    with zh.db.sessions() as session:
        assert settings.get(session, f"zalo.attachment.{media_id}") == fresh


def test_a_refused_upload_fails_the_row_before_anything_is_sent(zh):
    identity = _member(zh, USER)
    media_id = _photo(zh, png_bytes(seed=12), identity)
    zh.fake.fail_next(UPLOAD_PATH, "error", code=-201, message="Image is invalid")
    row = _queue(zh, identity, {"text": "Tài liệu", "media": [media_id]})
    zh.send_all()
    failed = _row(zh, row)
    assert failed.status == "failed" and failed.attempts == 1
    assert "-201" in failed.last_error and f"uploading photo {media_id}" in failed.last_error
    assert zh.fake.calls_to(CS_PATH) == []
    with zh.db.sessions() as session:
        assert settings.get(session, f"zalo.attachment.{media_id}") is None


def test_an_upload_with_an_expired_token_refreshes_once_and_a_busy_zalo_is_retried(zh):
    zh.known_expiry()
    identity = _member(zh, USER)
    media_id = _photo(zh, png_bytes(seed=13), identity)
    zh.fake.expire_access_token()
    zh.fake.fail_next(UPLOAD_PATH, "500")
    row = _queue(zh, identity, {"text": "Tài liệu", "media": [media_id]})
    zh.send_all(rounds=200)
    assert _row(zh, row).status == "sent"
    answers = [(c.path, c.status, (c.answer or {}).get("error")) for c in zh.fake.calls]
    assert answers[:4] == [(UPLOAD_PATH, 500, None), (UPLOAD_PATH, 200, -216),
                           (TOKEN_PATH, 200, None), (UPLOAD_PATH, 200, 0)]
    assert len(zh.fake.sent_photos(USER)) == 1


def test_a_photo_over_zalos_limit_or_missing_fails_with_a_reason_and_no_call(zh):
    identity = _member(zh, USER)
    big = _photo(zh, _noise(Image.new("RGB", (640, 640)), "PNG"), identity)  # ~1.2 MB
    webp = _photo(zh, _noise(Image.new("RGB", (8, 8)), "WEBP"), identity)
    gone = _photo(zh, png_bytes(seed=15), identity)
    with zh.db.sessions() as session:
        (zh.config.media_path / session.get_one(Media, gone).storage_key).unlink()
    rows = {name: _queue(zh, _member(zh, f"76543210987654325{n:02d}"),
                         {"text": "Tài liệu", "media": [media_id]})
            for n, (name, media_id) in enumerate([("big", big), ("webp", webp), ("gone", gone),
                                                  ("erased", 987654)])}
    zh.send_all()
    ended = {name: _row(zh, row) for name, row in rows.items()}
    assert {r.status for r in ended.values()} == {"failed"}
    assert "1.2 MB" in ended["big"].last_error and "at most 1 MB" in ended["big"].last_error
    assert "only JPEG or PNG" in ended["webp"].last_error
    assert "no file" in ended["gone"].last_error
    assert "not in the media store" in ended["erased"].last_error
    assert zh.fake.calls_to(UPLOAD_PATH) == [] and zh.fake.calls_to(CS_PATH) == []


# --- the free-reply quota ------------------------------------------------------------------------


def test_the_ninth_message_after_one_inbound_waits_for_the_next(zh):
    # The older rule (ZALO_CS_QUOTA=8): one member message, answered once: 1 of 8 used.
    zh.say("xin chao", deliver=False)
    zh.send_all(quota=8)
    with zh.db.sessions() as session:
        identity = session.scalar(select(Identity.id).where(Identity.external_id == USER))
    rows = [_queue(zh, identity, {"text": f"tin {n}"}) for n in range(2, 10)]
    zh.send_all(quota=8)  # all eight in one batch: unrecorded sends count too
    statuses = [_row(zh, r).status for r in rows]
    assert statuses == ["sent"] * 7 + ["outside_window"]
    assert len(zh.fake.sent(USER)) == 8
    zh.say("xin chao", deliver=False)  # the member writes again: a fresh quota
    zh.send_all(quota=8)
    assert zh.fake.sent_texts(USER)[-1] == "tin 9"  # held back, then caught up
    with zh.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.status == "outside_window")) == 0


def test_a_row_of_several_messages_uses_that_many(zh):
    identity = _member(zh, USER)
    media = [_photo(zh, png_bytes(seed=20 + n), identity) for n in range(3)]
    first = _queue(zh, identity, {"text": "ba ảnh", "media": media})  # 3 messages
    second = _queue(zh, identity, {"text": "tiếp", "media": media[:2]})  # 2 more: 5 of 5
    third = _queue(zh, identity, {"text": "thêm một"})
    zh.send_all(quota=5)
    assert [_row(zh, r).status for r in (first, second, third)] == \
        ["sent", "sent", "outside_window"]


def test_messages_sent_before_the_last_inbound_do_not_count(zh):
    identity = _member(zh, USER, age=timedelta(hours=2))
    for n in range(3):
        _queue(zh, identity, {"text": f"cũ {n}"})
    zh.send_all(quota=3)
    with zh.db.transaction() as session:
        session.get_one(Identity, identity).last_inbound_at = utcnow()
    row = _queue(zh, identity, {"text": "mới"})
    zh.send_all(quota=3)
    assert _row(zh, row).status == "sent"


def test_the_quota_is_configuration(zh):
    from bot.config import ConfigError, load_config

    base = {"DATABASE_URL": zh.config.database_url, "DUAN8_ENV_FILE": "/nonexistent.env"}
    assert load_config(base).zalo_cs_quota is None  # Zalo's newest rule: no count in 48 h
    assert load_config({**base, "ZALO_CS_QUOTA": "8"}).zalo_cs_quota == 8
    for bad in ("lots", "-1"):
        with pytest.raises(ConfigError, match="ZALO_CS_QUOTA"):
            load_config({**base, "ZALO_CS_QUOTA": bad})
    assert zh.sender(quota=2).quota.limit == 2
    identity = _member(zh, USER)
    rows = [_queue(zh, identity, {"text": f"tin {n}"}) for n in range(3)]
    zh.send_all(quota=2)
    assert [_row(zh, r).status for r in rows] == ["sent", "sent", "outside_window"]


def test_zalos_own_quota_report_holds_the_next_message(zh):
    """Zalo returns what is left with each send; when it says none, the next message waits."""
    import asyncio

    zh.fake.quota_remaining[USER] = 1
    zh.say("xin chao", deliver=False)
    with zh.db.sessions() as session:
        found = session.scalars(select(Identity).where(Identity.external_id == USER)).one()
        identity, last = found.id, found.last_inbound_at
    sender = zh.sender()

    def message(text: str) -> outbox.OutboundMessage:
        return outbox.OutboundMessage(id=0, identity_id=identity, channel="zalo",
                                      external_id=USER, payload={"text": text}, attempts=0,
                                      last_inbound_at=last)

    assert sender.may_send(message("một"), utcnow())
    assert asyncio.run(sender.send(message("một"))).ok
    assert sender.reported[USER] == (last, 0)
    assert not sender.may_send(message("hai"), utcnow())
