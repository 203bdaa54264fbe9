"""The per-message statements: one person's messages queue, retries leave nothing behind."""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.startup import SQLITE_SWITCH_INTERVAL, tune_process
from handlers.types import State
from storage import conversation, outbox, settings
from storage.db import Database
from storage.models import Identity, InboundEvent, Outbox, utcnow

PG = bool(os.environ.get("DUAN8_TEST_DATABASE_URL"))


def test_a_second_message_from_the_same_person_waits_and_reads_the_first_ones_state(
        db: Database) -> None:
    now = utcnow()
    seen: dict[str, conversation.Claimed | None] = {}

    def second_message() -> None:
        with db.transaction() as session:
            row = conversation.upsert_identity(session, "telegram", "42", "vi", now)
            seen["claimed"] = conversation.claim_for(session, "telegram", "2", row.id, now)

    with db.transaction() as session:
        row = conversation.upsert_identity(session, "telegram", "42", "vi", now)
        first = conversation.claim_for(session, "telegram", "1", row.id, now)
        assert first is not None and first.state == State()
        other = threading.Thread(target=second_message)
        other.start()
        time.sleep(0.5)
        assert other.is_alive(), "the second message must wait for the first one's transaction"
        conversation.save_state(session, row.id, State(flow="report", step="date",
                                                       draft={"participants": 30}), now)
    other.join(20)
    claimed = seen["claimed"]
    assert claimed is not None
    assert (claimed.state.flow, claimed.state.step) == ("report", "date")
    assert claimed.state.draft == {"participants": 30}


def test_a_retried_event_is_refused_and_links_the_first_one_to_its_person(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        row = conversation.upsert_identity(session, "zalo", "7", "vi", now)
        assert conversation.claim_for(session, "zalo", "m1", row.id, now) is not None
    with db.transaction() as session:
        row = conversation.upsert_identity(session, "zalo", "7", "vi", now)
        assert conversation.claim_for(session, "zalo", "m1", row.id, now) is None
    with db.transaction() as session:
        events = session.execute(select(InboundEvent.identity_id)).scalars().all()
        assert events == [row.id]
        assert session.scalar(select(func.count()).select_from(Identity)) == 1


def test_the_claim_says_when_messages_wait_for_the_person(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        row = conversation.upsert_identity(session, "facebook", "9", "vi", now)
        claimed = conversation.claim_for(session, "facebook", "a", row.id, now)
        assert claimed is not None and not claimed.held_back
        held = outbox.enqueue(session, row.id, "facebook", {"text": "x"}, now=now)
        session.get_one(Outbox, held).status = "outside_window"
    with db.transaction() as session:
        later = now + timedelta(minutes=1)
        row = conversation.upsert_identity(session, "facebook", "9", "vi", later)
        claimed = conversation.claim_for(session, "facebook", "b", row.id, later)
        assert claimed is not None and claimed.held_back


@pytest.mark.skipif(PG, reason="SQLite's single writer queue")
def test_sqlite_writers_queue_in_turn_and_none_is_lost(db: Database) -> None:
    with db.transaction() as session:
        settings.put(session, "counter", "0")

    def add(times: int) -> None:
        for _ in range(times):
            with db.transaction() as session:  # a read-modify-write: it needs the whole turn
                value = int(settings.get(session, "counter") or "0")
                settings.put(session, "counter", str(value + 1))

    workers = [threading.Thread(target=add, args=(40,)) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    with db.transaction() as session:
        assert settings.get(session, "counter") == "240"


@pytest.mark.skipif(PG, reason="SQLite's single writer queue")
def test_two_handles_on_one_sqlite_file_share_the_line(db: Database) -> None:
    other = Database(db.url)
    try:
        with db.transaction(), other.transaction() as inner:
            # The same thread already holds the turn, so the nested one goes in.
            settings.put(inner, "nested", "yes")
        with db.transaction() as session:
            assert settings.get(session, "nested") == "yes"
    finally:
        other.dispose()


def test_a_process_serving_sqlite_passes_the_gil_sooner(db: Database) -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        tune_process(db)
        expected = SQLITE_SWITCH_INTERVAL if not PG else 0.005
        assert abs(sys.getswitchinterval() - expected) < 1e-9
    finally:
        sys.setswitchinterval(before)
