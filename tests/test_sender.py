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

from bot.channels.telegram_bot import TelegramSender, make_bot
from bot.config import load_config
from bot.sender import OutboxSender, SenderSettings
from storage import outbox
from storage.db import Database
from storage.models import Identity, Outbox, utcnow

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
    from bot.channels.telegram_bot import TelegramSender, make_bot
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
        time.sleep(2.2)  # the dead worker's leases run out
        asyncio.run(drain(config, db, SenderSettings(lease=timedelta(seconds=2))))
        assert statuses(db) == Counter({"sent": 60})
        delivered = Counter(fake.sent_texts())
        assert set(delivered) == {f"tin số {i}" for i in range(60)}
        # At most the rows that were in flight at the kill go out twice (at-least-once).
        assert sum(n - 1 for n in delivered.values()) <= SenderSettings().in_flight
