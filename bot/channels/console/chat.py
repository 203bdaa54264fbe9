"""Console chat: talk to the bot in a terminal as a test member, through the same outbox."""

from __future__ import annotations

import asyncio
import shlex
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.channels.base import SendResult
from bot.channels.port import Database, OutboundMessage
from bot.dispatcher import Dispatcher, Incoming, IncomingPhoto
from bot.ratelimit import UNLIMITED
from bot.sender import OutboxSender

CHANNEL = "console"
QUIT_WORDS = {"/quit", "/exit", "/thoat"}


class ConsoleSender:
    """The console's delivery, driven by the shared sender: a reply is printed to the terminal.

    One terminal speaks as one member; a row for another console member (a second terminal
    on the same database) is left for that terminal's sender to print.
    """

    name = CHANNEL
    limits = UNLIMITED

    def __init__(self, user: str, show: Callable[[dict[str, Any]], None]) -> None:
        self.user = user
        self.show = show

    def is_group(self, external_id: str) -> bool:
        return False

    def is_paced(self, payload: dict[str, Any]) -> bool:
        return False

    def may_send(self, message: OutboundMessage, now: datetime) -> bool:
        return True  # no messaging window in a terminal

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.external_id != self.user:
            return SendResult(ok=False, error="for another console member", retry_after=0.5)
        self.show(message.payload)
        return SendResult(ok=True)


class ConsoleChat:
    """Reads lines, dispatches them, then lets the shared sender deliver by printing."""

    def __init__(self, dispatcher: Dispatcher, db: Database, user: str, out: TextIO,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.dispatcher = dispatcher
        self.db = db
        self.user = user
        self.out = out
        self.new_id = new_id
        self.buttons: list[dict[str, str]] = []
        self.sender = OutboxSender(db, [ConsoleSender(user, self._print)],
                                   wakeup=dispatcher.wakeup)

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
        """Print every reply queued for this member; returns the rows the sender handled."""
        async def drain() -> int:
            handled = 0
            while (count := await self.sender.deliver_once()) > 0:
                handled += count
            return handled
        return asyncio.run(drain())

    def _print(self, payload: dict[str, Any]) -> None:
        self.out.write(f"\n🤖 {payload.get('text', '')}\n")
        buttons = payload.get("buttons") or []
        if isinstance(buttons, list) and buttons:
            self.buttons = [b for b in buttons if isinstance(b, dict)]
            for number, button in enumerate(self.buttons, start=1):
                self.out.write(f"   [{number}] {button.get('full') or button['label']}\n")
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

