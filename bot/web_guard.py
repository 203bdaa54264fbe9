"""The web tier's own doors: body size and time per route, security headers, the session
cookie, the client's address, and the web chat's rate limits kept in the database.

Every request body is bounded before Flask sees it: a declared length over the route's limit is
refused at once (413), and a body that arrives too slowly is cut off (408), so a client sending
one byte at a time holds a worker thread for seconds, not minutes. A reverse proxy that buffers
bodies (README, "Deploying behind a reverse proxy") takes even that off the workers.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import ipaddress
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, Request, request
from flask.sessions import SecureCookieSessionInterface
from flask_talisman import Talisman
from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import WSGIRequestHandler

from storage import throttle

log = logging.getLogger(__name__)

KB, MB = 1024, 1024 * 1024
WEBHOOK_BODY = 1 * MB  # platform events are a few kB; batches stay far below this
JSON_BODY = 64 * KB  # a web chat message: 5,000 characters, escaped, with its envelope
DEFAULT_BODY = 64 * KB
BODY_SECONDS = 10.0  # a small body's whole arrival (WEB_BODY_SECONDS)
UPLOAD_SECONDS = 120.0  # photos over a weak mobile connection
RECV_IDLE_SECONDS = 5.0  # silence between two packets of any body (WEB_BODY_IDLE_SECONDS)


@dataclass(frozen=True)
class BodyTimes:
    """How long a request body may take: a small one whole, an upload whole, any silence."""

    small: float = BODY_SECONDS
    upload: float = UPLOAD_SECONDS
    idle: float = RECV_IDLE_SECONDS

# Web chat: per browser session and per network address (IPv6: its /64).
MESSAGES_PER_SESSION = throttle.Limit("webchat.msg.session", 30, timedelta(minutes=1))
MESSAGES_PER_ADDRESS = throttle.Limit("webchat.msg.address", 120, timedelta(minutes=1))
PHOTOS_PER_SESSION = throttle.Limit("webchat.photo.session", 10, timedelta(minutes=10))
PHOTOS_PER_ADDRESS = throttle.Limit("webchat.photo.address", 40, timedelta(minutes=10))

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def body_limit(path: str, upload_limit: int, times: BodyTimes) -> tuple[int, float, bool]:
    """The largest body a route takes, the time it may take to arrive, and whether it is small
    enough to be read whole before the view runs (everything but photo uploads)."""
    if path.startswith("/webhooks/"):
        return WEBHOOK_BODY, times.small, True
    if path == "/chat/api/photos":
        return upload_limit, times.upload, False
    if path.startswith("/chat/api/"):
        return JSON_BODY, times.small, True
    return DEFAULT_BODY, times.small, True


class _Deadline(io.RawIOBase):
    """A request body stream that stops at its limit and at its deadline."""

    def __init__(self, stream: Any, limit: int, seconds: float, declared: int | None) -> None:
        self._stream = stream
        # A declared length is read exactly (a server's raw stream may not end there); a body
        # without one (chunked) is read to its end, one byte past the limit telling it is over.
        self._left = limit if declared is None else declared
        self._exact = declared is not None
        self._deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if time.monotonic() > self._deadline:
            raise RequestTimeout("the request body arrived too slowly")
        size = min(len(buffer), self._left if self._exact else self._left + 1)
        if size == 0:
            return 0
        try:
            data = self._stream.read(size) if size else b""
        except Exception as exc:  # a socket timeout, or the watchdog ending the read
            raise RequestTimeout("the request body arrived too slowly") from exc
        if (len(data) < size and time.monotonic() > self._deadline) or (
                self._exact and not data):
            # Past the deadline, or the body ended (or was cut off) before its declared length.
            raise RequestTimeout("the request body arrived too slowly or incomplete")
        if len(data) > self._left:
            raise RequestEntityTooLarge()
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


class _Watchdog:
    """One thread that cuts off the reading side of sockets whose body deadline has passed.

    A recv that gets a byte now and then never times out by itself, and gunicorn's body reader
    keeps asking until it has all it wants; shutting the socket's reading side ends that read
    at once, and the answer (408) can still be written.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._due: list[tuple[float, int, Any]] = []
        self._live: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, sock: Any, seconds: float) -> int:
        token = next(self._ids)
        with self._lock:
            heapq.heappush(self._due, (time.monotonic() + seconds, token, sock))
            self._live.add(token)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="body-deadlines",
                                                daemon=True)
                self._thread.start()
            self._lock.notify()
        return token

    def done(self, token: int) -> None:
        with self._lock:
            self._live.discard(token)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._due:
                    self._lock.wait()
                due, token, sock = self._due[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._due)
                expired = token in self._live
                self._live.discard(token)
            if expired:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)


_WATCHDOG = _Watchdog()


class BodyGuard:
    """WSGI middleware: refuse or cut off bodies before the application reads them."""

    def __init__(self, app: Callable[..., Iterable[bytes]], upload_limit: int,
                 times: BodyTimes) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.times = times

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        limit, seconds, whole = body_limit(environ.get("PATH_INFO", ""), self.upload_limit,
                                           self.times)
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared and (not declared.isdigit() or int(declared) > limit):
            return RequestEntityTooLarge()(environ, start_response)
        has_body = bool(declared and declared != "0") or bool(
            environ.get("HTTP_TRANSFER_ENCODING"))
        sock = environ.get("gunicorn.socket")
        token = None
        if sock is not None and has_body:
            # A recv silent for this long raises instead of holding the thread, and the whole
            # body has `seconds` however it trickles in.
            sock.settimeout(self.times.idle)
            token = _WATCHDOG.watch(sock, seconds)
        try:
            stream = _Deadline(environ["wsgi.input"], limit, seconds,
                               int(declared) if declared else None)
            if whole:
                # Small bodies are read whole here, so the view never waits on the network.
                try:
                    body = stream.readall() if has_body else b""
                except (RequestTimeout, RequestEntityTooLarge) as exc:
                    log.info("refused a request body on %s: %s", environ.get("PATH_INFO"),
                             exc.code)
                    return exc(environ, start_response)
                environ["wsgi.input"] = io.BytesIO(body)
                environ["CONTENT_LENGTH"] = str(len(body))
                environ.pop("HTTP_TRANSFER_ENCODING", None)
            else:
                environ["wsgi.input"] = io.BufferedReader(stream)
            return self.app(environ, start_response)
        finally:
            if token is not None:
                _WATCHDOG.done(token)


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (the proxy says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure) or super().get_cookie_secure(app)


def client_address(req: Request) -> str:
    """The sender's address for limits; an IPv6 address counts as its /64 network."""
    text = req.remote_addr or ""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def install(app: Flask, *, proxy_hops: int, upload_limit: int, session_days: int,
            times: BodyTimes) -> None:
    """Put the guards around an app: proxy headers, bodies, headers and the cookie."""
    app.config.update(
        MAX_CONTENT_LENGTH=upload_limit,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=session_days),
    )
    app.session_interface = _SessionInterface()
    Talisman(app, force_https=False, session_cookie_secure=False,
             content_security_policy=CSP, content_security_policy_nonce_in=["script-src"],
             frame_options="DENY", referrer_policy="same-origin",
             strict_transport_security=True, permissions_policy={"browsing-topics": "()"})
    wsgi: Any = BodyGuard(app.wsgi_app, upload_limit, times)
    if proxy_hops:
        wsgi = ProxyFix(wsgi, x_for=proxy_hops, x_proto=proxy_hops)
    app.wsgi_app = wsgi  # type: ignore[method-assign]


class PathOnlyRequestHandler(WSGIRequestHandler):
    """The development server's request log without query strings (FB_VERIFY_TOKEN rides in
    Meta's subscription check), like the gunicorn access log format."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Logged last, after the response: the request line is not read again.
        self.path = self.path.split("?", 1)[0]
        super().log_request(code, size)
