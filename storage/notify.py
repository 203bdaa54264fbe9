"""LISTEN for outbox announcements, so a sender wakes when any process queues a message."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from storage.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


def listen_for_outbox(engine: Engine, stop: threading.Event, wake: Callable[[], None]) -> None:
    """Call `wake` on every NOTIFY until `stop` is set; reconnects if the connection drops."""
    import psycopg

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while not stop.is_set():
                    for _note in conn.notifies(timeout=1.0, stop_after=1):
                        wake()
        except psycopg.Error as exc:
            log.warning("LISTEN connection lost (%s); polling until it is back", exc)
            stop.wait(2.0)
