"""A fake Zalo Bot Platform API on real HTTP, so the zalo_bot channel is tested end to end.

It speaks the wire format of bot.zaloplatforms.com/docs: ``POST /bot{TOKEN}/{method}`` with a
JSON body, answered ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": ...,
"description": ...}``. It also serves picture downloads from ``/files/{path}``, standing in for
the CDN the URL of a member's photo points at. Tests steer it (queued events, injected faults,
blocked chats) and inspect what the bot sent.

Typical use::

    with FakeZaloBot() as zalo:
        zalo.queue_update({"event_name": "message.text.received", "message": {...}})
        ...
        assert zalo.sent_texts() == ["xin chào"]
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote, unquote, urlsplit

from fakes.server import FakeServer, Handler

JSONDict = dict[str, Any]
FaultKind = Literal["429", "500", "403_blocked", "slow", "drop"]
FAULT_KINDS: Final = frozenset({"429", "500", "403_blocked", "slow", "drop"})
DEFAULT_TOKEN: Final = "1459232241454765289:FakeZaloBotToken-duan8"
TEXT_LIMIT: Final = 2000
CHAT_METHODS: Final = frozenset({"sendMessage", "sendPhoto", "sendSticker", "sendChatAction"})


@dataclass(slots=True)
class Call:
    """One authorised API request, recorded so tests can assert on what the bot asked for."""

    method: str
    params: JSONDict
    time: float
    status: int = 0  # HTTP status answered; 0 while pending or when the connection was dropped


@dataclass(frozen=True, slots=True)
class _Fault:
    kind: str
    retry_after: int | None
    delay: float


class ApiError(Exception):
    """An error answer, raised by method handlers to reply ok=false."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> JSONDict:
        """The JSON error body, with a Telegram-style retry_after when one was given."""
        answer: JSONDict = {"ok": False, "error_code": self.status,
                            "description": self.description}
        if self.retry_after is not None:
            answer["parameters"] = {"retry_after": self.retry_after}
        return answer


class _Drop(Exception):
    """Close the connection without answering, like a network failure."""


class FakeZaloBot(FakeServer):
    """A real HTTP server imitating the Zalo Bot Platform API, steerable from tests."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, host: str = "127.0.0.1",
                 long_poll_cap: float = 1.0) -> None:
        """Start serving at once on an ephemeral port."""
        self.token = token
        self.long_poll_cap = long_poll_cap
        self._lock = threading.RLock()
        self._cv = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._blocked: set[str] = set()
        self._updates: list[JSONDict] = []
        self._files: dict[str, bytes] = {}
        self._webhook: JSONDict = {}
        self._methods: dict[str, Callable[[JSONDict], Any]] = {
            "getMe": self._get_me, "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook, "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info, "sendMessage": self._send_message,
            "sendPhoto": self._send_photo, "sendChatAction": self._send_chat_action,
        }
        self._start(host, "FakeZaloBot")

    def _on_close(self) -> None:
        """Wake long polls as closing starts."""
        self._cv.notify_all()

    # ------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every authorised call so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method."""
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def sent_texts(self, chat_id: str | None = None) -> list[str]:
        """Texts of sendMessage calls that were accepted, optionally for one chat."""
        with self._lock:
            return [str(c.params.get("text", "")) for c in self._calls
                    if c.method == "sendMessage" and c.status == 200
                    and (chat_id is None or c.params.get("chat_id") == chat_id)]

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until `count` calls of `method` were answered."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                done = [c for c in self._calls if c.method == method and c.status]
                if len(done) >= count:
                    return done
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise TimeoutError(f"{len(done)} of {count} {method} calls after {timeout}s")
                self._cv.wait(remaining)

    @property
    def webhook_url(self) -> str:
        """The URL given to setWebhook, or "" when none is set."""
        with self._lock:
            return str(self._webhook.get("url", ""))

    @property
    def webhook_secret(self) -> str | None:
        """The secret_token given to setWebhook."""
        with self._lock:
            return self._webhook.get("secret_token")

    def pending_updates(self) -> list[JSONDict]:
        """Events queued and not yet handed out by getUpdates."""
        with self._lock:
            return [dict(u) for u in self._updates]

    # ------------------------------------------------------------------ controls

    def queue_update(self, update: JSONDict) -> None:
        """Queue an event (unwrapped) for getUpdates."""
        with self._lock:
            self._updates.append(json.loads(json.dumps(update)))
            self._cv.notify_all()

    def add_image(self, path: str, data: bytes) -> str:
        """Serve `data` at a download URL, as Zalo's CDN serves a member's photo."""
        clean = path.lstrip("/")
        with self._lock:
            self._files[clean] = data
        return f"{self.url}/files/{quote(clean)}"

    def fail_next(self, method: str, kind: FaultKind, count: int = 1, *,
                  retry_after: int | None = None, delay: float = 1.0) -> None:
        """Make the next `count` calls of `method` ("*" = any) fail."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        with self._lock:
            self._faults.setdefault(method, deque()).extend(
                [_Fault(kind, retry_after, delay)] * count)

    def block_chat(self, chat_id: str) -> None:
        """Answer every send to this chat with 403, as when the member blocked the bot."""
        with self._lock:
            self._blocked.add(str(chat_id))

    # ------------------------------------------------------------------ HTTP

    def _serve(self, handler: Handler) -> None:
        """Answer one request: download, or authorise, parse, record, apply faults, dispatch."""
        arrived = time.monotonic()
        path = urlsplit(handler.path).path
        body = handler.read_body()
        if path.startswith("/files/"):
            with self._lock:
                data = self._files.get(unquote(path[len("/files/"):]))
            if data is None:
                self._reply_error(handler, ApiError(404, "Not found"))
            else:
                handler.answer(200, data, "image/png")
            return
        token, _sep, method = path.removeprefix("/bot").partition("/")
        if not path.startswith("/bot") or unquote(token) != self.token:
            self._reply_error(handler, ApiError(401, "Unauthorized"))
            return
        if method not in self._methods:
            self._reply_error(handler, ApiError(404, "Not found"))
            return
        try:
            params = json.loads(body) if body else {}
            if not isinstance(params, dict):
                raise ValueError("not an object")
        except ValueError:
            self._reply_error(handler, ApiError(400, "Bad request"))
            return
        call = Call(method, params, arrived)
        with self._lock:
            self._calls.append(call)
            fault = self._pop_fault(method)
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
        payload = json.dumps({"ok": True, "result": result}, ensure_ascii=False).encode()
        self._finish(call, 200)
        handler.answer(200, payload)

    def _finish(self, call: Call, status: int) -> None:
        with self._cv:
            call.status = status
            self._cv.notify_all()

    def _reply_error(self, handler: Handler, err: ApiError) -> None:
        handler.answer(err.status, json.dumps(err.body(), ensure_ascii=False).encode())

    def _pop_fault(self, method: str) -> _Fault | None:
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                return queue.popleft()
        return None

    def _execute(self, call: Call, fault: _Fault | None) -> Any:
        if fault is not None:
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "drop":
                raise _Drop
            elif fault.kind == "429":
                raise ApiError(429, "Quota exceeded", fault.retry_after)
            elif fault.kind == "500":
                raise ApiError(500, "Internal server error")
            elif fault.kind == "403_blocked":
                raise ApiError(403, "Forbidden: the user has blocked the bot")
        if call.method in CHAT_METHODS:
            chat_id = call.params.get("chat_id")
            if not isinstance(chat_id, str) or not chat_id:
                raise ApiError(400, "Bad request: chat_id is required")
            with self._lock:
                if chat_id in self._blocked:
                    raise ApiError(403, "Forbidden: the user has blocked the bot")
        return self._methods[call.method](call.params)

    # ------------------------------------------------------------------ methods

    @staticmethod
    def _sent() -> JSONDict:
        return {"message_id": uuid.uuid4().hex[:20], "date": int(time.time() * 1000)}

    def _get_me(self, params: JSONDict) -> JSONDict:
        return {"id": self.token.partition(":")[0], "account_name": "bot.duan8",
                "account_type": "BASIC", "can_join_groups": False}

    def _send_message(self, params: JSONDict) -> JSONDict:
        text = params.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= TEXT_LIMIT:
            raise ApiError(400, "Bad request: text must be 1 to 2000 characters")
        return self._sent()

    def _send_photo(self, params: JSONDict) -> JSONDict:
        if not isinstance(params.get("photo"), str) or not params["photo"]:
            raise ApiError(400, "Bad request: photo is required")
        if len(str(params.get("caption") or "")) > TEXT_LIMIT:
            raise ApiError(400, "Bad request: caption too long")
        return self._sent()

    def _send_chat_action(self, params: JSONDict) -> None:
        if params.get("action") not in ("typing", "upload_photo"):
            raise ApiError(400, "Bad request: unknown action")

    def _set_webhook(self, params: JSONDict) -> JSONDict:
        url, secret = str(params.get("url") or ""), str(params.get("secret_token") or "")
        if not url.startswith("https://"):
            raise ApiError(400, "Bad request: url must be HTTPS")
        if not 8 <= len(secret) <= 256:
            raise ApiError(400, "Bad request: secret_token must be 8 to 256 characters")
        with self._lock:
            self._webhook = {"url": url, "secret_token": secret}
            self._cv.notify_all()
        return {"url": url, "updated_at": int(time.time() * 1000)}

    def _delete_webhook(self, params: JSONDict) -> JSONDict:
        with self._lock:
            self._webhook = {}
        return {"url": "", "updated_at": int(time.time() * 1000)}

    def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        return {"url": self.webhook_url, "updated_at": int(time.time() * 1000)}

    def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        """Long-poll: hand out and drop every queued event; 408 when none came in time."""
        try:
            wait = min(max(0.0, float(params.get("timeout") or 30)), self.long_poll_cap)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad request: timeout") from None
        deadline = time.monotonic() + wait
        with self._cv:
            if self._webhook.get("url"):
                # The docs say getUpdates does not work while a webhook is set; code is a guess.
                raise ApiError(409, "Conflict: webhook is active, use deleteWebhook first")
            while not self._updates and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cv.wait(remaining)
            if not self._updates:
                raise ApiError(408, "Request timeout")
            handed, self._updates = self._updates, []
            return handed
