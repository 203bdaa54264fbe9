"""A fake Facebook Graph API on real HTTP, so the Messenger channel is tested end to end.

It speaks the wire format of https://graph.facebook.com for what duan8 uses:
``POST /v{N}/me/messages?access_token=…`` (Send API) answering ``{"recipient_id","message_id"}``,
``POST /v{N}/me/messenger_profile`` answering ``{"result":"success"}``,
``POST /v{N}/me/message_attachments`` (Attachment Upload API: multipart ``message`` with
``attachment.type`` and ``payload.is_reusable``, and the file in ``filedata``) answering
``{"attachment_id"}``, Send API messages whose ``attachment`` names such an id (or a URL),
and attachment downloads from ``/cdn/{path}``. Errors
come as Graph does: ``{"error":{"message","type","code","error_subcode","fbtrace_id"}}``.
It checks what Meta checks (token, messaging type, text ≤ 2,000, quick replies ≤ 13 with titles
≤ 20) so a bad request fails here as it would there. Tests inject faults and read the calls.

Typical use::

    with FakeGraph(token="page-token") as graph:
        ...  # FB_GRAPH_URL=graph.url
        assert graph.sent_texts() == ["xin chào"]
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from fakes.server import FakeServer, Handler
from fakes.telegram_api import ApiError as TelegramApiError
from fakes.telegram_api import UploadedFile, _parse_multipart

JSONDict = dict[str, Any]

DEFAULT_TOKEN: Final = "EAAFakePageToken-duan8"
TEXT_LIMIT: Final = 2000
MAX_QUICK_REPLIES: Final = 13
TITLE_LIMIT: Final = 20
PAYLOAD_LIMIT: Final = 1000
MENU_TITLE_LIMIT: Final = 30
MESSAGING_TYPES: Final = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})

# kind -> (HTTP status, code, subcode, message), as Graph answers them.
FAULTS: Final[dict[str, tuple[int, int, int | None, str]]] = {
    "rate_limited": (400, 613, None, "(#613) Calls to this api have exceeded the rate limit."),
    "outside_window": (400, 10, 2018278,
                       "(#10) This message is sent outside of allowed window."),
    "unavailable": (400, 551, 1545041, "(#551) This person isn't available right now."),
    "500": (500, 2, None, "An unexpected error has occurred. Please retry your request later."),
    "token": (400, 190, 463, "Error validating access token: Session has expired."),
}
FAULT_KINDS: Final = frozenset(FAULTS) | {"drop"}

_MESSAGES = re.compile(r"^/v\d+\.\d+/me/messages$")
_PROFILE = re.compile(r"^/v\d+\.\d+/me/messenger_profile$")
_ATTACHMENTS = re.compile(r"^/v\d+\.\d+/me/message_attachments$")
# Messenger Platform, "Saving assets": image, audio, video and file, up to 25 MB each.
ATTACHMENT_TYPES: Final = frozenset({"image", "audio", "video", "file"})
ATTACHMENT_LIMIT: Final = 25 * 1024 * 1024
_CDN = "/cdn/"


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the fake received it, for tests to assert on."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    time: float
    status: int
    authorization: str = ""  # the Authorization header, where the token travels


class GraphError(Exception):
    """A Graph error answer raised inside a route."""

    def __init__(self, status: int, code: int, message: str, subcode: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.subcode, self.message = status, code, subcode, message

    def body(self, trace: str) -> JSONDict:
        """The JSON body Graph sends for this error."""
        error: JSONDict = {"message": self.message, "type": "OAuthException", "code": self.code,
                           "fbtrace_id": trace}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


class _Drop(Exception):
    """Close the connection without answering, like a network failure."""


class FakeGraph(FakeServer):
    """The Graph API subset duan8 uses, on 127.0.0.1 and an ephemeral port."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self._faults: list[str] = []
        self._images: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.RLock()
        self._counter = 0
        # attachment_id -> (type, file name, content type, bytes), as uploaded
        self.attachments: dict[str, tuple[str, str, str, bytes]] = {}
        self._start("127.0.0.1", "FakeGraph")

    # ------------------------------------------------------------------ steering

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next `count` Send API calls fail as Graph does for `kind`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {sorted(FAULT_KINDS)}")
        with self._lock:
            self._faults += [kind] * count

    def add_image(self, path: str, data: bytes, content_type: str = "image/png") -> str:
        """Serve `data` as a Messenger attachment would be; returns its URL."""
        key = path.lstrip("/")
        with self._lock:
            self._images[key] = (data, content_type)
        return f"{self.url}{_CDN}{key}"

    # ------------------------------------------------------------------ inspection

    def calls_to(self, endpoint: str) -> list[Call]:
        """Calls whose path ends with `endpoint` ("messages", "messenger_profile", …)."""
        with self._lock:
            return [c for c in self.calls if c.path.rstrip("/").endswith(endpoint)]

    def sent_messages(self) -> list[JSONDict]:
        """Bodies of Send API calls that Graph accepted, in order."""
        return [c.body for c in self.calls_to("/me/messages") if c.status == 200]

    def sent_texts(self) -> list[str]:
        """The texts delivered, in order."""
        return [b["message"].get("text", "") for b in self.sent_messages()]

    # ------------------------------------------------------------------ routes

    def handle(self, method: str, path: str, query: dict[str, str],
               body: Any, authorization: str = "") -> tuple[int, str, bytes]:
        """Answer one request; returns status, content type and body bytes."""
        if method == "GET" and path.startswith(_CDN):
            with self._lock:
                image = self._images.get(path[len(_CDN):])
            if image is None:
                return 404, "text/plain", b"not found"
            return 200, image[1], image[0]
        if _MESSAGES.match(path) and method == "POST":
            self._check_token(query, authorization)
            self._fault()
            return self._json(200, self._send(body))
        if _ATTACHMENTS.match(path) and method == "POST":
            self._check_token(query, authorization)
            return self._json(200, self._upload(body))
        if _PROFILE.match(path) and method == "POST":
            self._check_token(query, authorization)
            self._profile(body)
            return self._json(200, {"result": "success"})
        raise GraphError(400, 2500, f"Unknown path components: {path}")

    def _json(self, status: int, data: JSONDict) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(data).encode()

    def _check_token(self, query: dict[str, str], authorization: str = "") -> None:
        # Graph takes the token as `Authorization: Bearer …` or as the access_token parameter.
        given = (authorization[len("Bearer "):] if authorization.startswith("Bearer ")
                 else query.get("access_token"))
        if given != self.token:
            raise GraphError(400, 190, "Invalid OAuth access token - Cannot parse access token")

    def _fault(self) -> None:
        with self._lock:
            kind = self._faults.pop(0) if self._faults else None
        if kind == "drop":
            raise _Drop
        if kind is not None:
            status, code, subcode, message = FAULTS[kind]
            raise GraphError(status, code, message, subcode)

    def _send(self, body: Any) -> JSONDict:
        """Validate a Send API body as Meta does and answer with a new message id."""
        if not isinstance(body, dict):
            raise GraphError(400, 100, "(#100) The request body must be JSON")
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not recipient.get("id"):
            raise GraphError(400, 100, "(#100) The parameter recipient is required")
        kind = body.get("messaging_type")
        if kind not in MESSAGING_TYPES:
            raise GraphError(400, 100, "(#100) Param messaging_type must be one of "
                                       "{RESPONSE, UPDATE, MESSAGE_TAG}")
        if kind == "MESSAGE_TAG" and not body.get("tag"):
            raise GraphError(400, 100, "(#100) Tag is required for MESSAGE_TAG messaging type")
        message = body.get("message")
        if not isinstance(message, dict):
            raise GraphError(400, 100, "(#100) The parameter message is required")
        if "attachment" in message:
            if "text" in message:
                raise GraphError(400, 100, "(#100) Only one of message[text] and "
                                           "message[attachment] may be set")
            self._check_attachment(message["attachment"])
            self._check_quick_replies(message.get("quick_replies"))
            return self._accepted(recipient)
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            raise GraphError(400, 100, "(#100) Param message[text] must be a non-empty UTF-8 "
                                       "encoded string")
        if len(text) > TEXT_LIMIT:
            raise GraphError(400, 100, "(#100) Length of param message[text] must be less "
                                       f"than or equal to {TEXT_LIMIT}")
        self._check_quick_replies(message.get("quick_replies"))
        return self._accepted(recipient)

    def _accepted(self, recipient: JSONDict) -> JSONDict:
        with self._lock:
            self._counter += 1
            number = self._counter
        return {"recipient_id": str(recipient["id"]), "message_id": f"m_fake{number:08d}"}

    def _check_attachment(self, attachment: Any) -> None:
        """An attachment message: a known type and an uploaded id or a URL."""
        if not isinstance(attachment, dict) or attachment.get("type") not in ATTACHMENT_TYPES:
            raise GraphError(400, 100, "(#100) param message[attachment][type] must be one of "
                                       "{image, audio, video, file, template}")
        payload = attachment.get("payload")
        if not isinstance(payload, dict):
            raise GraphError(400, 100, "(#100) param message[attachment][payload] is required")
        attachment_id = payload.get("attachment_id")
        if attachment_id is not None:
            with self._lock:
                known = self.attachments.get(str(attachment_id))
            if known is None:
                raise GraphError(400, 100, "(#100) No matching attachment found", 2018047)
            if known[0] != attachment["type"]:
                raise GraphError(400, 100, "(#100) Attachment type does not match the upload")
        elif not str(payload.get("url") or "").startswith(("http://", "https://")):
            raise GraphError(400, 100, "(#100) payload needs attachment_id or url")

    def _upload(self, body: Any) -> JSONDict:
        """Attachment Upload API: keep the file, answer its reusable id."""
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            raise GraphError(400, 100, "(#100) The parameter message is required")
        try:
            message = json.loads(body["message"])
        except ValueError:
            raise GraphError(400, 100, "(#100) param message must be JSON") from None
        attachment = message.get("attachment") if isinstance(message, dict) else None
        kind = attachment.get("type") if isinstance(attachment, dict) else None
        if kind not in ATTACHMENT_TYPES:
            raise GraphError(400, 100, "(#100) param message[attachment][type] is invalid")
        if not (attachment.get("payload") or {}).get("is_reusable"):
            raise GraphError(400, 100, "(#100) An upload must be is_reusable to get an id")
        upload = body.get("filedata")
        if not isinstance(upload, UploadedFile) or not upload.data:
            raise GraphError(400, 100, "(#100) Upload attachment failure: filedata is missing")
        if len(upload.data) > ATTACHMENT_LIMIT:
            raise GraphError(400, 100, "(#100) Upload attachment failure: file is too large")
        with self._lock:
            self._counter += 1
            attachment_id = f"{1_000_000_000 + self._counter}"
            self.attachments[attachment_id] = (kind, upload.filename, upload.content_type,
                                               upload.data)
        return {"attachment_id": attachment_id}

    @staticmethod
    def _check_quick_replies(replies: Any) -> None:
        if replies is None:
            return
        if not isinstance(replies, list) or not 0 < len(replies) <= MAX_QUICK_REPLIES:
            raise GraphError(400, 100, "(#100) param message[quick_replies] must have between "
                                       f"1 and {MAX_QUICK_REPLIES} elements")
        for reply in replies:
            title = reply.get("title") if isinstance(reply, dict) else None
            if reply.get("content_type") != "text" or not isinstance(title, str) or not title:
                raise GraphError(400, 100, "(#100) A text quick reply needs a title")
            if len(title) > TITLE_LIMIT:
                raise GraphError(400, 100, "(#100) Quick reply title is longer than "
                                           f"{TITLE_LIMIT} characters")
            if len(str(reply.get("payload", ""))) > PAYLOAD_LIMIT:
                raise GraphError(400, 100, "(#100) Quick reply payload is too long")

    @staticmethod
    def _profile(body: Any) -> None:
        if not isinstance(body, dict) or not body:
            raise GraphError(400, 100, "(#100) Requires one of the params: get_started, "
                                       "persistent_menu, greeting, …")
        for menu in body.get("persistent_menu") or []:
            for item in menu.get("call_to_actions") or []:
                if len(item.get("title", "")) > MENU_TITLE_LIMIT:
                    raise GraphError(400, 100, "(#100) Menu item title is too long")

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _serve(self, handler: Handler) -> None:
        """Record the call and answer as Graph does, or fail as steered."""
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = handler.read_body()
        body: Any = None
        content_type = handler.headers.get("Content-Type", "")
        if raw and content_type.lower().startswith("multipart/form-data"):
            try:
                body = _parse_multipart(raw, content_type)
            except TelegramApiError:
                body = None
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        method = handler.command
        trace = f"AFake{int(time.monotonic() * 1e6) % 10**9:09d}"
        try:
            auth = handler.headers.get("Authorization", "")
            status, content_type, payload = self.handle(method, parts.path, query, body, auth)
        except _Drop:
            self.record(Call(method, parts.path, query, body, time.time(), 0, auth))
            handler.close_connection = True
            handler.connection.close()
            return
        except GraphError as exc:
            status, content_type = exc.status, "application/json"
            payload = json.dumps(exc.body(trace)).encode()
        self.record(Call(method, parts.path, query, body, time.time(), status,
                         handler.headers.get("Authorization", "")))
        try:
            handler.answer(status, payload, content_type)
        except (BrokenPipeError, ConnectionResetError):
            # The client hung up (e.g. it refused a download over its size cap).
            handler.close_connection = True
