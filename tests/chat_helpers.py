"""A test member talking to the web chat API, with the worker delivering in between."""

from __future__ import annotations

import asyncio
import io
import struct
import uuid
import zlib
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bot.app import config_of, db_of
from bot.worker import Worker
from messages_vi import short_labels


def png_bytes(size: int = 0, seed: int = 0) -> bytes:
    """A real PNG picture, padded with an ancillary chunk to reach about `size` bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes([0, seed % 256, 0, 0]))
    pad = chunk(b"teXt", b"x" * max(0, size - 70)) if size else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + pad + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


class WebChatUser:
    """Drives /chat/api like the page does and keeps the conversation as seen by the member."""

    def __init__(self, app: Flask, client: FlaskClient | None = None, *,
                 lang: str | None = None) -> None:
        self.app = app
        self.query = f"?lang={lang}" if lang else ""  # the page's ?lang=, sent with each post
        self.client = client or app.test_client()
        self.after = 0
        self.seen: list[dict[str, Any]] = []
        self.worker = Worker(config_of(app), db_of(app))

    def _deliver_and_read(self) -> list[dict[str, Any]]:
        asyncio.run(self.worker.deliver_once())
        response = self.client.get(f"/chat/api/messages?after={self.after}")
        assert response.status_code == 200, response.data
        data = response.get_json()
        messages = data["messages"]
        if messages:
            self.after = messages[-1]["id"]
        self.seen.extend(messages)
        return messages

    def send(self, text: str, *, event_id: str | None = None, **extra: Any) -> list[dict[str, Any]]:
        """Type a message; returns the bot's answers to it."""
        body = {"id": event_id or uuid.uuid4().hex, "text": text, **extra}
        response = self.client.post(f"/chat/api/messages{self.query}", json=body)
        assert response.status_code == 202, response.data
        return self._deliver_and_read()

    def press(self, label: str) -> list[dict[str, Any]]:
        """Press the button with this label on the latest message that shows one."""
        shown = short_labels([label])[0]  # a long label reaches the member shortened
        for message in reversed(self.seen):
            for button in message.get("buttons", []):
                if button["label"] in (label, shown):
                    return self.send(button["label"], payload=button["payload"])
        raise AssertionError(f"no button {label!r} in {self.buttons()}")

    def photos(self, *images: bytes) -> list[dict[str, Any]]:
        """Send photos together, as one upload."""
        data = {"id": uuid.uuid4().hex,
                "photo": [(io.BytesIO(img), f"p{i}.png") for i, img in enumerate(images)]}
        response = self.client.post(f"/chat/api/photos{self.query}", data=data,
                                    content_type="multipart/form-data")
        assert response.status_code == 202, response.data
        return self._deliver_and_read()

    def buttons(self) -> list[str]:
        """Labels of the buttons on the latest message that has any."""
        for message in reversed(self.seen):
            if message.get("buttons"):
                return [b["label"] for b in message["buttons"]]
        return []

    def last_text(self) -> str:
        return self.seen[-1]["text"] if self.seen else ""

    def text_of(self, messages: list[dict[str, Any]]) -> str:
        return "\n".join(m["text"] for m in messages)

    def max_photo(self) -> int:
        return config_of(self.app).max_photo_bytes
