"""A fake Zalo Official Account API and OAuth server on real HTTP, so the zalo channel is tested
end to end.

One server stands for both roots (point ZALO_API_URL and ZALO_OAUTH_URL at ``fake.url``):

- ``POST /v3.0/oa/message/cs``: a consultation message. The ``access_token`` header must be the
  current valid token, else ``{"error": -216}``; the answer is HTTP 200 with
  ``{"error": 0, "data": {"message_id", "user_id"}}``. A message is a ``text``; a media
  template (``attachment.payload.template_type == "media"``, one image element) whose
  ``attachment_id`` this server issued, with an optional ``text`` caption; or a ``text`` with a
  buttons template (``attachment.payload.buttons``: 1 to 5 buttons, each a ``title`` of 1 to 20
  characters and a ``type``; query buttons carry a string ``payload`` of 1 to 1,000
  characters, ``oa.open.url`` a ``{"url"}``), as Zalo's SDK and ChatbotX send it.
- ``POST /v2.0/oa/upload/image``: multipart, field ``file``, same token rule; JPEG or PNG of at
  most 1 MB (checked from the bytes), answered ``{"error": 0, "data": {"attachment_id"}}``.
- ``POST /v4/oa/access_token``: form body, the app secret in a ``secret_key`` header.
  ``grant_type=refresh_token`` issues a new pair for the current refresh token and marks that one
  spent (refresh tokens are single-use); ``grant_type=authorization_code`` checks the code and its
  PKCE verifier (S256). Errors come as HTTP 200 with a negative ``error``.
- ``GET /v4/oa/permission``: the page an admin opens; it "approves" at once and redirects (302) to
  ``redirect_uri?code=…&state=…&oa_id=…``, remembering the code's challenge.
- ``GET /images/{path}``: bytes added with ``add_image``, standing in for Zalo's CDN.

Tests steer it (``fail_next`` with Zalo error codes, HTTP 500, slow or dropped answers,
``expire_access_token``, ``forget_attachments``) and inspect the calls it recorded (an upload's
params give the file's name, type, size and SHA-256; its bytes are in ``Call.files``). Error codes
other than -216 and -220 are the fake's own choice; the channel relies on those two (a token
replaced by a newer pair answers -220, any other wrong one -216) and on "error != 0".

Typical use::

    with FakeZalo() as zalo:
        ...
        assert zalo.sent_texts("7654321098765432109") == ["xin chào"]
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from fakes.server import FakeServer, Handler

JSONDict = dict[str, Any]
FaultKind = Literal["error", "500", "slow", "drop", "answer_lost"]
FAULT_KINDS: Final = frozenset({"error", "500", "slow", "drop", "answer_lost"})
CS_PATH: Final = "/v3.0/oa/message/cs"
UPLOAD_PATH: Final = "/v2.0/oa/upload/image"
IMAGE_LIMIT: Final = 1_000_000
IMAGE_MAGIC: Final = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
TOKEN_PATH: Final = "/v4/oa/access_token"
PERMISSION_PATH: Final = "/v4/oa/permission"
DEFAULT_APP_ID: Final = "4321098765432109876"
DEFAULT_OA_ID: Final = "1357924680135792468"
TEXT_LIMIT: Final = 2000
MAX_BUTTONS: Final = 5
BUTTON_TITLE_LIMIT: Final = 20  # ChatbotX's schema, the strictest source
BUTTON_PAYLOAD_LIMIT: Final = 1000
QUERY_BUTTONS: Final = frozenset({"oa.query.hide", "oa.query.show"})
ACCESS_LIFETIME: Final = 90_000  # seconds, ≈25 h as Zalo issues


def sign(body: bytes, app_id: str, timestamp: str, oa_secret_key: str) -> str:
    """The ``X-ZEvent-Signature`` value Zalo sends for a body: ``mac=`` + plain SHA-256."""
    digest = hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret_key.encode())
    return f"mac={digest.hexdigest()}"


def s256(verifier: str) -> str:
    """A PKCE S256 challenge: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(slots=True)
class Call:
    """One request, recorded so tests can assert on what the channel asked for."""

    method: str
    path: str
    headers: dict[str, str]
    params: JSONDict
    time: float
    status: int = 0  # HTTP status answered; 0 while pending or when the connection was dropped
    answer: JSONDict | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # multipart file fields


@dataclass(frozen=True, slots=True)
class _Fault:
    """A failure queued by fail_next for the next call to one path."""

    kind: str
    code: int
    message: str
    delay: float


class _Drop(Exception):
    """Close the connection without answering, like a network failure."""


class FakeZalo(FakeServer):
    """A real HTTP server imitating Zalo's OA API and OAuth host, steerable from tests."""

    def __init__(self, *, app_id: str = DEFAULT_APP_ID, app_secret: str | None = None,
                 oa_id: str = DEFAULT_OA_ID, host: str = "127.0.0.1") -> None:
        """Start serving at once on an ephemeral port, with one valid token pair issued."""
        self.app_id = app_id
        self.app_secret = app_secret or secrets.token_urlsafe(16)
        self.oa_id = oa_id
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._images: dict[str, bytes] = {}
        self._codes: dict[str, str] = {}  # authorization code -> its PKCE challenge
        self.attachments: dict[str, str] = {}  # attachment id -> SHA-256 of the uploaded bytes
        self.spent_refresh_tokens: set[str] = set()
        self.replaced_access_tokens: set[str] = set()
        self.quota_remaining: dict[str, int] = {}  # user id -> free messages Zalo reports
        self.access_token = ""
        self.refresh_token = ""
        self.issue_pair()
        self._start(host, "FakeZalo")

    # ------------------------------------------------------------------ steering

    def issue_pair(self) -> tuple[str, str]:
        """A new valid pair, as a refresh issues it; the previous refresh token is spent."""
        with self._lock:
            if self.refresh_token:
                self.spent_refresh_tokens.add(self.refresh_token)
            if self.access_token:
                # Zalo's error table: the old access token is removed when a new one is issued.
                self.replaced_access_tokens.add(self.access_token)
            self.access_token = f"acc-{secrets.token_urlsafe(24)}"
            self.refresh_token = f"ref-{secrets.token_urlsafe(24)}"
            return self.access_token, self.refresh_token

    def expire_access_token(self) -> None:
        """The current access token stops working (as after 25 h); the refresh token still does."""
        with self._lock:
            self.access_token = f"unknown-{secrets.token_urlsafe(8)}"

    def fail_next(self, path: str, kind: FaultKind, *, count: int = 1, code: int = -201,
                  message: str = "injected error", delay: float = 1.0) -> None:
        """The next `count` calls to `path` fail: a Zalo error code in HTTP 200 ("error"), HTTP
        500, a slow answer, a dropped connection before processing ("drop"), or processing
        whose answer is lost ("answer_lost": the work is done, the connection then dropped)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            queue = self._faults.setdefault(path, deque())
            queue.extend(_Fault(kind, code, message, delay) for _ in range(count))

    def forget_attachments(self) -> None:
        """Every attachment id issued so far stops being accepted, as if Zalo expired them."""
        with self._lock:
            self.attachments.clear()

    def add_image(self, path: str, data: bytes) -> str:
        """Serve `data` at /images/{path}; returns its URL."""
        path = path.lstrip("/")
        with self._lock:
            self._images[path] = data
        return f"{self.url}/images/{path}"

    # ------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[Call]:
        """Every recorded request, in order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, path: str) -> list[Call]:
        """The recorded requests to one path."""
        with self._lock:
            return [c for c in self._calls if c.path == path]

    def sent(self, user_id: str | None = None) -> list[Call]:
        """Consultation messages Zalo accepted, optionally to one user."""
        return [c for c in self.calls_to(CS_PATH)
                if c.status == 200 and c.answer is not None and c.answer.get("error") == 0
                and (user_id is None or c.params["recipient"]["user_id"] == user_id)]

    def sent_texts(self, user_id: str | None = None) -> list[str]:
        """Texts Zalo accepted, optionally to one user."""
        return [str(c.params["message"].get("text", "")) for c in self.sent(user_id)]

    def sent_photos(self, user_id: str | None = None) -> list[tuple[str, str]]:
        """(attachment id, caption) of each photo message Zalo accepted."""
        found = []
        for call in self.sent(user_id):
            element = _media_element(call.params["message"])
            if element is not None:
                found.append((str(element["attachment_id"]),
                              str(call.params["message"].get("text", ""))))
        return found

    def sent_buttons(self, user_id: str | None = None) -> list[list[JSONDict]]:
        """The buttons of each message Zalo accepted ([] for a message without any)."""
        return [_buttons(c.params["message"]) or [] for c in self.sent(user_id)]

    def uploads(self) -> list[Call]:
        """Image uploads Zalo accepted."""
        return [c for c in self.calls_to(UPLOAD_PATH)
                if c.answer is not None and c.answer.get("error") == 0]

    # ------------------------------------------------------------------ internals

    def _serve(self, handler: Handler) -> None:
        """Record the call, apply a queued fault, answer like Zalo."""
        split = urlsplit(handler.path)
        raw = handler.read_body()
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if handler.command == "GET" and split.path.startswith("/images/"):
            self._serve_image(handler, split.path[len("/images/"):])
            return
        params = self._params(handler.command, split.query, raw, headers)
        files = {k: v.pop("_bytes") for k, v in params.items()
                 if isinstance(v, dict) and isinstance(v.get("_bytes"), bytes)}
        call = Call(handler.command, split.path, headers, params, time.monotonic(), files=files)
        with self._lock:
            self._calls.append(call)
            queue = self._faults.get(split.path)
            fault = queue.popleft() if queue else None
        try:
            answer = self._answer(handler, call, fault)
        except _Drop:
            handler.close_connection = True
            return
        if answer is None:
            return
        call.status, call.answer = 200, answer
        handler.answer(200, json.dumps(answer).encode())

    @staticmethod
    def _params(method: str, query: str, raw: bytes, headers: dict[str, str]) -> JSONDict:
        """Form, query, multipart or JSON parameters, whichever the request carries."""
        if headers.get("content-type", "").startswith("multipart/form-data"):
            return _multipart(headers["content-type"], raw)
        if method == "GET" or "form" in headers.get("content-type", ""):
            text = query if method == "GET" else raw.decode("utf-8", "replace")
            return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
        try:
            value = json.loads(raw or b"{}")
        except ValueError:
            return {"_raw": raw.decode("utf-8", "replace")}
        return value if isinstance(value, dict) else {"_raw": value}

    def _answer(self, handler: Handler, call: Call, fault: _Fault | None) -> JSONDict | None:
        """The JSON answer, or None when the handler already answered (500, 302, 404)."""
        if fault is not None:
            if fault.kind == "drop":
                raise _Drop
            if fault.kind == "500":
                call.status = 500
                handler.answer(500, b"<html>Internal Server Error</html>", "text/html")
                return None
            if fault.kind == "error":
                return {"error": fault.code, "message": fault.message}
            if fault.kind == "slow":
                time.sleep(fault.delay)
        if call.path == CS_PATH and call.method == "POST":
            answer = self._send_cs(call)
        elif call.path == UPLOAD_PATH and call.method == "POST":
            answer = self._upload(call)
        elif call.path == TOKEN_PATH and call.method == "POST":
            answer = self._token(call)
        elif call.path == PERMISSION_PATH and call.method == "GET":
            self._permission(handler, call)
            return None
        else:
            call.status = 404
            handler.answer(404, b'{"error": 404, "message": "not found"}')
            return None
        if fault is not None and fault.kind == "answer_lost":
            raise _Drop
        return answer

    def _quota_after_send(self, user_id: str) -> JSONDict:
        """The `quota` object Zalo adds to a send's answer ("Gửi tin tư vấn": quota_type,
        remain, total, expired_date, numbers as strings), for users a test gave a quota."""
        with self._lock:
            if user_id not in self.quota_remaining:
                return {}
            left = max(0, self.quota_remaining[user_id] - 1)
            self.quota_remaining[user_id] = left
        return {"quota": {"quota_type": "reply", "remain": str(left), "total": "8",
                          "expired_date": ""}}

    def _token_refused(self, call: Call) -> JSONDict | None:
        """Zalo's answer to a call whose access token is not the current one, else None."""
        token = call.headers.get("access_token")
        with self._lock:
            valid = token == self.access_token
            replaced = token in self.replaced_access_tokens
        if valid:
            return None
        # Zalo's "Bảng mã lỗi": -220 for an access token that expired or was removed (replaced
        # by a newer pair), -216 for one that is not valid at all.
        if replaced:
            return {"error": -220, "message": "access_token is expired or removed"}
        return {"error": -216, "message": "Access token is invalid"}

    def _send_cs(self, call: Call) -> JSONDict:
        """A consultation message: the token must be the current one."""
        refused = self._token_refused(call)
        if refused:
            return refused
        recipient = call.params.get("recipient")
        message = call.params.get("message")
        if not isinstance(recipient, dict) or not isinstance(recipient.get("user_id"), str):
            return {"error": -201, "message": "recipient.user_id is invalid"}
        if not isinstance(message, dict):
            return {"error": -201, "message": "message is empty"}
        element = _media_element(message)
        buttons = _buttons(message)
        if "attachment" in message and buttons is not None:
            problem = _buttons_problem(message, buttons)
            if problem:
                return {"error": -201, "message": problem}
        elif "attachment" in message:
            if element is None:
                return {"error": -201, "message": "attachment is not a media template"}
            with self._lock:
                known = str(element.get("attachment_id")) in self.attachments
            if not known:
                return {"error": -201, "message": "attachment_id is invalid"}
        elif not str(message.get("text") or "").strip():
            return {"error": -201, "message": "message is empty"}
        if len(str(message.get("text") or "")) > TEXT_LIMIT:
            return {"error": -201, "message": "message text is too long"}
        return {"error": 0, "message": "Success",
                "data": {"message_id": secrets.token_hex(16), "user_id": recipient["user_id"],
                         **self._quota_after_send(recipient["user_id"])}}

    def _upload(self, call: Call) -> JSONDict:
        """An image upload: a current token, one JPEG or PNG file of at most 1 MB."""
        refused = self._token_refused(call)
        if refused:
            return refused
        upload = call.params.get("file")
        data = call.files.get("file")
        if not isinstance(upload, dict) or data is None:
            return {"error": -201, "message": "file is missing"}
        if len(data) > IMAGE_LIMIT:
            return {"error": -210, "message": "image is larger than 1MB"}
        if not data.startswith(IMAGE_MAGIC):
            return {"error": -211, "message": "only jpg and png images are supported"}
        attachment_id = secrets.token_hex(16)
        with self._lock:
            self.attachments[attachment_id] = upload["sha256"]
        return {"error": 0, "message": "Success", "data": {"attachment_id": attachment_id}}

    def _token(self, call: Call) -> JSONDict:
        """Refresh (single-use) or authorization code (PKCE) grants."""
        params = call.params
        if call.headers.get("secret_key") != self.app_secret:
            return {"error": -14002, "error_name": "Invalid secret key",
                    "error_description": "secret_key header is wrong"}
        if params.get("app_id") != self.app_id:
            return {"error": -14001, "error_name": "Invalid app_id"}
        grant = params.get("grant_type")
        with self._lock:
            if grant == "refresh_token":
                token = params.get("refresh_token", "")
                if token in self.spent_refresh_tokens:
                    return {"error": -14014, "error_name": "Invalid refresh token",
                            "error_description": "The refresh token was already used"}
                if token != self.refresh_token:
                    return {"error": -14014, "error_name": "Invalid refresh token",
                            "error_description": "Unknown refresh token"}
            elif grant == "authorization_code":
                challenge = self._codes.pop(params.get("code", ""), None)
                if challenge is None:
                    return {"error": -14019, "error_name": "Invalid authorization code"}
                verifier = params.get("code_verifier", "")
                # Zalo's SDKs make, and its OAuth v4 guide asks for, 43 alphanumeric characters.
                if len(verifier) != 43 or not verifier.isalnum() or not verifier.isascii():
                    return {"error": -14019, "error_name": "Invalid code verifier",
                            "error_description": "code_verifier must be 43 alphanumerics"}
                if s256(verifier) != challenge:
                    return {"error": -14019, "error_name": "Invalid code verifier"}
            else:
                return {"error": -14003, "error_name": "Invalid grant_type"}
            access, refresh = self.issue_pair()
        return {"access_token": access, "refresh_token": refresh,
                "expires_in": str(ACCESS_LIFETIME)}

    def _permission(self, handler: Handler, call: Call) -> None:
        """Approve at once and redirect with a code bound to the challenge."""
        params = call.params
        redirect = params.get("redirect_uri", "")
        if params.get("app_id") != self.app_id or not redirect or not params.get("code_challenge"):
            call.status = 400
            handler.answer(400, b'{"error": -14001, "message": "bad permission request"}')
            return
        code = f"code-{secrets.token_urlsafe(16)}"
        with self._lock:
            self._codes[code] = params["code_challenge"]
        query = urlencode({"code": code, "state": params.get("state", ""), "oa_id": self.oa_id})
        location = f"{redirect}{'&' if '?' in redirect else '?'}{query}"
        call.status = 302
        handler.answer(302, b"", "text/plain", {"Location": location})

    def _serve_image(self, handler: Handler, path: str) -> None:
        """Bytes added with add_image, as Zalo's CDN would serve them."""
        with self._lock:
            data = self._images.get(path)
        if data is None:
            handler.answer(404, b"not found", "text/plain")
            return
        handler.answer(200, data, "image/png")


def _media_element(message: JSONDict) -> JSONDict | None:
    """The one image element of a media-template message, or None when it is not one."""
    attachment = message.get("attachment")
    if not isinstance(attachment, dict) or attachment.get("type") != "template":
        return None
    payload = attachment.get("payload")
    if not isinstance(payload, dict) or payload.get("template_type") != "media":
        return None
    elements = payload.get("elements")
    if not isinstance(elements, list) or len(elements) != 1 or not isinstance(elements[0], dict):
        return None
    element = elements[0]
    if element.get("media_type") != "image" or not element.get("attachment_id"):
        return None
    return element


def _buttons(message: JSONDict) -> list[JSONDict] | None:
    """The buttons of a buttons-template message, or None when it is not one."""
    attachment = message.get("attachment")
    if not isinstance(attachment, dict) or attachment.get("type") != "template":
        return None
    payload = attachment.get("payload")
    if not isinstance(payload, dict) or "template_type" in payload or "buttons" not in payload:
        return None
    buttons = payload["buttons"]
    return buttons if isinstance(buttons, list) else []


def _buttons_problem(message: JSONDict, buttons: list[JSONDict]) -> str | None:
    """Why Zalo would refuse this buttons template, or None when it is well formed."""
    if not str(message.get("text") or "").strip():
        return "a buttons template needs a text"
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        return f"buttons must be 1 to {MAX_BUTTONS}"
    for button in buttons:
        if not isinstance(button, dict):
            return "a button is not an object"
        title, kind, data = button.get("title"), button.get("type"), button.get("payload")
        if not isinstance(title, str) or not 1 <= len(title) <= BUTTON_TITLE_LIMIT:
            return f"button title must be 1 to {BUTTON_TITLE_LIMIT} characters"
        if kind in QUERY_BUTTONS:
            if not isinstance(data, str) or not 1 <= len(data) <= BUTTON_PAYLOAD_LIMIT:
                return f"query payload must be 1 to {BUTTON_PAYLOAD_LIMIT} characters"
        elif kind == "oa.open.url":
            if not isinstance(data, dict) or not str(data.get("url") or ""):
                return "oa.open.url needs payload.url"
        else:
            return f"unsupported button type {kind!r}"
    return None


def _multipart(content_type: str, raw: bytes) -> JSONDict:
    """Fields of a multipart/form-data body; a file becomes its name, type, size and digest."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    params: JSONDict = {}
    for part in parsed.iter_parts() if parsed.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is None:
            params[name] = data.decode("utf-8", "replace")
            continue
        params[name] = {"filename": filename, "content_type": part.get_content_type(),
                        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                        "_bytes": data}
    return params
