"""The per-message statements: one person's messages queue, retries leave nothing behind."""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

import storage.db
from bot.startup import SQLITE_SWITCH_INTERVAL, tune_process
from handlers.types import State
from storage import conversation, outbox, settings
from storage.db import Database
from storage.hotsql import HotStatement
from storage.models import ConversationState, Identity, InboundEvent, Outbox, utcnow

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


def test_rows_written_on_the_driver_cursor_read_back_the_same_through_the_orm(
        db: Database) -> None:
    # A local time with microseconds: stored as the same instant, in the ORM's own shape.
    when = datetime(2026, 3, 8, 14, 30, 5, 123456, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    draft = {"note": "Truyền thông ở thôn Phước Hà", "participants": 30, "photos": [1, 2]}
    payload = {"text": "Cảm ơn chị đã báo cáo!", "buttons": [["Xong", "done"]]}
    with db.transaction() as session:
        row, claimed = conversation.enter(session, "telegram", "501", "u1", "vi", when)
        assert claimed is not None
        queued = conversation.save_and_queue(
            session, row.id, "telegram", State(flow="report", step="date", draft=draft),
            [(payload, outbox.PRIORITY_ACK), ({"text": "2"}, outbox.PRIORITY_REPLY)], when)
    with db.transaction() as session:
        state = session.get_one(ConversationState, row.id)
        assert (state.flow, state.step, state.draft) == ("report", "date", draft)
        assert state.updated_at == when and state.updated_at.utcoffset() == timedelta(0)
        first = session.get_one(Outbox, queued[0])
        assert (first.payload, first.priority, first.status) == (payload, -1, "pending")
        assert first.created_at == when == first.next_attempt_at
        assert session.get_one(Identity, row.id).last_inbound_at == when
        # An ORM query comparing instants finds what the driver cursor wrote.
        assert session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.next_attempt_at <= when)) == 2
    with db.transaction() as session:
        _row, claimed = conversation.enter(session, "telegram", "501", "u2", "vi", when)
    assert claimed is not None
    assert claimed.state == State(flow="report", step="date", draft=draft, updated_at=when)


def test_named_parameters_become_psycopg_ones_and_nothing_else_changes() -> None:
    statement = HotStatement("SELECT :a, x::int, '100%', :b_2 FROM t WHERE y = :a")
    assert statement.sqlite == "SELECT :a, x::int, '100%', :b_2 FROM t WHERE y = :a"
    assert statement.postgres == "SELECT %(a)s, x::int, '100%%', %(b_2)s FROM t WHERE y = %(a)s"


@pytest.mark.skipif(not PG, reason="a PostgreSQL server's connection")
def test_a_pooled_connection_the_server_dropped_while_idle_is_replaced(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.engine.connect() as conn:
        lost = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(db.url, poolclass=NullPool)
    with admin.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost}).scalar()
    admin.dispose()
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_SECONDS", 0.0)
    time.sleep(0.1)
    # The pool hands the dead connection out first (last in, first out is not promised, so
    # every pooled connection is asked for once).
    for _ in range(db.engine.pool.size() + 1):
        with db.transaction() as session:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
