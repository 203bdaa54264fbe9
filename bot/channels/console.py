"""Console chat: talk to the bot in a terminal as a test member, through the same outbox."""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from bot.dispatcher import Dispatcher, Incoming, IncomingPhoto
from storage import outbox
from storage.conversation import get_identity_id
from storage.db import Database
from storage.models import utcnow

CHANNEL = "console"
QUIT_WORDS = {"/quit", "/exit", "/thoat"}
_LEASE = timedelta(seconds=30)


class ConsoleChat:
    """Reads lines, dispatches them, then delivers this member's console rows by printing."""

    def __init__(self, dispatcher: Dispatcher, db: Database, user: str, out: TextIO,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.dispatcher = dispatcher
        self.db = db
        self.user = user
        self.out = out
        self.new_id = new_id
        self.buttons: list[dict[str, str]] = []

    def send_line(self, line: str) -> None:
        """One line typed by the person: a number presses a shown button, /photo sends a file."""
        line = line.rstrip("\n")
        incoming = Incoming(channel=CHANNEL, external_id=self.user, event_id=self.new_id(),
                            text=line, locale="vi")
        stripped = line.strip()
        if stripped.isdigit() and 1 <= int(stripped) <= len(self.buttons):
            button = self.buttons[int(stripped) - 1]
            incoming = Incoming(channel=CHANNEL, external_id=self.user, event_id=self.new_id(),
                                text=button["label"], payload=button["payload"], locale="vi")
        elif stripped.startswith("/photo"):
            paths = shlex.split(stripped)[1:]
            photos = []
            for path in paths:
                try:
                    photos.append(IncomingPhoto(Path(path).read_bytes()))
                except OSError as exc:
                    self.out.write(f"! {exc}\n")
            incoming = Incoming(channel=CHANNEL, external_id=self.user, event_id=self.new_id(),
                                photos=tuple(photos), locale="vi")
        self.dispatcher.dispatch(incoming)
        self.deliver()

    def deliver(self) -> int:
        """Print every queued reply for this member and mark it sent."""
        with self.db.transaction() as session:
            identity_id = get_identity_id(session, CHANNEL, self.user)
            if identity_id is None:
                return 0
            rows = outbox.claim_due(session, [CHANNEL], now=utcnow(), limit=100,
                                    lease=_LEASE, identity_id=identity_id)
            for row in rows:
                self._print(row.payload)
                outbox.mark_sent(session, row.id, now=utcnow(), platform_message_id=None)
        return len(rows)

    def _print(self, payload: dict[str, object]) -> None:
        self.out.write(f"\n🤖 {payload.get('text', '')}\n")
        buttons = payload.get("buttons") or []
        if isinstance(buttons, list) and buttons:
            self.buttons = [b for b in buttons if isinstance(b, dict)]
            for number, button in enumerate(self.buttons, start=1):
                self.out.write(f"   [{number}] {button['label']}\n")
        self.out.flush()

    def loop(self, stdin: TextIO) -> None:
        """Read until end of input or /quit."""
        self.out.write("> ")
        self.out.flush()
        for line in stdin:
            if line.strip().lower() in QUIT_WORDS:
                break
            self.send_line(line)
            self.out.write("> ")
            self.out.flush()

