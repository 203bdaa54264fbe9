"""What the fake platform servers share: a threaded HTTP server on loopback, keep-alive
connections that `close()` cuts, a quiet handler that hands each request to its fake, and
`with`-block use. Each fake adds only its platform's routes (`_serve`) and state."""

from __future__ import annotations

import contextlib
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class Handler(BaseHTTPRequestHandler):
    """Hands every request to the owning fake; keep-alive, no logging."""

    protocol_version = "HTTP/1.1"
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
        self.server.fake._serve(self)

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet in test output."""

    def read_body(self) -> bytes:
        """The request body by Content-Length (clients here never send chunked bodies)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, body: bytes, content_type: str = "application/json",
               extra: dict[str, str] | None = None) -> None:
        """Write status, headers (a Location, say) and body in one send."""
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


class _Server(ThreadingHTTPServer):
    """A threaded server whose threads never block interpreter exit, and that knows its fake."""

    daemon_threads = True
    fake: FakeServer


class FakeServer:
    """Serving, connection tracking and closing; subclasses define `_serve(handler)`."""

    _lock: threading.RLock
    url: str

    def _start(self, host: str, name: str) -> None:
        """Start serving at once on an ephemeral port (call at the end of __init__)."""
        self._connections: set[socket.socket] = set()
        self._closed = False
        self._server = _Server((host, 0), Handler)
        self._server.fake = self
        bound_host, port = self._server.server_address[:2]
        self.url = f"http://{bound_host!s}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"{name}:{port}")
        self._thread.start()

    def _serve(self, handler: Handler) -> None:
        raise NotImplementedError

    def _on_close(self) -> None:
        """Under the lock, as closing starts: wake whatever waits (long polls)."""

    def __enter__(self) -> Self:
        """Use as a context manager so the server always gets closed."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and cut open connections."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._on_close()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        """Keep the set of open connections for close()."""
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)
