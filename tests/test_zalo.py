"""Zalo Official Account end to end against a fake OA API and OAuth host on loopback.

Webhook (signature, app id, dedupe, ids beyond 2^53, every event kind), conversation through
numbered choices, photos in, the sender (token refresh on -216 and ahead of expiry, crash safety
of the single-use refresh token, the messaging window, retries and refusals) and first-time
authorisation with PKCE. Photos out and the free-reply quota are in test_zalo_media.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from chat_helpers import png_bytes
from fakes.zalo_api import CS_PATH, TOKEN_PATH, sign
from sqlalchemy import select
from zalo_helpers import USER, Harness, now_ms, payload, running, vi

from bot.app import create_app, db_of
from bot.channels.port import ChannelPort
from bot.channels.zalo_oa import inbound as zalo
from bot.channels.zalo_oa.api import ZaloApi
from bot.channels.zalo_oa.outbound import ZaloSender
from bot.channels.zalo_oa.tokens import (
    EXPIRES_KEY,
    TokenKeeper,
    ZaloTokenError,
    ZaloTokens,
    authorize_url,
    code_from_redirect,
    exchange_code,
)
from bot.channels.zalo_oa.worker import start
from bot.config import load_config
from bot.dispatcher import Dispatcher
from bot.media_fetcher import MediaFetcher
from bot.sender import OutboxSender
from storage import outbox, settings
from storage.models import ConversationState, Identity, InboundEvent, Media, Outbox, utcnow


@pytest.fixture
def zh(started_db_url: str, tmp_path: Path) -> Iterator[Harness]:
    """The app against a fake OA API, on the database under test."""
    with running(started_db_url, tmp_path) as harness:
        yield harness


class SimulatedCrash(Exception):
    """Stands for the process dying at a chosen point."""


# --- the webhook ---------------------------------------------------------------------------------


def test_a_signed_message_is_answered_and_ids_stay_exact(zh):
    event = zh.event("user_send_text", text="xin chao")
    assert zh.post(event).status_code == 200
    zh.send_all()
    assert vi("Do you agree?") in zh.fake.sent_texts(USER)[0]
    with zh.db.sessions() as session:
        identity = session.scalar(select(Identity))
        assert identity.channel == "zalo" and identity.external_id == USER
        inbound = session.scalar(select(InboundEvent))
        assert inbound.event_id == event["message"]["msg_id"]  # the exact string, no rounding


def test_ids_sent_as_bare_json_numbers_keep_every_digit(zh):
    body = json.dumps(zh.event("user_send_text", text="xin chao"))
    # Zalo's ids exceed 2^53: a float parser would round 9007199254740993 to ...992.
    body = body.replace(f'"{USER}"', USER)
    body = re.sub(r'"timestamp": "(\d+)"', r'"timestamp": \1', body)
    raw = body.encode()
    assert zh.post(raw).status_code == 200
    with zh.db.sessions() as session:
        assert session.scalar(select(Identity.external_id)) == USER


def test_forged_missing_or_misread_signatures_are_refused_before_anything_is_stored(zh):
    event = zh.event("user_send_text", text="xin chao")
    body = json.dumps(event).encode()
    good = sign(body, zh.fake.app_id, event["timestamp"], zh.oa_secret)
    assert zh.post(body, signature="mac=" + "0" * 64).status_code == 403
    assert zh.post(body, signature=None).status_code == 403
    assert zh.post(body, signature="0" * 64).status_code == 403  # bare hex, but wrong
    assert zh.post(body, signature="default", secret=zh.fake.app_secret).status_code == 403
    tampered = body.replace(b"xin chao", b"xin chaO")
    assert zh.post(tampered, signature=good).status_code == 403
    assert zh.post(b"not json", signature=good).status_code == 403
    assert zh.count(InboundEvent) == 0 and zh.count(Identity) == 0


def test_a_signature_without_the_mac_prefix_is_accepted_as_zalos_sdk_makes_it(zh):
    # Zalo's Java SDK's MAC helper returns bare hex; integrators show "mac=<hex>".
    event = zh.event("user_send_text", text="xin chao")
    body = json.dumps(event).encode()
    good = sign(body, zh.fake.app_id, event["timestamp"], zh.oa_secret)
    assert good.startswith("mac=")
    assert zh.post(body, signature=good[4:]).status_code == 200
    assert zh.post(body, signature=good.upper().replace("MAC=", "mac=")).status_code == 200
    assert zh.count(InboundEvent) == 1


def test_an_event_for_another_app_is_refused_even_when_signed(zh):
    event = zh.event("user_send_text", text="xin chao")
    event["app_id"] = "1111111111111111111"
    assert zh.post(event, app_id="1111111111111111111").status_code == 403
    assert zh.count(InboundEvent) == 0


def test_the_same_event_three_times_gets_one_reply(zh):
    event = zh.event("user_send_text", text="xin chao")
    for _attempt in range(3):
        assert zh.post(event).status_code == 200
    zh.send_all()
    assert len(zh.fake.sent(USER)) == 1
    assert zh.count(InboundEvent) == 1


def test_without_tokens_the_webhook_does_not_exist(db_url, tmp_path):
    config = load_config({"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "x")},
                         instance_path=tmp_path / "i")
    app = create_app(config)
    if "zalo" not in app.blueprints:
        zalo.init_app(app)
    assert app.test_client().post("/webhooks/zalo", json={}).status_code == 404
    db_of(app).dispose()


def test_a_follow_is_greeted(zh):
    follow = {**payload("follow"), "timestamp": now_ms()}
    follower = follow["follower"]["id"]
    assert zh.post(follow).status_code == 200
    assert zh.post(follow).status_code == 200  # Zalo's retry of the same follow
    zh.send_all()
    texts = zh.fake.sent_texts(follower)
    assert len(texts) == 1 and vi("Do you agree?") in texts[0]
    with zh.db.sessions() as session:
        assert session.scalar(select(InboundEvent.event_id)) == \
            f"follow:{follower}:{follow['timestamp']}"


def test_an_unfollow_marks_the_member_unreachable_until_they_write(zh):
    zh.say("xin chao")
    assert zh.post(payload("unfollow")).status_code == 200
    with zh.db.sessions() as session:
        assert session.scalar(select(Identity.unreachable_reason).where(
            Identity.external_id == USER))
    zh.say("xin chao")
    with zh.db.sessions() as session:
        assert session.scalar(select(Identity.unreachable_reason).where(
            Identity.external_id == USER)) is None


def test_echoes_and_receipts_are_only_noted(zh):
    assert zh.post(payload("oa_send_text")).status_code == 200
    seen = {"app_id": zh.fake.app_id, "event_name": "user_seen_message",
            "timestamp": "9007199254741005", "sender": {"id": USER},
            "recipient": {"id": zh.fake.oa_id},
            "message": {"msg_ids": ["8901234567890123459"]}}
    assert zh.post(seen).status_code == 200
    assert zh.post(seen).status_code == 200
    assert zh.count(InboundEvent) == 2
    assert zh.count(Identity) == 0 and zh.count(Outbox) == 0


# --- conversations -------------------------------------------------------------------------------


def test_numbered_choices_give_consent_and_replies_quote_the_member(zh):
    first = zh.say("xin chao")
    prompt = zh.fake.sent(USER)[-1].params["message"]
    assert f"1. {vi('Agree')}" in prompt["text"] and f"2. {vi('Do not agree')}" in prompt["text"]
    assert prompt["quote_message_id"] == first["message"]["msg_id"]
    zh.say("1")
    with zh.db.sessions() as session:
        assert session.scalar(select(Identity.consent)) == "given"
    assert vi("Thank you. Now let us find your team.") in zh.fake.sent_texts(USER)[-1]


def test_a_typed_number_is_a_number_where_the_question_takes_numbers(zh):
    from bot.channels.numbered import with_choices

    text, choices = with_choices("How many?", [{"label": "0", "payload": "report.women:0"}])
    assert text == "How many?" and choices == []
    text, choices = with_choices("Date?", [{"label": "Today", "payload": "a"},
                                           {"label": "Yesterday", "payload": "b"}])
    assert text.endswith("1. Today\n2. Yesterday") and len(choices) == 2


def _join(zh, user: str) -> None:
    from storage.members import create_invite, ensure_village_team
    from storage.search import area_id_by_code

    with zh.db.transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session, "nt.bac-ai.phuoc-dai.ta-lu-1"))
        code, _name = create_invite(session, team.code, role="member", days=5, max_uses=5,
                                    actor="t", now=utcnow())
    for text in ("xin chao", "1", code, "Pinăng Thị Hoa"):
        zh.say(text, user)
    with zh.db.sessions() as session:
        assert session.scalar(select(Identity.member_id).where(Identity.external_id == user))


def _at_photo_step(zh, user: str) -> None:
    _join(zh, user)
    for text in ("bao cao", "truyen thong", "hom nay", "ta lu 1", "30", "10", "10", "0",
                 "binh dang gioi"):
        zh.say(text, user)
    with zh.db.sessions() as session:
        state = session.scalar(select(ConversationState).join(Identity).where(
            Identity.external_id == user))
        assert (state.flow, state.step) == ("report", "photos")


def test_a_photo_is_counted_at_once_and_fetched_by_the_worker(zh):
    user = "7654321098765432201"
    _at_photo_step(zh, user)
    url = zh.fake.add_image("a/photo.png", png_bytes(seed=4))
    event = zh.event("user_send_image", user)
    event["message"]["attachments"][0]["payload"]["url"] = url
    assert zh.post(event).status_code == 200
    with zh.db.sessions() as session:
        media = session.scalar(select(Media))
        assert media.status == "pending" and media.source == f"zalo:{url}"

    async def fetch() -> None:
        sender = zh.sender()
        await MediaFetcher(zh.db, zh.config.media_path, {"zalo": sender.fetch_media}).fetch_once()
        await sender.api.aclose()

    asyncio.run(fetch())
    with zh.db.sessions() as session:
        media = session.scalar(select(Media))
        assert media.status == "ready"
        assert (zh.config.media_path / media.storage_key).read_bytes() == png_bytes(seed=4)


def test_a_long_photo_url_is_kept_whole_and_fetched(zh):
    user = "7654321098765432202"
    _at_photo_step(zh, user)
    url = zh.fake.add_image("b/" + "x" * 400 + ".png", png_bytes(seed=5))
    event = zh.event("user_send_image", user)
    event["message"]["attachments"][0]["payload"]["url"] = url
    zh.post(event)

    async def fetch() -> None:
        sender = zh.sender()
        await MediaFetcher(zh.db, zh.config.media_path, {"zalo": sender.fetch_media}).fetch_once()
        await sender.api.aclose()

    asyncio.run(fetch())
    with zh.db.sessions() as session:
        media = session.scalar(select(Media))
        assert media.source == f"zalo:{url}" and media.status == "ready"


def test_a_sticker_gets_a_polite_answer(zh):
    user = "7654321098765432203"
    _join(zh, user)
    zh.say("bao cao", user)
    assert zh.post(zh.event("user_send_sticker", user)).status_code == 200
    zh.send_all()
    assert vi("I received an empty message or only symbols.") in zh.fake.sent_texts(user)[-1]


# --- sending and tokens --------------------------------------------------------------------------


def test_env_tokens_of_unknown_age_are_refreshed_first(zh):
    zh.say("xin chao")
    assert [c.path for c in zh.fake.calls] == [TOKEN_PATH, CS_PATH]
    assert zh.stored().refresh_token == zh.fake.refresh_token
    assert zh.stored().access_expires_at > utcnow() + timedelta(hours=24)


def test_an_expired_token_is_refreshed_once_and_the_new_pair_stored_first(zh):
    zh.known_expiry()
    zh.fake.expire_access_token()
    zh.say("xin chao")
    paths = [(c.path, (c.answer or {}).get("error")) for c in zh.fake.calls]
    assert paths == [(CS_PATH, -216), (TOKEN_PATH, None), (CS_PATH, 0)]
    stored = zh.stored()
    assert (stored.access_token, stored.refresh_token) == (zh.fake.access_token,
                                                           zh.fake.refresh_token)
    first_new_refresh = stored.refresh_token
    zh.fake.expire_access_token()
    zh.say("xin chao")
    refreshes = zh.fake.calls_to(TOKEN_PATH)
    assert len(refreshes) == 2
    assert refreshes[1].params["refresh_token"] == first_new_refresh  # the NEW one, not the env's
    assert zh.stored().refresh_token == zh.fake.refresh_token
    with zh.db.sessions() as session:
        assert set(session.scalars(select(Outbox.status))) == {"sent"}


def test_a_token_replaced_by_a_newer_pair_answers_220(zh):
    """Zalo's error table: a token is removed the moment a new pair is issued (-220)."""
    old = zh.fake.access_token
    zh.fake.issue_pair()
    answer = httpx.post(f"{zh.fake.url}{CS_PATH}", headers={"access_token": old},
                        json={"recipient": {"user_id": USER}, "message": {"text": "x"}}).json()
    assert answer["error"] == -220


def test_220_refreshes_once_and_the_message_still_goes(zh):
    zh.known_expiry()
    zh.fake.fail_next(CS_PATH, "error", code=-220, message="access_token is expired or removed")
    zh.say("xin chao")
    answers = [(c.path, (c.answer or {}).get("error")) for c in zh.fake.calls]
    assert answers[0] == (CS_PATH, -220) and answers[-1] == (CS_PATH, 0)
    assert (TOKEN_PATH, None) in answers
    with zh.db.sessions() as session:
        assert set(session.scalars(select(Outbox.status))) == {"sent"}


def test_220_and_216_after_a_refresh_are_retried_never_final():
    from bot.channels.zalo_oa.api import ZaloApiError, failure

    for code in (-216, -220):
        result = failure(ZaloApiError(code, "access_token is expired or removed"))
        assert not result.ok and not result.final


def test_the_token_is_refreshed_ahead_of_expiry(zh):
    zh.known_expiry(timedelta(hours=5))
    zh.say("xin chao")
    assert zh.fake.calls_to(TOKEN_PATH) == []
    with zh.db.transaction() as session:
        settings.put(session, EXPIRES_KEY, (utcnow() + timedelta(minutes=30)).isoformat())
    zh.say("xin chao")
    paths = [c.path for c in zh.fake.calls]
    assert paths[-2:] == [TOKEN_PATH, CS_PATH]
    assert zh.fake.calls[-1].headers["access_token"] == zh.fake.access_token
    assert zh.stored().access_expires_at > utcnow() + timedelta(hours=24)


def test_a_crash_between_the_answer_and_the_commit_leaves_the_old_pair_whole(zh):
    """What the design guarantees, and the one risk it cannot remove."""
    tokens = ZaloTokens(zh.config, zh.db)
    old = tokens.load()

    def crash(_pair: object) -> None:
        raise SimulatedCrash

    tokens.after_answer = crash
    with pytest.raises(SimulatedCrash):
        asyncio.run(tokens.refresh(rejected=old.access_token))
    # Never half-written: the stored pair is still exactly the old one.
    after = zh.stored()
    assert (after.access_token, after.refresh_token) == (old.access_token, old.refresh_token)
    # The unavoidable part: Zalo spent the old refresh token when it answered.
    assert old.refresh_token in zh.fake.spent_refresh_tokens
    # A restarted worker says what to do instead of retrying blindly...
    restarted = ZaloTokens(zh.config, zh.db)
    with pytest.raises(ZaloTokenError, match="zalo authorize"):
        asyncio.run(restarted.refresh(rejected=old.access_token))
    # ...and replies wait (pending, with the reason) rather than failing for good.
    zh.say("xin chao", deliver=False)
    zh.send_all(rounds=1)
    row = zh.rows()[-1]
    assert row.status == "pending" and "zalo authorize" in row.last_error
    # Authorising again recovers.
    _authorize(zh)
    with zh.db.transaction() as session:
        session.get(Outbox, row.id).next_attempt_at = utcnow()
    zh.send_all()
    assert zh.rows()[-1].status == "sent"


def test_a_refresh_that_never_reached_zalo_is_retried_with_the_unspent_token(zh):
    tokens = ZaloTokens(zh.config, zh.db)
    old = tokens.load()
    zh.fake.fail_next(TOKEN_PATH, "drop")  # the connection dies before Zalo processes it
    with pytest.raises(ZaloTokenError):
        asyncio.run(tokens.refresh(rejected=old.access_token))
    assert zh.stored().refresh_token == old.refresh_token
    assert old.refresh_token not in zh.fake.spent_refresh_tokens
    restarted = ZaloTokens(zh.config, zh.db)
    fresh = asyncio.run(restarted.refresh(rejected=old.access_token))
    assert fresh.access_token == zh.fake.access_token == zh.stored().access_token


def test_many_senders_and_two_processes_refresh_only_once(zh):
    old = ZaloTokens(zh.config, zh.db).load()
    zh.fake.expire_access_token()
    shared = ZaloTokens(zh.config, zh.db)

    async def many() -> set[str | None]:
        pairs = await asyncio.gather(*(shared.refresh(rejected=old.access_token)
                                       for _ in range(5)))
        return {p.access_token for p in pairs}

    assert asyncio.run(many()) == {zh.fake.access_token}
    assert len(zh.fake.calls_to(TOKEN_PATH)) == 1

    # Two "processes" (own ZaloTokens, own event loop, own connections) at the same moment.
    second = ZaloTokens(zh.config, zh.db).load()
    zh.fake.expire_access_token()
    barrier = threading.Barrier(2)
    results: list[str | None] = []

    def process() -> None:
        tokens = ZaloTokens(zh.config, type(zh.db)(zh.db.url))
        barrier.wait()
        results.append(asyncio.run(tokens.refresh(rejected=second.access_token)).access_token)
        tokens.port.db.dispose()

    threads = [threading.Thread(target=process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(zh.fake.calls_to(TOKEN_PATH)) == 2  # one more, not two more
    assert results == [zh.fake.access_token] * 2


def test_a_restart_keeps_the_stored_pair_and_a_new_env_token_is_adopted(zh, db_url, tmp_path):
    zh.fake.expire_access_token()
    zh.say("xin chao")
    refreshed = zh.stored()
    same_env = {"ZALO_OA_ACCESS_TOKEN": zh.config.zalo_oa_access_token,
                "ZALO_OA_REFRESH_TOKEN": zh.config.zalo_oa_refresh_token}
    again = Harness(db_url, tmp_path / "again", zh.fake, **same_env)  # the spent env token
    assert ZaloTokens(again.config, again.db).load() == refreshed
    again.db.dispose()
    access, refresh = zh.fake.issue_pair()  # an admin pastes a new pair into the environment
    pasted = Harness(db_url, tmp_path / "pasted", zh.fake)
    adopted = ZaloTokens(pasted.config, pasted.db).load()
    assert (adopted.access_token, adopted.refresh_token) == (access, refresh)
    pasted.db.dispose()


def _queue_bulk(zh, user: str, age: timedelta) -> int:
    with zh.db.transaction() as session:
        identity = Identity(channel="zalo", external_id=user, consent="given",
                            last_inbound_at=utcnow() - age)
        session.add(identity)
        session.flush()
        return outbox.enqueue(session, identity.id, "zalo", {"text": "tài liệu mới"},
                              priority=outbox.PRIORITY_BULK, now=utcnow())


def test_the_window_rule_holds_back_what_zalo_would_refuse(zh):
    outside = _queue_bulk(zh, "7654321098765432301", timedelta(hours=49))
    inside = _queue_bulk(zh, "7654321098765432302", timedelta(hours=47))
    zh.send_all()
    with zh.db.sessions() as session:
        assert session.get(Outbox, outside).status == "outside_window"
        assert session.get(Outbox, inside).status == "sent"
    assert zh.fake.sent_texts("7654321098765432301") == []
    assert zh.fake.sent_texts("7654321098765432302") == ["tài liệu mới"]


def test_the_window_is_configuration(zh):
    from bot.config import ConfigError, load_config

    base = {"DATABASE_URL": zh.config.database_url, "DUAN8_ENV_FILE": "/nonexistent.env"}
    assert load_config(base).zalo_cs_window_hours == 48
    assert load_config({**base, "ZALO_CS_WINDOW_HOURS": "168"}).zalo_cs_window_hours == 168
    with pytest.raises(ConfigError, match="ZALO_CS_WINDOW_HOURS"):
        load_config({**base, "ZALO_CS_WINDOW_HOURS": "soon"})
    row = _queue_bulk(zh, "7654321098765432303", timedelta(hours=100))
    zh.send_all(window=timedelta(hours=168))
    with zh.db.sessions() as session:
        assert session.get(Outbox, row).status == "sent"


def test_billed_days_are_used_only_when_the_operator_says_so(zh):
    from bot.channels.zalo_oa.quota import ZaloPolicy

    held = _queue_bulk(zh, "7654321098765432304", timedelta(hours=60))
    zh.send_all()
    billed = _queue_bulk(zh, "7654321098765432305", timedelta(hours=60))
    too_late = _queue_bulk(zh, "7654321098765432306", timedelta(days=8))
    zh.send_all(policy=ZaloPolicy(use_billed=True))
    with zh.db.sessions() as session:
        assert session.get(Outbox, held).status == "outside_window"
        assert session.get(Outbox, billed).status == "sent"
        assert session.get(Outbox, too_late).status == "outside_window"


def test_server_errors_are_retried(zh):
    zh.fake.fail_next(CS_PATH, "500", count=2)
    zh.say("xin chao", deliver=False)
    zh.send_all(rounds=200)
    row = zh.rows()[0]
    assert row.status == "sent" and row.attempts == 3


def test_a_slow_answer_is_a_timeout_and_retried(zh):
    zh.fake.fail_next(CS_PATH, "slow", delay=1.5)
    zh.say("xin chao", deliver=False)

    async def once() -> None:
        sender = ZaloSender(ZaloApi(zh.config, timeout=0.5), ZaloTokens(zh.config, zh.db), zh.db)
        await OutboxSender(zh.db, [sender]).deliver_once()
        await sender.api.aclose()

    asyncio.run(once())
    row = zh.rows()[0]
    assert row.status == "pending" and row.last_error.startswith("network")


def test_other_error_codes_fail_with_the_code(zh):
    # The consent prompt has buttons and a quote: each is dropped once before giving up.
    zh.fake.fail_next(CS_PATH, "error", code=-201, message="Parameter is invalid", count=3)
    zh.say("xin chao")
    row = zh.rows()[0]
    assert row.status == "failed" and "-201" in row.last_error and row.attempts == 1
    assert len(zh.fake.calls_to(CS_PATH)) == 3


def test_a_refused_quote_does_not_cost_the_answer(zh):
    # Zalo's refusal does not say what it refused: the buttons go first, then the quote.
    zh.fake.fail_next(CS_PATH, "error", code=-201, message="quote_message_id is invalid",
                      count=2)
    zh.say("xin chao")
    assert zh.rows()[0].status == "sent"
    calls = zh.fake.calls_to(CS_PATH)
    assert "quote_message_id" in calls[0].params["message"]
    assert "quote_message_id" in calls[1].params["message"]
    assert "attachment" not in calls[1].params["message"]
    assert "quote_message_id" not in calls[2].params["message"]
    assert vi("Do you agree?") in calls[2].params["message"]["text"]


def test_a_window_error_from_zalo_ends_with_a_readable_reason(zh):
    zh.fake.fail_next(CS_PATH, "error", code=-230,
                      message="User has not interacted with the OA in the past 7 days")
    zh.say("xin chao")
    row = zh.rows()[0]
    assert row.status == "failed" and "outside the Zalo messaging window" in row.last_error


def test_a_long_text_is_split_never_cut(zh):
    text = ("Một câu khá dài về bình đẳng giới. " * 150).strip()
    with zh.db.transaction() as session:
        identity = Identity(channel="zalo", external_id=USER, consent="given",
                            last_inbound_at=utcnow())
        session.add(identity)
        session.flush()
        outbox.enqueue(session, identity.id, "zalo", {"text": text}, now=utcnow())
    zh.send_all()
    parts = zh.fake.sent_texts(USER)
    assert len(parts) == 3 and all(len(p) <= 2000 for p in parts)
    assert " ".join(parts).split() == text.split()


def test_start_gives_the_worker_a_sender_fetcher_and_keeper(zh):
    async def go() -> None:
        started = await start(zh.config, zh.db, Dispatcher(zh.config, zh.db))
        assert started.sender.name == "zalo" and "zalo" in started.fetchers
        assert isinstance(started.poller, TokenKeeper)
        for close in started.closers:
            await close()

    asyncio.run(go())
    broken = load_config({"DATABASE_URL": zh.db.url, "DUAN8_ENV_FILE": "/nonexistent",
                          "ZALO_OA_ACCESS_TOKEN": "x"}, instance_path=zh.config.instance_path)
    with pytest.raises(ValueError, match="ZALO_APP_SECRET"):
        asyncio.run(start(broken, zh.db, Dispatcher(broken, zh.db)))


# --- first-time authorisation --------------------------------------------------------------------


def _authorize(zh) -> None:
    url, verifier, state = authorize_url(zh.config, "https://duan8.example.org/zalo/callback")
    redirect = httpx.get(url, follow_redirects=False)
    assert redirect.status_code == 302
    code = code_from_redirect(redirect.headers["location"], state)
    asyncio.run(exchange_code(zh.config, zh.db, code, verifier))


def test_authorize_url_carries_a_valid_s256_challenge(zh):
    url, verifier, state = authorize_url(zh.config, "https://duan8.example.org/zalo/callback")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{zh.fake.url}/v4/oa/permission"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["app_id"] == zh.fake.app_id and query["state"] == state
    assert query["redirect_uri"] == "https://duan8.example.org/zalo/callback"
    # Zalo's SDKs make 43 alphanumerics, and the fake refuses any other verifier.
    assert len(verifier) == 43 and re.fullmatch(r"[A-Za-z0-9]+", verifier)
    digest = hashlib.sha256(verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_exchange_code_stores_the_pair_and_a_wrong_verifier_stores_nothing(zh):
    before = ZaloTokens(zh.config, zh.db).load()
    url, verifier, state = authorize_url(zh.config, "https://duan8.example.org/cb")
    code = code_from_redirect(httpx.get(url).headers["location"], state)
    with pytest.raises(ZaloTokenError):
        asyncio.run(exchange_code(zh.config, zh.db, code, verifier + "x"))
    assert zh.stored() == before
    _authorize(zh)
    stored = zh.stored()
    assert (stored.access_token, stored.refresh_token) == (zh.fake.access_token,
                                                           zh.fake.refresh_token)
    # The env's old tokens never override an authorised pair, even on a restart.
    assert ZaloTokens(zh.config, zh.db).load() == stored


def test_code_from_redirect_takes_a_url_or_a_bare_code_and_checks_state():
    assert code_from_redirect("abc123") == "abc123"
    assert code_from_redirect("https://x.org/cb?code=abc&state=s1&oa_id=9", "s1") == "abc"
    with pytest.raises(ValueError, match="state"):
        code_from_redirect("https://x.org/cb?code=abc&state=other", "s1")


def test_a_retried_event_leaves_the_quoted_message_as_it_was(zh):
    """Zalo retries an old event after the member wrote again: the next reply still quotes the
    newest message, because the quote id is kept in the message's own transaction."""
    first = zh.say("xin chao", deliver=False)
    second = zh.say("dong y", deliver=False)
    assert zh.post(first).status_code == 200  # the retry of the first, after the second
    assert zh.count(InboundEvent) == 2
    assert ChannelPort(zh.db).value(zalo.quote_key(USER)) == second["message"]["msg_id"]
