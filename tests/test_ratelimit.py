"""Pacing: the schedule spaces sends, the window catches bunching, the fake counts 429s."""

from __future__ import annotations

import asyncio

import pytest
from fakes.telegram_api import FakeTelegram
from sqlalchemy import select

from bot.channels.telegram.outbound import TelegramSender, make_bot
from bot.config import load_config
from bot.ratelimit import TELEGRAM, UNLIMITED, Limits, Pacer, parse_limits
from bot.sender import OutboxSender
from storage import outbox
from storage.db import Database
from storage.models import Identity, Outbox, utcnow

TOKEN = "424242:PACER-test"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reserve_spaces_sends_overall_and_per_chat() -> None:
    clock = Clock()
    pacer = Pacer(Limits(per_second=10.0, per_chat_per_second=1.0), clock=clock)
    waits = [pacer.reserve(f"chat{i}") for i in range(5)]
    assert all(abs(w - 0.1 * i) < 1e-9 for i, w in enumerate(waits))
    # The same chat again waits its per-chat second, counted from its own slot.
    assert abs(pacer.reserve("chat0") - 1.0) < 1e-9
    assert pacer.peek("chat1") > 0.9


def test_a_send_counts_from_its_start_until_a_second_after_its_answer() -> None:
    clock = Clock()
    pacer = Pacer(Limits(per_second=5.0), clock=clock)
    # A late event loop releases eight due slots at the same instant: five go, three wait.
    admitted = [pacer.admit() for _ in range(8)]
    assert admitted[:5] == [0.0] * 5
    assert all(0 < wait < 0.1 for wait in admitted[5:])  # until an answer comes back
    clock.now += 0.3
    for _ in range(5):
        pacer.finish("chat")
    # Answered now, but the platform may have counted them any time since they started.
    assert abs(pacer.admit() - 1.0) < 1e-9
    clock.now += 0.99
    assert pacer.admit() > 0
    clock.now += 0.02
    assert pacer.admit() == 0.0


def test_a_chats_next_message_waits_its_interval_from_the_answer() -> None:
    clock = Clock()
    pacer = Pacer(Limits(per_second=10.0, per_chat_per_second=1.0), clock=clock)
    assert pacer.reserve("a") == 0.0 and pacer.admit() == 0.0
    clock.now += 0.5  # a slow answer
    pacer.finish("a")
    assert abs(pacer.reserve("a") - 1.0) < 1e-9


def test_retry_after_stops_every_send_for_as_long_as_the_platform_said() -> None:
    clock = Clock()
    pacer = Pacer(Limits(per_second=10.0), clock=clock)
    pacer.push_back(3.0)
    assert abs(pacer.admit() - 3.0) < 1e-9  # even a send whose slot was booked earlier
    assert abs(pacer.reserve("b") - 3.0) < 1e-9
    assert abs(pacer.peek("c") - 3.1) < 1e-9
    clock.now += 3.0
    assert pacer.admit() == 0.0


def test_admit_is_free_when_unlimited() -> None:
    pacer = Pacer(Limits(per_second=1_000_000.0), clock=Clock())
    assert all(pacer.admit() == 0.0 for _ in range(5000))


def queue_broadcast(db: Database, rows: int, first_chat: int) -> None:
    """One broadcast row to each of `rows` Telegram chats."""
    now = utcnow()
    with db.transaction() as session:
        for i in range(rows):
            identity = Identity(channel="telegram", external_id=str(first_chat + i),
                                consent="given", last_inbound_at=now)
            session.add(identity)
            session.flush()
            outbox.enqueue(session, identity.id, "telegram", {"text": f"tin {i}"},
                           priority=outbox.PRIORITY_BULK, now=now)


def test_a_broadcast_at_telegrams_limit_draws_no_429(db: Database, tmp_path) -> None:
    rows = 70
    with FakeTelegram(token=TOKEN) as fake:
        fake.rate_limit(global_per_second=30, per_chat_per_second=1, per_group_per_minute=20)
        config = load_config({"DATABASE_URL": db.url, "TELEGRAM_BOT_TOKEN": TOKEN,
                              "TELEGRAM_API_URL": fake.url,
                              "DUAN8_ENV_FILE": str(tmp_path / "absent.env")})
        queue_broadcast(db, rows, first_chat=7000)

        async def send_all() -> None:
            bot = make_bot(config)
            await bot.initialize()
            try:
                channel = TelegramSender(bot)
                assert channel.limits == TELEGRAM
                sender = OutboxSender(db, [channel])
                for _ in range(20):
                    if await sender.deliver_once() == 0:
                        with db.sessions() as session:
                            if not session.scalars(select(Outbox.id).where(
                                    Outbox.status != "sent")).first():
                                return
                        await asyncio.sleep(0.2)
            finally:
                await bot.shutdown()

        asyncio.run(send_all())
        assert fake.too_many_requests == 0
        assert len(fake.accepted_sends()) == rows
    with db.sessions() as session:
        assert set(session.scalars(select(Outbox.status))) == {"sent"}


def test_calls_that_reach_the_platform_late_draw_no_429(db: Database, tmp_path) -> None:
    """A loaded machine: some calls arrive long after they started, bunched with later ones.

    The first calls are held a while before the fake counts them (as a busy client, network
    or server would), so counting sends only when they start would put more than 30 in one
    second of arrivals.
    """
    rows = 75
    with FakeTelegram(token=TOKEN) as fake:
        fake.rate_limit(global_per_second=30, per_chat_per_second=1, per_group_per_minute=20)
        fake.fail_next("sendMessage", "slow", count=20, delay=0.6)
        config = load_config({"DATABASE_URL": db.url, "TELEGRAM_BOT_TOKEN": TOKEN,
                              "TELEGRAM_API_URL": fake.url,
                              "DUAN8_ENV_FILE": str(tmp_path / "absent.env")})
        queue_broadcast(db, rows, first_chat=9000)

        async def send_all() -> None:
            bot = make_bot(config)
            await bot.initialize()
            try:
                sender = OutboxSender(db, [TelegramSender(bot)])
                for _ in range(100):  # rows booked too far ahead come back a little later
                    if len(fake.accepted_sends()) >= rows:
                        return
                    if await sender.deliver_once() == 0:
                        await asyncio.sleep(0.1)
            finally:
                await bot.shutdown()

        asyncio.run(send_all())
        assert fake.too_many_requests == 0
        assert len(fake.accepted_sends()) == rows


def test_a_reply_skips_the_slots_broadcast_rows_booked_ahead() -> None:
    clock = Clock()
    pacer = Pacer(Limits(per_second=10.0, per_chat_per_second=1.0), clock=clock)
    for i in range(30):
        pacer.reserve(f"member{i}")  # three seconds of broadcast booked
    assert pacer.peek("asking") > 2.5
    assert pacer.peek("asking", urgent=True) == 0.0
    assert pacer.reserve("asking", urgent=True) == 0.0
    assert abs(pacer.reserve("asking", urgent=True) - 1.0) < 1e-9  # its own chat still paced
    assert pacer.reserve("member99") > 2.9  # and the broadcast was not moved forward


def test_a_reply_during_a_paced_broadcast_goes_within_seconds(db: Database, tmp_path) -> None:
    """240 broadcast rows take eight seconds at Telegram's 30/s; a reply queued after the first
    second reaches its member long before the broadcast ends, and nobody gets a 429."""
    import threading
    import time

    rows = 240
    with FakeTelegram(token=TOKEN) as fake:
        fake.rate_limit(global_per_second=30, per_chat_per_second=1, per_group_per_minute=20)
        config = load_config({"DATABASE_URL": db.url, "TELEGRAM_BOT_TOKEN": TOKEN,
                              "TELEGRAM_API_URL": fake.url,
                              "DUAN8_ENV_FILE": str(tmp_path / "absent.env")})
        queue_broadcast(db, rows, first_chat=5000)
        with db.transaction() as session:
            asking = Identity(channel="telegram", external_id="4999", consent="given",
                              last_inbound_at=utcnow())
            session.add(asking)
            session.flush()
            asking_id = asking.id

        async def run() -> float:
            bot = make_bot(config)
            await bot.initialize()
            sender = OutboxSender(db, [TelegramSender(bot)])
            stop = threading.Event()
            task = asyncio.create_task(sender.run(stop))
            try:
                while len(fake.accepted_sends()) < 30:
                    await asyncio.sleep(0.05)
                queued = time.monotonic()
                with db.transaction() as session:
                    outbox.enqueue(session, asking_id, "telegram", {"text": "trả lời"},
                                   now=utcnow())
                sender.wakeup.notify()
                while not fake.sent_texts(4999):
                    await asyncio.sleep(0.02)
                    assert time.monotonic() - queued < 10
                latency = time.monotonic() - queued
                assert len(fake.accepted_sends()) < rows  # the broadcast is still going
                return latency
            finally:
                stop.set()
                await task
                await bot.shutdown()

        latency = asyncio.run(run())
        assert fake.too_many_requests == 0
    assert latency < 4.0, f"the reply waited {latency:.1f} s behind the broadcast"


def test_an_override_changes_only_the_parts_it_names() -> None:
    assert parse_limits("15/s", TELEGRAM) == Limits(15.0, 1.0, 20 / 60)
    assert parse_limits("chat 0.5/s; group 10/min", TELEGRAM) == Limits(30.0, 0.5, 10 / 60)
    assert parse_limits(" Unlimited ", TELEGRAM) == UNLIMITED
    for bad in ("", "29", "29/h", "x/s", "-1/s", "nan/s", "room 1/s"):
        if bad:
            with pytest.raises(ValueError):
                parse_limits(bad, TELEGRAM)


def test_the_worker_paces_by_the_operators_limit(db: Database, tmp_path) -> None:
    """TELEGRAM_RATE_LIMIT below the fake's own limit: the sender keeps to it, end to end."""
    from bot.worker import Worker

    rows = 12
    with FakeTelegram(token=TOKEN) as fake:
        config = load_config({"DATABASE_URL": db.url, "TELEGRAM_BOT_TOKEN": TOKEN,
                              "TELEGRAM_API_URL": fake.url, "PLAN_FILE": "off",
                              "TELEGRAM_RATE_LIMIT": "4/s",
                              "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
                             instance_path=tmp_path / "instance")
        queue_broadcast(db, rows, first_chat=8000)

        async def send_all() -> None:
            worker = Worker(config, db)
            await worker.start_channels()
            try:
                assert worker.sender.pacers["telegram"].limits.per_second == 4.0
                for _ in range(100):  # rows booked too far ahead come back a little later
                    if len(fake.accepted_sends()) == rows:
                        return
                    if await worker.deliver_once() == 0:
                        await asyncio.sleep(0.1)
            finally:
                for close in worker.closers:
                    await close()

        asyncio.run(send_all())
        times = sorted(call.time for call in fake.calls_to("sendMessage"))
        assert len(times) == rows
        # 12 sends at 4/s are booked 0.25 s apart: 2.75 s from first to last. Arrival times
        # carry the loopback's jitter, so allow a little either side (at 30/s it would be 0.4 s).
        assert times[-1] - times[0] >= 2.5
        assert all(sum(1 for t in times if start <= t < start + 0.95) <= 4 for start in times)
