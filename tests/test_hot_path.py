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
            _row, seen["claimed"] = conversation.enter(session, "telegram", "42", "2", "vi", now)

    # A new person: on PostgreSQL the state row the second message reads is inserted after
    # that message's statement began, the case a snapshot read would miss.
    with db.transaction() as session:
        row, first = conversation.enter(session, "telegram", "42", "1", "vi", now)
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
        row, claimed = conversation.enter(session, "zalo", "7", "m1", "vi", now)
        assert claimed is not None
    with db.transaction() as session:
        row, claimed = conversation.enter(session, "zalo", "7", "m1", "vi", now)
        assert claimed is None
    with db.transaction() as session:
        events = session.execute(select(InboundEvent.identity_id)).scalars().all()
        assert events == [row.id]
        assert session.scalar(select(func.count()).select_from(Identity)) == 1


def test_the_claim_says_when_messages_wait_for_the_person(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        row, claimed = conversation.enter(session, "facebook", "9", "a", "vi", now)
        assert claimed is not None and not claimed.held_back
        held = outbox.enqueue(session, row.id, "facebook", {"text": "x"}, now=now)
        session.get_one(Outbox, held).status = "outside_window"
    with db.transaction() as session:
        later = now + timedelta(minutes=1)
        row, claimed = conversation.enter(session, "facebook", "9", "b", "vi", later)
        assert claimed is not None and claimed.held_back


def test_a_saved_state_comes_back_whole_and_a_retry_leaves_it_alone(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        row, claimed = conversation.enter(session, "telegram", "77", "e1", "vi", now)
        assert claimed is not None and claimed.state == State()
        conversation.save_state(session, row.id, State(flow="report", step="photos",
                                                       draft={"photos": [1, 2]}), now)
    with db.transaction() as session:  # the same event again: nothing read, nothing written
        assert conversation.enter(session, "telegram", "77", "e1", "vi", now)[1] is None
    later = now + timedelta(seconds=5)
    with db.transaction() as session:
        row, claimed = conversation.enter(session, "telegram", "77", "e2", "vi", later)
    assert claimed is not None
    assert claimed.state == State(flow="report", step="photos", draft={"photos": [1, 2]},
                                  updated_at=now)


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
