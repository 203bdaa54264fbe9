"""A lean Bot API for throughput runs: the few methods a bulk send uses, at little CPU per call.

The test suite's fake (`tests/fakes/telegram_api.py`) is complete and steerable, and it serves
each connection on its own thread of a stdlib HTTP server: about 300 µs of CPU per sendMessage
on the benchmark machine. With the client on the same two cores, that is a third of what the
client under test could use; a real Bot API spends its CPU elsewhere. This server answers
`/bot{TOKEN}/sendMessage`, `answerCallbackQuery` and `getMe` the way the Bot API does (HTTP/1.1
keep-alive, JSON or form bodies, `{"ok": true, "result": Message}`, 400/401/404 errors in the
Bot API's shape), checks what a send must carry (chat_id, text of 1-4096 characters, a
reply_markup that is an object), counts what it accepted, and does nothing else: no recording,
no faults, no limits. It runs in its own process (`serve_in_process`), like the full fake's
unlimited mode.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import parse_qsl

TEXT_LIMIT = 4096
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            411: "Length Required"}


class LeanBotApi:
    """The state one server keeps: its token, its next message id, what it accepted."""

    def __init__(self, token: str) -> None:
        self.prefix = f"/bot{token}/"
        self.accepted = 0
        self.calls = 0
        self.message_ids = itertools.count(1)
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1

    def answer(self, target: str, content_type: str, body: bytes) -> tuple[int, Any]:
        """Status and JSON document for one request."""
        self.calls += 1
        path = target.split("?", 1)[0]
        if not path.startswith(self.prefix):
            return 401 if path.startswith("/bot") else 404, None
        method = path[len(self.prefix):]
        try:
            params = _params(content_type, body)
        except ValueError:
            return 400, "Bad Request: can't parse request body"
        if method == "sendMessage":
            return self._send_message(params)
        if method == "answerCallbackQuery":
            return (200, True) if params.get("callback_query_id") else (
                400, "Bad Request: query is too old and response timeout expired or query ID "
                     "is invalid")
        if method == "getMe":
            return 200, {"id": self.bot_id, "is_bot": True, "first_name": "duan8 bench",
                         "username": "duan8_bench_bot"}
        return 404, None

    def _send_message(self, params: dict[str, Any]) -> tuple[int, Any]:
        """A text message as Telegram answers it, echoing an inline keyboard."""
        chat_id, text = params.get("chat_id"), params.get("text")
        if chat_id in (None, ""):
            return 400, "Bad Request: chat_id is empty"
        if not isinstance(text, str) or not text.strip():
            return 400, "Bad Request: message text is empty"
        if len(text) > TEXT_LIMIT:
            return 400, "Bad Request: message is too long"
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            try:
                markup = json.loads(markup)
            except ValueError:
                return 400, "Bad Request: can't parse reply keyboard markup JSON object"
        if markup is not None and not isinstance(markup, dict):
            return 400, "Bad Request: can't parse reply keyboard markup JSON object"
        try:
            chat = int(chat_id)
        except (TypeError, ValueError):
            return 400, "Bad Request: chat not found"
        message: dict[str, Any] = {
            "message_id": next(self.message_ids), "date": int(time.time()),
            "chat": {"id": chat, "type": "private" if chat > 0 else "group"},
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "duan8 bench"},
            "text": text,
        }
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self.accepted += 1
        return 200, message


def _params(content_type: str, body: bytes) -> dict[str, Any]:
    """The request's parameters from a JSON or form body (the encodings a text send uses)."""
    if not body:
        return {}
    if content_type.split(";", 1)[0].strip().lower() == "application/json":
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("not an object")
        return decoded
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def _response(status: int, document: Any) -> bytes:
    """An HTTP/1.1 keep-alive answer in the Bot API's envelope."""
    if status == 200:
        envelope: dict[str, Any] = {"ok": True, "result": document}
    else:
        envelope = {"ok": False, "error_code": status,
                    "description": document or _REASONS.get(status, "Error")}
    payload = json.dumps(envelope, ensure_ascii=False).encode()
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: keep-alive\r\n\r\n")
    return head.encode("latin-1") + payload


class _Connection(asyncio.Protocol):
    """One client connection: requests parsed as they arrive, answered in order."""

    def __init__(self, api: LeanBotApi) -> None:
        self.api = api
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" not in headers and "transfer-encoding" in headers:
                self.transport.write(_response(411, None))  # clients here send a length
                self.transport.close()
                return
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            parts = lines[0].split(" ")
            target = parts[1] if len(parts) == 3 else ""
            status, document = self.api.answer(target, headers.get("content-type", ""), body)
            self.transport.write(_response(status, document))


def serve_in_process(conn: Connection, token: str) -> None:
    """Child process: serve on a free loopback port, steered over a pipe like the full fake."""

    async def main() -> None:
        api = LeanBotApi(token)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(api), "127.0.0.1", 0, backlog=512)
        port = server.sockets[0].getsockname()[1]
        conn.send(f"http://127.0.0.1:{port}")
        while await asyncio.to_thread(conn.poll, 900):  # a vanished parent stops the child
            command = conn.recv()
            if command == "stop":
                break
            if command == "clear":
                api.accepted = api.calls = 0
                conn.send(True)
            elif command == "stats":
                conn.send({"accepted": api.accepted, "calls": api.calls,
                           "too_many_requests": 0})
        server.close()

    asyncio.run(main())
