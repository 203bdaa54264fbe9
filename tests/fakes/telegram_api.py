"""A fake Telegram Bot API server on real HTTP, so the Telegram channel is tested end to end.

The server speaks the same wire format as https://api.telegram.org: ``/bot{TOKEN}/{method}``
with JSON, form-encoded or multipart bodies, answers ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ...}``, and serves downloads from
``/file/bot{TOKEN}/{file_path}``. Tests steer it (queued updates, injected faults, blocked chats,
Telegram-like rate limits) and inspect what the bot sent. It answers only the methods duan8
and its tests call; any other is "Not Found", as Telegram answers an unknown method.

Typical use::

    with FakeTelegram() as tg:
        bot = telegram.Bot(tg.token, base_url=f"{tg.url}/bot", base_file_url=f"{tg.url}/file/bot")
        ...
        assert tg.sent_texts() == ["xin chào"]
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

ChatId = int | str
JSONDict = dict[str, Any]
FaultKind = Literal["429", "500", "403_blocked", "400_chat_not_found", "slow", "drop"]

DEFAULT_TOKEN: Final = "123456789:AAFake-Duan8-Test-Token_abcdefghijk"
LONG_POLL_CAP: Final = 2.0
FAULT_KINDS: Final = frozenset({"429", "500", "403_blocked", "400_chat_not_found", "slow", "drop"})
SEND_METHODS: Final = frozenset({
    "sendMessage", "sendPhoto", "sendDocument", "sendVideo", "sendAudio", "sendVoice",
    "sendAnimation", "sendSticker", "sendMediaGroup", "sendLocation", "sendVenue",
    "sendContact", "sendPoll", "sendDice", "copyMessage", "forwardMessage",
})
CHAT_METHODS: Final = SEND_METHODS | {
    "sendChatAction", "editMessageText", "editMessageCaption", "editMessageReplyMarkup",
    "deleteMessage",
}
TEXT_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024

# Form and multipart values arrive as strings; Telegram decodes them per parameter, and so do we.
INT_PARAMS: Final = frozenset({
    "chat_id", "from_chat_id", "message_id", "reply_to_message_id", "message_thread_id",
    "offset", "limit", "timeout", "cache_time", "max_connections", "user_id", "until_date",
    "width", "height", "duration",
})
BOOL_PARAMS: Final = frozenset({
    "disable_notification", "protect_content", "show_alert", "drop_pending_updates",
    "disable_web_page_preview", "has_spoiler", "allow_sending_without_reply",
    "allow_paid_broadcast", "show_caption_above_media", "disable_content_type_detection",
    "supports_streaming", "is_anonymous", "revoke_messages",
})
JSON_PARAMS: Final = frozenset({
    "reply_markup", "entities", "caption_entities", "allowed_updates", "reply_parameters",
    "link_preview_options", "media", "commands", "scope", "options",
})

_FILE_PREFIX: Final = "/file/bot"
_BOT_PREFIX: Final = "/bot"


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file part of a multipart request, kept so tests can check what the bot uploaded."""

    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Call:
    """One authorised API request, recorded so tests can assert on what the bot asked for."""

    method: str
    params: JSONDict
    time: float
    status: int = 0  # HTTP status answered; 0 while pending or when the connection was dropped


@dataclass(frozen=True, slots=True)
class _Fault:
    """A failure queued by fail_next, applied to the next call of one method."""

    kind: str
    retry_after: int = 1
    delay: float = 1.0


@dataclass(frozen=True, slots=True)
class _StoredFile:
    """Bytes behind a file_id, so getFile and downloads answer like Telegram's storage."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes


@dataclass(slots=True)
class _Window:
    """A sliding window of accepted send times, the unit Telegram's flood limits are stated in."""

    capacity: int
    seconds: float
    times: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        """Seconds until one more send fits, so an over-limit send gets a truthful retry_after."""
        times = self.times
        horizon = now - self.seconds
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) < self.capacity:
            return 0.0
        return times[len(times) - self.capacity] + self.seconds - now


@dataclass(frozen=True, slots=True)
class _Limits:
    """The configured flood limits; None switches one limit off."""

    global_per_second: float | None
    per_chat_per_second: float | None
    per_group_per_minute: float | None


class ApiError(Exception):
    """A Bot API error answer, raised by method handlers to reply ok=false like Telegram."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        """The JSON body Telegram sends for this error."""
        answer: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            answer["parameters"] = self.parameters
        return answer


class _Drop(Exception):
    """Signals the handler to close the connection without answering, like a network failure."""


def _window_for(rate: float, unit_seconds: float) -> tuple[int, float]:
    """Turn "rate per unit" into (capacity, window seconds) so fractional rates still work."""
    if rate <= 0:
        raise ValueError("a rate limit must be positive (use None to switch it off)")
    capacity = max(1, math.floor(rate))
    return capacity, unit_seconds * capacity / rate


def _header_param(value: str, key: str) -> str | None:
    """Read one ``key=value`` parameter of a header such as Content-Disposition or Content-Type."""
    match = re.search(rf'(?:^|;)\s*{key}=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', value, re.IGNORECASE)
    if match is None:
        return None
    quoted, bare = match.groups()
    return unquote(quoted.replace('\\"', '"')) if quoted is not None else bare.strip()


def _coerce(name: str, value: str) -> Any:
    """Decode one string-valued parameter by its name, as the Bot API does for form bodies."""
    if name in JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    if name in INT_PARAMS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in BOOL_PARAMS:
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0", ""):
            return False
    return value


def _parse_multipart(body: bytes, content_type: str) -> JSONDict:
    """Split a multipart/form-data body into fields and UploadedFile parts."""
    boundary = _header_param(content_type, "boundary")
    if not boundary:
        raise ApiError(400, "Bad Request: multipart boundary is missing")
    params: JSONDict = {}
    for raw_part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if raw_part.startswith(b"--"):
            break
        part = raw_part[2:] if raw_part.startswith(b"\r\n") else raw_part
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, val = line.partition(":")
            headers[key.strip().lower()] = val.strip()
        disposition = headers.get("content-disposition", "")
        name = _header_param(disposition, "name")
        if name is None:
            continue
        filename = _header_param(disposition, "filename")
        if filename is not None:
            ctype = headers.get("content-type", "application/octet-stream")
            params[name] = UploadedFile(filename, ctype, content)
        else:
            params[name] = _coerce(name, content.decode("utf-8"))
    return params


def _parse_query(query: str) -> JSONDict:
    """Decode a query string or form body, last value winning like most HTTP servers."""
    return {
        name: _coerce(name, values[-1])
        for name, values in parse_qs(query, keep_blank_values=True).items()
    }


def _is_group(chat_id: ChatId) -> bool:
    """Tell group-like chats (negative ids, @channel names) apart, as their limits differ."""
    return isinstance(chat_id, str) or chat_id < 0


def _number_param(params: JSONDict, name: str, default: float) -> float:
    """Read a numeric parameter leniently, so odd client encodings don't crash the fake."""
    value = params.get(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: wrong parameter {name}") from None


class _Handler(BaseHTTPRequestHandler):
    """Routes each HTTP request to the owning FakeTelegram; keep-alive and no logging."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        """Remember the socket so close() can cut idle keep-alive connections."""
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        """Forget the socket once the connection ends."""
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def do_GET(self) -> None:
        """Serve API calls and file downloads sent with GET."""
        self.server.fake._serve(self)

    def do_POST(self) -> None:
        """Serve API calls sent with POST."""
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: per-request logging would slow benchmarks and clutter test output."""

    def read_body(self) -> bytes:
        """Read the request body by Content-Length or chunked encoding."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """Write status, headers and body in one send, always with Content-Length."""
        phrase = HTTPStatus(status).phrase
        connection = "Connection: close\r\n" if self.close_connection else ""
        head = (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{connection}\r\n"
        )
        self.wfile.write(head.encode("latin-1") + body)


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that knows its FakeTelegram; threads never block interpreter exit."""

    daemon_threads = True
    request_queue_size = 1024
    fake: FakeTelegram


class FakeTelegram:
    """A real HTTP server imitating the Telegram Bot API, steerable and inspectable from tests."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        bot_username: str = "duan8_test_bot",
        bot_first_name: str = "Duan8 Test Bot",
        long_poll_cap: float = LONG_POLL_CAP,
    ) -> None:
        """Start serving at once on an ephemeral port, so a fixture only needs to construct it."""
        self.token = token
        self.long_poll_cap = long_poll_cap
        prefix = token.partition(":")[0]
        self.bot_user: JSONDict = {
            "id": int(prefix) if prefix.isdigit() else 123456789,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._lock = threading.RLock()
        self._updates_cv = threading.Condition(self._lock)
        self._calls_cv = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._accepted: list[tuple[float, ChatId]] = []
        self._too_many_requests = 0
        self._faults: dict[str, deque[_Fault]] = {}
        self._blocked: set[ChatId] = set()
        self._limits: _Limits | None = None
        self._global_window: _Window | None = None
        self._chat_windows: dict[ChatId, _Window] = {}
        self._group_windows: dict[ChatId, _Window] = {}
        self._updates: list[JSONDict] = []
        self._last_update_id = 0
        self._files: dict[str, _StoredFile] = {}
        self._paths: dict[str, _StoredFile] = {}
        self._file_counter = 0
        self._message_id = 0
        self._webhook: JSONDict = {}
        self._connections: set[socket.socket] = set()
        self._closed = False
        self._methods: dict[str, Callable[[JSONDict], Any]] = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendVideo": self._send_video,
            "answerCallbackQuery": self._true_with("callback_query_id"),
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getUpdates": self._get_updates,
            "getFile": self._get_file,
        }
        self._canonical = {name.lower(): name for name in self._methods}

        self._server = _Server((host, 0), _Handler)
        self._server.fake = self
        bound_host, port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeTelegram:{port}",
            daemon=True,
        )
        self._thread.start()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeTelegram:
        """Use as ``with FakeTelegram() as tg:`` so the server always gets closed."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close on leaving the block, even when the test failed."""
        self.close()

    def close(self) -> None:
        """Stop serving, wake long polls and cut open connections, so no thread lingers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._updates_cv.notify_all()
            self._calls_cv.notify_all()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every authorised call so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method, to assert on a single kind of request."""
        with self._lock:
            return [call for call in self._calls if call.method == method]

    def sent_texts(self, chat_id: ChatId | None = None) -> list[str]:
        """Texts of sendMessage calls Telegram accepted (status 200), optionally for one chat."""
        with self._lock:
            return [
                str(call.params.get("text", ""))
                for call in self._calls
                if call.method == "sendMessage"
                and call.status == 200
                and (chat_id is None or call.params.get("chat_id") == chat_id)
            ]

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until ``count`` calls of ``method`` were answered, for bots running in a thread."""
        deadline = time.monotonic() + timeout
        with self._calls_cv:
            while True:
                done = [c for c in self._calls if c.method == method and c.status]
                if len(done) >= count:
                    return done
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise TimeoutError(f"{len(done)} of {count} {method} calls after {timeout}s")
                self._calls_cv.wait(remaining)

    def clear(self) -> None:
        """Forget recorded calls, accepted sends and the 429 count; configuration stays."""
        with self._lock:
            self._calls.clear()
            self._accepted.clear()
            self._too_many_requests = 0
            self._reset_windows()

    @property
    def too_many_requests(self) -> int:
        """How many sends the rate limiter refused with 429 (injected 429s are not counted)."""
        with self._lock:
            return self._too_many_requests

    def accepted_sends(self) -> list[tuple[float, ChatId]]:
        """(monotonic time, chat_id) of every send that was answered ok, oldest first."""
        with self._lock:
            return list(self._accepted)

    def achieved_rate(self, chat_id: ChatId | None = None, since: float | None = None) -> float:
        """Accepted sends per second between the first and last one, to measure throughput."""
        times = self._accepted_times(chat_id, since)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def peak_rate(self, window: float = 1.0, chat_id: ChatId | None = None) -> float:
        """The most accepted sends in any sliding ``window`` seconds, divided by the window."""
        times = self._accepted_times(chat_id, None)
        best = start = 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best / window

    @property
    def webhook_url(self) -> str:
        """The URL given to setWebhook, or "" when none is set."""
        with self._lock:
            return str(self._webhook.get("url", ""))

    @property
    def webhook_secret(self) -> str | None:
        """The secret_token given to setWebhook, checked by the bot's webhook endpoint."""
        with self._lock:
            return self._webhook.get("secret_token")

    def pending_updates(self) -> list[JSONDict]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        with self._lock:
            return [dict(update) for update in self._updates]

    # ------------------------------------------------------------------ controls

    def queue_update(self, update: JSONDict) -> int:
        """Queue an update for getUpdates; a missing update_id gets the next one. Returns it."""
        stored = json.loads(json.dumps(update))
        with self._lock:
            if "update_id" not in stored:
                stored["update_id"] = self._last_update_id + 1
            update_id = int(stored["update_id"])
            self._last_update_id = max(self._last_update_id, update_id)
            self._updates.append(stored)
            self._updates.sort(key=lambda u: int(u["update_id"]))
            self._updates_cv.notify_all()
        return update_id

    def add_file(
        self,
        file_id: str,
        data: bytes,
        file_path: str = "photos/file_1.jpg",
        *,
        file_unique_id: str | None = None,
    ) -> None:
        """Register bytes behind a file_id, so getFile and the download URL can serve them."""
        stored = _StoredFile(file_id, file_unique_id or f"U{file_id[-16:]}", file_path, data)
        with self._lock:
            self._files[file_id] = stored
            self._paths[file_path] = stored

    def fail_next(self, method: str, kind: FaultKind, count: int = 1, **kw: Any) -> None:
        """Make the next ``count`` calls of ``method`` ("*" = any) fail, to test error paths."""
        # Options: retry_after (int seconds, for "429"), delay (seconds, for "slow").
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        unknown = set(kw) - {"retry_after", "delay"}
        if unknown:
            raise TypeError(f"unknown fail_next options: {sorted(unknown)}")
        fault = _Fault(kind, int(kw.get("retry_after", 1)), float(kw.get("delay", 1.0)))
        name = method if method == "*" else self._canonical.get(method.lower(), method)
        with self._lock:
            self._faults.setdefault(name, deque()).extend([fault] * count)

    def block_chat(self, chat_id: ChatId) -> None:
        """Answer every send to this chat with 403, as when the user blocked the bot."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: ChatId) -> None:
        """Let sends to this chat through again, as when the user restarted the bot."""
        with self._lock:
            self._blocked.discard(chat_id)

    def rate_limit(
        self,
        global_per_second: float | None = 30,
        per_chat_per_second: float | None = 1.0,
        per_group_per_minute: float | None = 20,
    ) -> None:
        """Enforce Telegram's published flood limits on sends; None switches one limit off."""
        for rate in (global_per_second, per_chat_per_second, per_group_per_minute):
            if rate is not None:
                _window_for(rate, 1.0)
        with self._lock:
            self._limits = _Limits(global_per_second, per_chat_per_second, per_group_per_minute)
            self._reset_windows()

    def unlimited(self) -> None:
        """Switch rate limiting off again (the default)."""
        with self._lock:
            self._limits = None
            self._reset_windows()

    # ------------------------------------------------------------------ internals: HTTP

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        """Keep the set of open connections current for close()."""
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _serve(self, handler: _Handler) -> None:
        """Answer one HTTP request: authorise, parse, record, apply faults, dispatch."""
        arrived = time.monotonic()
        path = urlsplit(handler.path)
        if path.path.startswith(_FILE_PREFIX):
            handler.read_body()
            self._serve_file(handler, path.path[len(_FILE_PREFIX):])
            return
        if not path.path.startswith(_BOT_PREFIX):
            handler.read_body()
            self._reply_error(handler, ApiError(404, "Not Found"))
            return
        token, _, method = path.path[len(_BOT_PREFIX):].partition("/")
        body = handler.read_body()
        if unquote(token) != self.token:
            self._reply_error(handler, ApiError(401, "Unauthorized"))
            return
        name = self._canonical.get(method.lower())
        if name is None:
            self._reply_error(handler, ApiError(404, "Not Found: method not found"))
            return
        try:
            params = self._parse_params(handler, path.query, body)
        except ApiError as err:
            self._reply_error(handler, err)
            return
        call = Call(name, params, arrived)
        with self._lock:
            self._calls.append(call)
            fault = self._pop_fault(name)
        try:
            result = self._execute(call, fault)
        except _Drop:
            handler.close_connection = True
            self._finish(call, 0)
            return
        except ApiError as err:
            self._finish(call, err.status)
            self._reply_error(handler, err)
            return
        except Exception as err:  # a bug in the fake must surface as an answer, not a hang
            failure = ApiError(500, f"Internal Server Error: fake failed: {err!r}")
            self._finish(call, 500)
            self._reply_error(handler, failure)
            return
        payload = json.dumps({"ok": True, "result": result}, ensure_ascii=False).encode()
        self._finish(call, 200)
        handler.answer(200, payload)

    def _parse_params(self, handler: _Handler, query: str, body: bytes) -> JSONDict:
        """Merge query-string and body parameters, whatever encoding the client chose."""
        params = _parse_query(query) if query else {}
        if not body:
            return params
        content_type = handler.headers.get("Content-Type", "")
        media_type = content_type.split(";")[0].strip().lower()
        if media_type == "application/json":
            try:
                decoded = json.loads(body)
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON object") from None
            if not isinstance(decoded, dict):
                raise ApiError(400, "Bad Request: JSON body must be an object")
            for name, value in decoded.items():  # Telegram takes "123" for an integer, too
                params[name] = _coerce(name, value) if isinstance(value, str) else value
        elif media_type == "multipart/form-data":
            params.update(_parse_multipart(body, content_type))
        else:
            params.update(_parse_query(body.decode("utf-8")))
        return params

    def _finish(self, call: Call, status: int) -> None:
        """Mark a call answered and wake wait_for_calls."""
        with self._calls_cv:
            call.status = status
            self._calls_cv.notify_all()

    def _reply_error(self, handler: _Handler, err: ApiError) -> None:
        """Send a Bot API style error body with its HTTP status."""
        handler.answer(err.status, json.dumps(err.body(), ensure_ascii=False).encode())

    def _serve_file(self, handler: _Handler, rest: str) -> None:
        """Serve ``/file/bot{TOKEN}/{file_path}`` from the registered files."""
        token, _, file_path = rest.partition("/")
        if unquote(token) != self.token:
            self._reply_error(handler, ApiError(401, "Unauthorized"))
            return
        with self._lock:
            stored = self._paths.get(unquote(file_path))
        if stored is None:
            self._reply_error(handler, ApiError(404, "Not Found"))
            return
        handler.answer(200, stored.data, "application/octet-stream")

    # ------------------------------------------------------------------ internals: faults, limits

    def _pop_fault(self, method: str) -> _Fault | None:
        """Take the next queued fault for this method (or for any method); lock held."""
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                return queue.popleft()
        return None

    def _execute(self, call: Call, fault: _Fault | None) -> Any:
        """Apply an injected fault, then block and rate checks, then the method itself."""
        if fault is not None:
            self._apply_fault(fault)
        handler = self._methods[call.method]
        if call.method not in CHAT_METHODS:
            return handler(call.params)
        chat_id = call.params.get("chat_id")
        with self._lock:
            if chat_id in self._blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if call.method not in SEND_METHODS:
                return handler(call.params)
            if chat_id is None or chat_id == "":
                raise ApiError(400, "Bad Request: chat_id is empty")
            now = time.monotonic()
            retry_after = self._limit_wait(chat_id, now)
            if retry_after:
                self._too_many_requests += 1
                raise ApiError(
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after},
                )
            result = handler(call.params)
            self._accept(chat_id, now)
            return result

    def _apply_fault(self, fault: _Fault) -> None:
        """Raise (or sleep for) one injected fault."""
        kind = fault.kind
        if kind == "slow":
            time.sleep(fault.delay)
        elif kind == "drop":
            raise _Drop
        elif kind == "429":
            raise ApiError(
                429,
                f"Too Many Requests: retry after {fault.retry_after}",
                {"retry_after": fault.retry_after},
            )
        elif kind == "500":
            raise ApiError(500, "Internal Server Error")
        elif kind == "403_blocked":
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        elif kind == "400_chat_not_found":
            raise ApiError(400, "Bad Request: chat not found")

    def _reset_windows(self) -> None:
        """Rebuild the limiter windows from the accepted sends still inside them; lock held."""
        self._global_window = None
        self._chat_windows = {}
        self._group_windows = {}
        limits = self._limits
        if limits is None:
            return
        if limits.global_per_second is not None:
            self._global_window = _Window(*_window_for(limits.global_per_second, 1.0))
        now = time.monotonic()
        for moment, chat_id in self._accepted:
            if now - moment < 60.0:
                self._record_in_windows(chat_id, moment)

    def _chat_window(self, chat_id: ChatId) -> _Window | None:
        """The per-chat window, created on first use; lock held."""
        limits = self._limits
        if limits is None or limits.per_chat_per_second is None:
            return None
        window = self._chat_windows.get(chat_id)
        if window is None:
            window = _Window(*_window_for(limits.per_chat_per_second, 1.0))
            self._chat_windows[chat_id] = window
        return window

    def _group_window(self, chat_id: ChatId) -> _Window | None:
        """The per-group per-minute window, for group chats only; lock held."""
        limits = self._limits
        if limits is None or limits.per_group_per_minute is None or not _is_group(chat_id):
            return None
        window = self._group_windows.get(chat_id)
        if window is None:
            window = _Window(*_window_for(limits.per_group_per_minute, 60.0))
            self._group_windows[chat_id] = window
        return window

    def _windows(self, chat_id: ChatId) -> list[_Window]:
        """Every window a send to this chat counts against; lock held."""
        candidates = (self._global_window, self._chat_window(chat_id), self._group_window(chat_id))
        return [window for window in candidates if window is not None]

    def _limit_wait(self, chat_id: ChatId, now: float) -> int:
        """0 if a send may go now, else the whole seconds to wait (≥ 1); lock held."""
        if self._limits is None:
            return 0
        wait = max((window.wait(now) for window in self._windows(chat_id)), default=0.0)
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def _record_in_windows(self, chat_id: ChatId, moment: float) -> None:
        """Count one accepted send in the limiter windows; lock held."""
        if self._limits is not None:
            for window in self._windows(chat_id):
                window.times.append(moment)

    def _accept(self, chat_id: ChatId, moment: float) -> None:
        """Record an accepted send for measurement and for the limiter; lock held."""
        self._accepted.append((moment, chat_id))
        self._record_in_windows(chat_id, moment)

    def _accepted_times(self, chat_id: ChatId | None, since: float | None) -> list[float]:
        """Monotonic times of accepted sends, filtered by chat and start time."""
        with self._lock:
            return [
                moment
                for moment, chat in self._accepted
                if (chat_id is None or chat == chat_id) and (since is None or moment >= since)
            ]

    # ------------------------------------------------------------------ internals: objects

    def _chat(self, chat_id: ChatId) -> JSONDict:
        """A plausible Chat object for an id: private, group, supergroup or channel."""
        if isinstance(chat_id, str):
            return {"id": -1001000000000, "title": chat_id.lstrip("@"), "type": "channel",
                    "username": chat_id.lstrip("@")}
        if chat_id > 0:
            return {"id": chat_id, "first_name": "Người dùng", "type": "private"}
        if str(chat_id).startswith("-100"):
            return {"id": chat_id, "title": "Nhóm thử nghiệm", "type": "supergroup"}
        return {"id": chat_id, "title": "Nhóm thử nghiệm", "type": "group",
                "all_members_are_administrators": True}

    def _message(self, chat_id: ChatId, params: JSONDict, **content: Any) -> JSONDict:
        """A Message the bot just sent, with the next message_id."""
        with self._lock:
            self._message_id += 1
            message_id = self._message_id
        message: JSONDict = {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
        message.update(content)
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards only
        return message

    def _new_file(self, data: bytes, folder: str, suffix: str) -> _StoredFile:
        """Store an uploaded file under fresh ids, as Telegram does on upload."""
        with self._lock:
            self._file_counter += 1
            number = self._file_counter
        file_id = f"AgACAgUAAxkDAAIF{number:08d}FakeFileId"
        stored = _StoredFile(file_id, f"AQADF{number:06d}", f"{folder}/file_{number}{suffix}", data)
        with self._lock:
            self._files[file_id] = stored
            self._paths[stored.file_path] = stored
        return stored

    def _resolve_media(self, value: Any, params: JSONDict, folder: str, suffix: str) -> _StoredFile:
        """Turn an uploaded part, attach:// reference, known file_id or URL into a stored file."""
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://"):])
        if isinstance(value, UploadedFile):
            return self._new_file(value.data, folder, suffix)
        if isinstance(value, str) and value:
            with self._lock:
                known = self._files.get(value)
            if known is not None:
                return known
            if value.startswith(("http://", "https://")):
                return self._new_file(b"", folder, suffix)
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    @staticmethod
    def _photo_sizes(stored: _StoredFile) -> list[JSONDict]:
        """PhotoSize variants Telegram generates for an uploaded photo, largest last."""
        size = len(stored.data)
        return [
            {"file_id": f"{stored.file_id}_s", "file_unique_id": f"{stored.file_unique_id}s",
             "file_size": max(1, size // 10), "width": 90, "height": 90},
            {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
             "file_size": size, "width": 800, "height": 800},
        ]

    @staticmethod
    def _caption(params: JSONDict) -> JSONDict:
        """Caption fields to echo, rejecting captions Telegram would reject."""
        caption = params.get("caption")
        if not caption:
            return {}
        if len(str(caption)) > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        content: JSONDict = {"caption": str(caption)}
        if params.get("caption_entities"):
            content["caption_entities"] = params["caption_entities"]
        return content

    # ------------------------------------------------------------------ internals: methods

    @staticmethod
    def _true_with(*required: str) -> Callable[[JSONDict], bool]:
        """A handler answering true once the required parameters are present."""

        def handle(params: JSONDict) -> bool:
            """Check required parameters, then succeed."""
            for name in required:
                if params.get(name) in (None, ""):
                    raise ApiError(400, f"Bad Request: {name} is empty")
            return True

        return handle

    def _get_me(self, params: JSONDict) -> JSONDict:
        """The bot's own User."""
        return self.bot_user

    def _send_message(self, params: JSONDict) -> JSONDict:
        """Echo a text message as sent."""
        text = params.get("text")
        if text is None or str(text).strip() == "":
            raise ApiError(400, "Bad Request: message text is empty")
        if len(str(text)) > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        content: JSONDict = {"text": str(text)}
        if params.get("entities"):
            content["entities"] = params["entities"]
        return self._message(params["chat_id"], params, **content)

    def _send_photo(self, params: JSONDict) -> JSONDict:
        """Store the photo and answer with its PhotoSize list."""
        stored = self._resolve_media(params.get("photo"), params, "photos", ".jpg")
        photo = self._photo_sizes(stored)
        return self._message(params["chat_id"], params, photo=photo, **self._caption(params))

    def _send_document(self, params: JSONDict) -> JSONDict:
        """Store a general file and answer with its Document, as sendDocument does."""
        value = params.get("document")
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://"):])
        stored = self._resolve_media(value, params, "documents", "")
        document: JSONDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                              "file_size": len(stored.data)}
        if isinstance(value, UploadedFile):
            document.update(file_name=value.filename, mime_type=value.content_type)
        return self._message(params["chat_id"], params, document=document,
                             **self._caption(params))

    def _send_video(self, params: JSONDict) -> JSONDict:
        """Store a video and answer with its Video, as sendVideo does."""
        stored = self._resolve_media(params.get("video"), params, "videos", ".mp4")
        video: JSONDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                           "width": 640, "height": 360, "duration": 10,
                           "mime_type": "video/mp4", "file_size": len(stored.data)}
        return self._message(params["chat_id"], params, video=video, **self._caption(params))

    def _set_webhook(self, params: JSONDict) -> bool:
        """Store the webhook (an empty url removes it, as Telegram documents)."""
        url = str(params.get("url", ""))
        with self._lock:
            if params.get("drop_pending_updates"):
                self._updates.clear()
            if not url:
                self._webhook = {}
                return True
            self._webhook = {"url": url}
            for name in ("secret_token", "max_connections", "allowed_updates", "ip_address"):
                if params.get(name) not in (None, ""):
                    self._webhook[name] = params[name]
            self._updates_cv.notify_all()
        return True

    def _delete_webhook(self, params: JSONDict) -> bool:
        """Forget the webhook, optionally dropping pending updates."""
        with self._lock:
            self._webhook = {}
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return True

    def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        """Long-poll the queue: confirm updates below offset, then return up to limit."""
        offset = int(_number_param(params, "offset", 0))
        limit = min(100, max(1, int(_number_param(params, "limit", 100))))
        timeout = min(max(0.0, _number_param(params, "timeout", 0)), self.long_poll_cap)
        deadline = time.monotonic() + timeout
        with self._updates_cv:
            if self._webhook.get("url"):
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            self._confirm(offset)
            while not self._updates and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._updates_cv.wait(remaining)
            return self._updates[:limit]

    def _confirm(self, offset: int) -> None:
        """Drop confirmed updates: below a positive offset, or all but the last -offset."""
        if offset > 0:
            self._updates = [u for u in self._updates if int(u["update_id"]) >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    def _get_file(self, params: JSONDict) -> JSONDict:
        """A File object with the file_path to download from."""
        with self._lock:
            stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }
