"""The shared sender under stress: two senders at once, and a sender killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from conftest import PG_URL
from fakes.telegram_api import FakeTelegram
from sqlalchemy import func, select

from bot.channels.base import SendResult
from bot.channels.telegram.outbound import TelegramSender, make_bot
from bot.config import load_config
from bot.ratelimit import UNLIMITED, Limits
from bot.sender import OutboxSender, SenderSettings
from messages_vi import _, render
from storage import outbox
from storage.db import Database
from storage.models import Identity, Member, Outbox, utcnow
from storage.outbox import Delivery, OutboundMessage

TOKEN = "987654:SENDER-test"


def queue_rows(db: Database, count: int) -> None:
    """`count` messages to `count` different chats, each text unique."""
    now = utcnow()
    with db.transaction() as session:
        for i in range(count):
            identity = Identity(channel="telegram", external_id=str(10_000 + i), consent="given")
            session.add(identity)
            session.flush()
            outbox.enqueue(session, identity.id, "telegram", {"text": f"tin số {i}"}, now=now)


def statuses(db: Database) -> Counter:
    with db.sessions() as session:
        return Counter(session.scalars(select(Outbox.status)))


def config_for(db_url: str, fake: FakeTelegram, tmp_path):
    return load_config({"DATABASE_URL": db_url, "DUAN8_ENV_FILE": str(tmp_path / "none"),
                        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.url},
                       instance_path=tmp_path / "instance")


async def drain(config, db: Database, settings: SenderSettings | None = None,
                deadline: float = 30.0) -> None:
    bot = make_bot(config)
    await bot.initialize()
    sender = OutboxSender(db, [TelegramSender(bot)], settings=settings)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        handled = await sender.deliver_once()
        if handled == 0:
            with db.sessions() as session:
                left = session.scalar(select(func.count()).select_from(Outbox).where(
                    Outbox.status.in_(["pending", "sending"])))
            if not left:
                break
            await asyncio.sleep(0.1)
    await bot.shutdown()


@pytest.mark.skipif(not PG_URL, reason="row locking across senders is a PostgreSQL feature")
def test_two_senders_on_postgres_never_send_a_row_twice(db, tmp_path):
    with FakeTelegram(token=TOKEN) as fake:
        config = config_for(db.url, fake, tmp_path)
        queue_rows(db, 400)
        threads = [threading.Thread(target=lambda: asyncio.run(
            drain(config, Database(db.url), SenderSettings(batch=25)))) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        texts = fake.sent_texts()
        assert len(texts) == 400 and len(set(texts)) == 400
        assert statuses(db) == Counter({"sent": 400})


WORKER = textwrap.dedent("""
    import asyncio
    from datetime import timedelta
    from bot.channels.telegram.outbound import TelegramSender, make_bot
    from bot.config import load_config
    from bot.sender import OutboxSender, SenderSettings
    from storage.db import Database

    async def main():
        config = load_config()
        bot = make_bot(config)
        await bot.initialize()
        sender = OutboxSender(Database(config.database_url), [TelegramSender(bot)],
                              settings=SenderSettings(lease=timedelta(seconds=2)))
        while True:
            await sender.deliver_once()
            await asyncio.sleep(0.05)

    asyncio.run(main())
""")


def test_a_sender_killed_mid_batch_loses_nothing(db, tmp_path):
    with FakeTelegram(token=TOKEN) as fake:
        config = config_for(db.url, fake, tmp_path)
        queue_rows(db, 60)
        fake.fail_next("sendMessage", "slow", count=10_000, delay=0.05)
        env = {**os.environ, "DATABASE_URL": db.url, "TELEGRAM_BOT_TOKEN": TOKEN,
               "TELEGRAM_API_URL": fake.url, "DUAN8_INSTANCE": str(tmp_path / "worker"),
               "DUAN8_ENV_FILE": str(tmp_path / "none")}
        proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env)
        try:
            end = time.monotonic() + 30
            while len(fake.calls_to("sendMessage")) < 10 and time.monotonic() < end:
                time.sleep(0.02)
            assert len(fake.calls_to("sendMessage")) >= 10, "the worker never started sending"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert statuses(db)["sent"] < 60, "killed too late to test anything"
        # The dead worker's rows come back as its leases (2 s) run out: drain keeps claiming
        # until nothing is left, so no fixed wait for them is needed.
        asyncio.run(drain(config, db, SenderSettings(lease=timedelta(seconds=2))))
        assert statuses(db) == Counter({"sent": 60})
        delivered = Counter(fake.sent_texts())
        assert set(delivered) == {f"tin số {i}" for i in range(60)}
        # At most the rows that were in flight at the kill go out twice (at-least-once).
        assert sum(n - 1 for n in delivered.values()) <= SenderSettings().in_flight


class WindowedChannel:
    """A platform with a 24-hour reply window (as Messenger has), delivering into a list."""

    name = "windowed"
    limits = UNLIMITED

    def __init__(self) -> None:
        self.delivered: list[str] = []

    def is_group(self, external_id: str) -> bool:
        return False

    def is_paced(self, payload: dict) -> bool:
        return False

    def may_send(self, message: OutboundMessage, now) -> bool:
        last = message.last_inbound_at
        return last is not None and now - last < timedelta(hours=24)

    async def send(self, message: OutboundMessage) -> SendResult:
        self.delivered.append(message.payload["text"])
        return SendResult(ok=True, platform_message_id=str(message.id))


def _member_with(db: Database, channels: dict[str, timedelta | None]) -> dict[str, int]:
    """A member with one identity per channel, each last heard from `age` ago."""
    now = utcnow()
    ids = {}
    with db.transaction() as session:
        member = Member(display_name="Hoa")
        session.add(member)
        session.flush()
        for index, (channel, age) in enumerate(channels.items()):
            identity = Identity(channel=channel, external_id=str(700_000 + member.id * 10 + index),
                                consent="given", member_id=member.id,
                                last_inbound_at=now - age if age is not None else None)
            session.add(identity)
            session.flush()
            ids[channel] = identity.id
    return ids


def test_outside_the_window_a_message_goes_to_the_next_linked_channel(db, tmp_path):
    with FakeTelegram(token=TOKEN) as fake:
        config = config_for(db.url, fake, tmp_path)
        ids = _member_with(db, {"windowed": timedelta(days=3), "telegram": timedelta(days=9)})
        with db.transaction() as session:
            outbox.enqueue(session, ids["windowed"], "windowed", {"text": "tài liệu mới"},
                           priority=outbox.PRIORITY_BULK, now=utcnow())
        windowed = WindowedChannel()

        async def run() -> None:
            bot = make_bot(config)
            await bot.initialize()
            sender = OutboxSender(db, [windowed, TelegramSender(bot)])
            for _round in range(5):
                await sender.deliver_once()
            await bot.shutdown()

        asyncio.run(run())
        assert windowed.delivered == []
        assert fake.sent_texts() == ["tài liệu mới"]
        assert statuses(db) == Counter({"diverted": 1, "sent": 1})


def test_with_no_other_channel_it_waits_for_the_members_next_message(db, tmp_path):
    from bot.dispatcher import Dispatcher, Incoming

    config = load_config({"DATABASE_URL": db.url, "DUAN8_ENV_FILE": str(tmp_path / "none"),
                          "PLAN_FILE": "off"}, instance_path=tmp_path / "instance")
    ids = _member_with(db, {"windowed": timedelta(days=2)})
    with db.transaction() as session:
        for text in ("tài liệu 1", "tài liệu 2"):
            outbox.enqueue(session, ids["windowed"], "windowed", {"text": text},
                           priority=outbox.PRIORITY_BULK, now=utcnow())
    windowed = WindowedChannel()
    sender = OutboxSender(db, [windowed])
    asyncio.run(sender.deliver_once())
    assert windowed.delivered == [] and statuses(db) == Counter({"outside_window": 2})
    # The member writes again: the reply, then what was held back, oldest first.
    with db.transaction() as session:
        external = session.get(Identity, ids["windowed"]).external_id
    Dispatcher(config, db).dispatch(Incoming(channel="windowed", external_id=external,
                                             event_id="w-1", text="help"))
    asyncio.run(sender.deliver_once())
    assert windowed.delivered[-3:] == [
        render(_("While you were away:"), "vi"), "tài liệu 1", "tài liệu 2"]


@pytest.mark.skipif(not PG_URL, reason="LISTEN/NOTIFY is a PostgreSQL feature")
def test_a_reply_queued_by_another_process_wakes_the_sender_at_once(db, tmp_path):
    """The web process and the worker share no memory: NOTIFY is what wakes the sender."""
    from bot.dispatcher import Dispatcher, Incoming
    from bot.worker import Worker

    config = load_config({"DATABASE_URL": db.url, "DUAN8_ENV_FILE": str(tmp_path / "none")},
                         instance_path=tmp_path / "instance")
    from bot.startup import prepare_database

    prepare_database(config, db)
    # The sender would otherwise sleep 30 s between idle polls.
    worker = Worker(config, Database(db.url), sender_settings=SenderSettings(
        idle_wait_seconds=30.0))
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(worker.run(stop)), daemon=True)
    thread.start()
    try:
        time.sleep(1.5)  # let the worker go idle and LISTEN
        web = Dispatcher(config, Database(db.url))  # its own wake-up: another process
        started = time.monotonic()
        web.dispatch(Incoming(channel="webchat", external_id="w1", event_id="n-1", text="hi"))
        while statuses(db).get("sent", 0) < 1 and time.monotonic() - started < 10:
            time.sleep(0.02)
        assert statuses(db).get("sent", 0) >= 1
        assert time.monotonic() - started < 3.0
    finally:
        stop.set()
        thread.join(timeout=30)


class HeldChannel(WindowedChannel):
    """A channel whose send of one chosen text hangs until released, then fails."""

    name = "held"

    def __init__(self, hang_on: str) -> None:
        super().__init__()
        self.hang_on = hang_on
        self.started: list[str] = []
        self.release: asyncio.Event | None = None

    def may_send(self, message: OutboundMessage, now) -> bool:
        return True

    async def send(self, message: OutboundMessage) -> SendResult:
        text = message.payload["text"]
        self.started.append(text)
        if text == self.hang_on:
            assert self.release is not None
            await self.release.wait()
            return SendResult(ok=False, error="server error: 502")
        return await super().send(message)


def test_a_later_batch_goes_out_beside_a_stuck_one_but_never_overtakes_its_chat(db):
    """Batches overlap in `run`; a chat's next row still waits for, and shares the fate of,
    its earlier row in a batch still out."""
    with db.transaction() as session:
        chats = {}
        for chat in ("A", "B"):
            identity = Identity(channel="held", external_id=f"chat-{chat}", consent="given")
            session.add(identity)
            session.flush()
            chats[chat] = identity.id
        ids = {text: outbox.enqueue(session, chats[text[0]], "held", {"text": text},
                                    now=utcnow()) for text in ("A1", "A2", "B1")}
    channel = HeldChannel(hang_on="A1")
    sender = OutboxSender(db, [channel], settings=SenderSettings(batch=1, batches_at_once=3))

    async def scenario() -> None:
        channel.release = asyncio.Event()
        stop = threading.Event()
        running = asyncio.create_task(sender.run(stop))
        end = time.monotonic() + 10
        while "B1" not in channel.delivered and time.monotonic() < end:
            await asyncio.sleep(0.01)
        started_while_stuck = list(channel.started)
        channel.release.set()
        while statuses(db).get("sending") and time.monotonic() < end:
            await asyncio.sleep(0.02)
        stop.set()
        sender.wakeup.notify()
        await asyncio.wait_for(running, 10)
        # B1, claimed after A1 and A2, went while A1 hung; A2 did not start behind it.
        assert started_while_stuck == ["A1", "B1"]

    asyncio.run(scenario())
    assert channel.delivered == ["B1"]
    with db.sessions() as session:
        rows = {text: session.get(Outbox, row_id) for text, row_id in ids.items()}
        first, second = rows["A1"], rows["A2"]
        assert (first.status, second.status, rows["B1"].status) == ("pending", "pending", "sent")
        assert first.attempts == 1 and second.attempts == 0  # A2 was given back, not tried
        assert second.next_attempt_at == first.next_attempt_at > utcnow()
        assert second.last_error == first.last_error == "server error: 502"


class FlakyChannel(WindowedChannel):
    """Answers "too many requests, retry after 0.3 s" to the first try of every row."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__()
        self.tries: Counter = Counter()

    def may_send(self, message: OutboundMessage, now) -> bool:
        return True

    async def send(self, message: OutboundMessage) -> SendResult:
        self.tries[message.id] += 1
        if self.tries[message.id] == 1:
            return SendResult(ok=False, error="rate limited", retry_after=0.3)
        return await super().send(message)


def test_an_idle_sender_wakes_when_a_row_given_back_comes_due(db):
    """Nothing new is queued, yet the retry goes when it is due, not after the idle wait."""
    with db.transaction() as session:
        identity = Identity(channel="flaky", external_id="chat-1", consent="given")
        session.add(identity)
        session.flush()
        outbox.enqueue(session, identity.id, "flaky", {"text": "thử lại"}, now=utcnow())
    channel = FlakyChannel()
    sender = OutboxSender(db, [channel], settings=SenderSettings(idle_wait_seconds=30.0))

    async def scenario() -> float:
        stop = threading.Event()
        started = time.monotonic()
        running = asyncio.create_task(sender.run(stop))
        while not channel.delivered and time.monotonic() - started < 10:
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        stop.set()
        sender.wakeup.notify()
        await asyncio.wait_for(running, 10)
        return took

    took = asyncio.run(scenario())
    assert channel.delivered == ["thử lại"]
    assert 0.3 <= took < 3.0, took


class PacedChannel(WindowedChannel):
    """A channel with a low overall rate, to see what the sender claims while it paces."""

    name = "paced"
    limits = Limits(per_second=10.0, per_chat_per_second=1.0)

    def may_send(self, message: OutboundMessage, now) -> bool:
        return True

    def is_paced(self, payload: dict) -> bool:
        return True


def test_while_pacing_holds_a_batch_the_sender_claims_nothing_ahead(db):
    """Rows claimed ahead of a paced batch could only wait past the hold limit and be given
    back; the sender claims the next batch when pacing lets it out at once."""
    with db.transaction() as session:
        for i in range(30):
            identity = Identity(channel="paced", external_id=f"p-{i}", consent="given")
            session.add(identity)
            session.flush()
            outbox.enqueue(session, identity.id, "paced", {"text": f"tin {i}"}, now=utcnow())
    channel = PacedChannel()
    # A batch of 10 at 10/s waits at most 0.9 s; a batch claimed ahead would wait 1-1.9 s.
    sender = OutboxSender(db, [channel], settings=SenderSettings(batch=10, max_hold_seconds=1.5))
    given_back: list[Delivery] = []
    record = sender._record

    def counting(deliveries: list[Delivery]) -> None:
        given_back.extend(d for d in deliveries if d.refund_attempt)
        record(deliveries)

    sender._record = counting  # type: ignore[method-assign]

    async def scenario() -> None:
        stop = threading.Event()
        running = asyncio.create_task(sender.run(stop))
        end = time.monotonic() + 15
        while len(channel.delivered) < 30 and time.monotonic() < end:
            await asyncio.sleep(0.05)
        stop.set()
        sender.wakeup.notify()
        await asyncio.wait_for(running, 10)

    asyncio.run(scenario())
    assert sorted(channel.delivered) == sorted(f"tin {i}" for i in range(30))
    assert given_back == []


def test_a_reply_waiting_for_a_connection_goes_before_broadcast_rows() -> None:
    from bot.sender import PriorityGate
    from storage.outbox import PRIORITY_BULK, PRIORITY_REPLY

    async def run() -> list[str]:
        gate = PriorityGate(1)
        order: list[str] = []
        await gate.acquire(PRIORITY_BULK)  # a broadcast row holds the only connection

        async def send(name: str, priority: int) -> None:
            await gate.acquire(priority)
            order.append(name)
            await asyncio.sleep(0)
            gate.release()

        waiting = [asyncio.create_task(send(f"bulk{i}", PRIORITY_BULK)) for i in range(3)]
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(send("gone", PRIORITY_REPLY))
        await asyncio.sleep(0)
        cancelled.cancel()  # a waiter that goes away does not keep a slot
        waiting.append(asyncio.create_task(send("reply", PRIORITY_REPLY)))
        await asyncio.sleep(0)
        gate.release()
        await asyncio.gather(*waiting)
        await gate.acquire(PRIORITY_BULK)  # every slot came back
        return order

    assert asyncio.run(run()) == ["reply", "bulk0", "bulk1", "bulk2"]
