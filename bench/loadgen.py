"""Open-loop (fixed rate) and closed-loop HTTP/1.1 load on keep-alive sockets, in asyncio.

wrk has no fixed-rate mode. Here request i is due at start + i / rate whatever happened to
earlier ones, and its latency counts from that due time, not from when a socket was free: a
server that stalls shows the stall in every request queued behind it (no coordinated omission).
A request that finds every connection busy opens another, up to `max_connections`.

Standalone use (POSTs the same body every time):
    python bench/loadgen.py http://127.0.0.1:5000/healthz --rate 100 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

BodyFor = Callable[[int], bytes]
STALE = -1  # the socket failed before an answer: worth one retry if it was a reused one


@dataclass(frozen=True)
class Sample:
    """One request: its number, HTTP status (0: no answer), latency and completion time."""

    index: int
    status: int
    latency: float
    done_at: float


@dataclass
class LoadResult:
    """Every sample of a run plus the generator's own health, to tell its lag from the server's."""

    started: float
    samples: list[Sample] = field(default_factory=list)
    scheduled: int = 0
    max_send_lag: float = 0.0
    connections_opened: int = 0
    retried_on_stale_socket: int = 0
    unanswered: int = 0  # still in flight when the run's time was up

    def ok(self) -> list[Sample]:
        """The samples answered 200: the only ones whose latency counts."""
        return [s for s in self.samples if s.status == 200]

    def statuses(self) -> Counter[int]:
        """How many answers of each status (0: none), for the report."""
        return Counter(s.status for s in self.samples)

    def achieved_rate(self) -> float:
        """200 answers per second, from the first due time to the last 200 answer."""
        ok = self.ok()
        if not ok:
            return 0.0
        span = max(s.done_at for s in ok) - self.started
        return len(ok) / span if span > 0 else 0.0

    def latencies(self) -> list[float]:
        """Seconds per 200 answer, for percentiles."""
        return [s.latency for s in self.ok()]


@dataclass(frozen=True)
class Target:
    """Where to send and what to add to every request."""

    host: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "POST"

    @classmethod
    def of(cls, url: str, headers: dict[str, str] | None = None,
           method: str = "POST") -> Target:
        """Split a URL once so every request reuses the parts."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/",
                   tuple((headers or {}).items()), method)

    def request(self, body: bytes) -> bytes:
        """The raw request bytes: HTTP/1.1 keep-alive with a Content-Length."""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpConnection:
    """One keep-alive socket that carries one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True

    @classmethod
    async def open(cls, target: Target) -> HttpConnection:
        """Connect a new socket to the target."""
        reader, writer = await asyncio.open_connection(target.host, target.port)
        return cls(reader, writer)

    async def exchange(self, raw: bytes) -> int:
        """Send one request and read the whole answer; returns the status code."""
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                self.reusable = False
        if chunked:
            await self._read_chunks()
        elif length:
            await self.reader.readexactly(length)
        return status

    async def _read_chunks(self) -> None:
        """Consume a chunked body so the socket can carry the next request."""
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return

    def close(self) -> None:
        """Close the socket(s) so no file descriptor outlives the run."""
        self.reusable = False
        self.writer.close()


class _Pool:
    """Idle connections reused last-in first-out; new ones opened while under the cap."""

    def __init__(self, target: Target, max_connections: int) -> None:
        self.target = target
        self.idle: list[HttpConnection] = []
        self.slots = asyncio.Semaphore(max_connections)
        self.opened = 0
        self.retried = 0

    async def send(self, raw: bytes, timeout: float) -> int:
        """One request on a free connection; 0 when it failed or timed out."""
        async with self.slots:
            conn = self._idle_connection()
            reused = conn is not None
            status = await self._try(conn, raw, timeout)
            if status == STALE and reused:
                # The server closed an idle keep-alive socket (gunicorn's keepalive is 2 s)
                # before reading the request: try once on a new socket, as HTTP clients do.
                self.retried += 1
                status = await self._try(None, raw, timeout)
            return max(status, 0)

    def _idle_connection(self) -> HttpConnection | None:
        """The most recently used idle socket the server has not closed yet."""
        while self.idle:
            conn = self.idle.pop()
            if not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    async def _try(self, conn: HttpConnection | None, raw: bytes, timeout: float) -> int:
        """The status; 0 on a timeout (never retried: the server may be working on it)."""
        try:
            if conn is None:
                conn = await asyncio.wait_for(HttpConnection.open(self.target), timeout)
                self.opened += 1
            status = await asyncio.wait_for(conn.exchange(raw), timeout)
        except TimeoutError:
            if conn is not None:
                conn.close()
            return 0
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            if conn is not None:
                conn.close()
            return STALE
        if conn.reusable:
            self.idle.append(conn)
        else:
            conn.close()
        return status

    def close(self) -> None:
        """Close the socket(s) so no file descriptor outlives the run."""
        for conn in self.idle:
            conn.close()
        self.idle.clear()


async def open_loop(target: Target, rate: float, seconds: float, body_for: BodyFor, *,
                    max_connections: int = 256, timeout: float = 30.0,
                    drain: float = 30.0) -> LoadResult:
    """Send `rate` requests a second for `seconds`; waits at most `drain` s for stragglers."""
    loop = asyncio.get_running_loop()
    pool = _Pool(target, max_connections)
    count = int(rate * seconds)
    result = LoadResult(started=loop.time() + 0.05, scheduled=count)

    async def one(index: int, due: float) -> None:
        """Send request `index` and record its latency from its due time."""
        status = await pool.send(target.request(body_for(index)), timeout)
        done = loop.time()
        result.samples.append(Sample(index, status, done - due, done))

    tasks = []
    for index in range(count):
        due = result.started + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        result.max_send_lag = max(result.max_send_lag, loop.time() - due)
        tasks.append(asyncio.create_task(one(index, due)))
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=drain)
        result.unanswered = len(pending)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)
    result.connections_opened = pool.opened
    result.retried_on_stale_socket = pool.retried
    pool.close()
    return result


async def closed_loop(target: Target, connections: int, seconds: float, body_for: BodyFor, *,
                      first_index: int = 0, timeout: float = 10.0) -> LoadResult:
    """Each connection sends its next request when the last one is answered, for `seconds`."""
    loop = asyncio.get_running_loop()
    result = LoadResult(started=loop.time())
    deadline = result.started + seconds
    counter = iter(range(first_index, first_index + 10**9))

    async def client() -> None:
        """One connection's loop: next request only after the last answer."""
        pool = _Pool(target, 1)
        while loop.time() < deadline:
            index = next(counter)
            sent = loop.time()
            status = await pool.send(target.request(body_for(index)), timeout)
            done = loop.time()
            result.samples.append(Sample(index, status, done - sent, done))
            result.scheduled += 1
        result.connections_opened += pool.opened
        pool.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return result


def main() -> None:
    """A fixed-rate run against any URL, printing a JSON summary."""
    from benchlib import percentile

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="", help="request body (same for every request)")
    args = parser.parse_args()
    body = args.body.encode()
    target = Target.of(args.url, method=args.method)
    begun = time.monotonic()
    result = asyncio.run(open_loop(target, args.rate, args.seconds, lambda _i: body))
    latencies = result.latencies()
    print(json.dumps({
        "scheduled": result.scheduled, "statuses": dict(result.statuses()),
        "unanswered": result.unanswered, "achieved_rate": round(result.achieved_rate(), 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_send_lag_ms": round(result.max_send_lag * 1000, 2),
        "wall_seconds": round(time.monotonic() - begun, 2),
    }))


if __name__ == "__main__":
    main()
