"""python-telegram-bot's networking on aiohttp, for sending in bulk.

python-telegram-bot talks HTTP through a replaceable `BaseRequest` (its docs: "Architecture
Overview" and `telegram.request.BaseRequest`); the default is httpx. Measured against a
loopback Bot API on the 2-core benchmark machine (BENCHMARKS.md), httpx.AsyncClient sent about
850 requests/s at 1–4 in flight and fell to about 240/s at 64 (its connection pool,
encode/httpx#3215), while aiohttp.ClientSession sent 2,400/s at 1 and 4,500–5,000/s at 4–64.
A broadcast keeps dozens of sends in flight, so the worker uses this class.

Bodies are JSON (`RequestData.parameters`, one `json.dumps`): the Bot API takes query string,
application/json, form-urlencoded or multipart bodies alike (core.telegram.org/bots/api,
"Making requests"). python-telegram-bot's HTTPXRequest sends form fields, and url-encoding them
(through aiohttp's FormData) was about a sixth of a bulk send's CPU here. A request with files
goes as multipart, the one encoding that carries them. Errors map to
python-telegram-bot's exceptions (TimedOut, NetworkError), so the sender reads failures the same
way.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

log = logging.getLogger(__name__)

JSON_HEADERS = {"Content-Type": "application/json"}


# A body already encoded as JSON, for the one post_encoded call running in this task.
_ENCODED_BODY: ContextVar[bytes | None] = ContextVar("encoded_body", default=None)


def _seconds(value: Any, default: float | None) -> float | None:
    """A timeout python-telegram-bot passed, or ours when it passed its DEFAULT_NONE."""
    return default if isinstance(value, type(BaseRequest.DEFAULT_NONE)) else value


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a bounded pool, opened and closed with the Bot.

    `write_timeout` is taken for the same signature as HTTPXRequest and not used: aiohttp has
    no write timeout, and a stalled upload shows as a silent answer, which `read_timeout` ends.
    """

    def __init__(self, *, connection_pool_size: int = 64, read_timeout: float | None = 15.0,
                 write_timeout: float | None = 15.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 10.0) -> None:
        self._pool_size = connection_pool_size
        self._read = read_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The read timeout used when a call does not name one."""
        return self._read

    async def initialize(self) -> None:
        """Open the session in the running loop (aiohttp binds it to that loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._pool_size)
            # The Bot API sets no cookies: a dummy jar skips matching them on every request.
            self._session = aiohttp.ClientSession(connector=connector,
                                                  cookie_jar=aiohttp.DummyCookieJar(),
                                                  headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def post_encoded(self, url: str, body: bytes) -> Any:
        """POST a body already encoded as JSON; answers the call's `result`, as `post` does.

        A broadcast sends one text and one keyboard to thousands of chats: the sender encodes
        that part once and joins each chat id to it (outbound.send_text_body), rather than
        having python-telegram-bot build and encode every parameter of every call. It goes
        through BaseRequest.post all the same, so the library reads answers and errors as for
        any call; the body reaches do_request in a context variable, which is the task's own.
        """
        token = _ENCODED_BODY.set(body)
        try:
            return await self.post(url)
        finally:
            _ENCODED_BODY.reset(token)

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one Bot API request; answer its status and body, as BaseRequest requires."""
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        read = _seconds(read_timeout, self._read)
        connect = _seconds(connect_timeout, self._connect)
        pool = _seconds(pool_timeout, self._pool)
        # aiohttp's `connect` covers waiting for a pooled connection and opening one; its
        # sock_read is the longest silence while the answer arrives. It has no write timeout:
        # a body that cannot be written stalls the answer, which sock_read then catches.
        waiting = None if connect is None and pool is None else (connect or 0) + (pool or 0)
        timeout = aiohttp.ClientTimeout(total=None, connect=waiting, sock_read=read)
        data: Any = None
        headers = None
        encoded = _ENCODED_BODY.get()
        if encoded is not None and request_data is None:
            data, headers = encoded, JSON_HEADERS
        elif request_data is not None and request_data.contains_files:
            data = self._form(request_data)
        elif request_data is not None:
            data = json.dumps(request_data.parameters, ensure_ascii=False).encode()
            headers = JSON_HEADERS
        try:
            async with self._session.request(method, url, data=data, headers=headers,
                                             timeout=timeout) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err

    @staticmethod
    def _form(request_data: RequestData) -> aiohttp.FormData:
        """Parameters and files as one multipart body, as the Bot API takes uploads."""
        form = aiohttp.FormData()
        for name, value in request_data.json_parameters.items():
            form.add_field(name, value)
        for name, (filename, content, mimetype) in request_data.multipart_data.items():
            form.add_field(name, content, filename=filename,
                           content_type=mimetype or "application/octet-stream")
        return form
