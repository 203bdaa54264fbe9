"""The Zalo Official Account API as the sender calls it: consultation messages, photo uploads and
members' photos.

Sending is a consultation message, `POST {ZALO_API_URL}/v3.0/oa/message/cs` with the token in an
`access_token` header and `{"recipient": {"user_id"}, "message": {"text", "quote_message_id"}}`
(PLATFORMS.md; chatwoot `app/models/channel/zalo_oa.rb` and `app/services/zalo_oa/
message_sender.rb`); photos are uploaded first and sent as a media template (media.py);
a reply's buttons go as query buttons under its text (buttons.py).
Zalo answers HTTP 200 with `{"error": 0, "data": {"message_id"}}` (an upload: `{"attachment_id"}`)
or a negative `error` and a `message`:
- -216 (access token invalid) and -220 (access token expired or removed): refresh once, call
  once more (chatwoot `app/services/zalo/send_on_zalo_service.rb` for -216). Zalo's error
  table ("Bảng mã lỗi", Official Account API) gives -220 for a token that expired or was
  replaced: a token dies the moment a new pair is issued, so a second worker still holding the
  old one meets -220, never a final refusal;
- -213 -217 -227 -230 -232 -234 -244: not followed, blocked, banned, no interaction for too
  long, night curfew, user restricted this kind of message: the window rule, given up with a
  reason a person can read (chatwoot `message_sender.rb`, WINDOW_CODES);
- -32 and -100: try again later (chatwoot `message_sender.rb`, RETRYABLE_CODES);
- anything else: refused for good, with Zalo's code and words.
HTTP 5xx, timeouts and dropped connections are retried by the shared sender.

httpx is used directly: no maintained asyncio SDK for the OA API exists, and we make few calls.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.channels.base import SendResult
from bot.channels.download import MediaHosts, download_capped
from bot.channels.tls import client_tls
from bot.config import Config

log = logging.getLogger(__name__)

TOKEN_INVALID = -216
TOKEN_EXPIRED = -220
TOKEN_CODES = frozenset({TOKEN_INVALID, TOKEN_EXPIRED})
WINDOW_CODES = frozenset({-213, -217, -227, -230, -232, -234, -244})
RETRY_CODES = frozenset({-32, -100})
KEEP_QUOTE_CODES = WINDOW_CODES | RETRY_CODES | TOKEN_CODES  # errors a quote cannot cause
RATE_LIMITED_WAIT = 30.0  # seconds the whole channel pauses after -32, which has no stated wait


class ZaloApiError(Exception):
    """A call Zalo refused (`code` is Zalo's) or that never got an answer (`code` is None)."""

    def __init__(self, code: int | None, description: str) -> None:
        super().__init__(f"{code if code is not None else 'network'}: {description}")
        self.code = code
        self.description = description


class ZaloApi:
    """The OA API calls duan8 makes, over one pooled HTTP client."""

    def __init__(self, config: Config, *, client: httpx.AsyncClient | None = None,
                 timeout: float = 15.0) -> None:
        self.root = config.zalo_api_url
        self.remaining: dict[str, int] = {}  # user id -> Zalo's last reported free messages
        self.media_hosts = MediaHosts(config.media_hosts.get("zalo", ()), config.zalo_api_url)
        self.client = client or httpx.AsyncClient(
            verify=client_tls(), timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def send_message(self, access_token: str, user_id: str, message: dict[str, Any],
                           quote: str | None = None) -> str | None:
        """One consultation message (text or photo); returns Zalo's message id."""
        if quote:
            message = {**message, "quote_message_id": quote}
        data = await self._post("/v3.0/oa/message/cs", access_token,
                                json={"recipient": {"user_id": user_id}, "message": message})
        remain = reported_remaining(data)
        if remain is not None:
            self.remaining[user_id] = remain
        return str(data["message_id"]) if data.get("message_id") is not None else None

    async def upload_image(self, access_token: str, data: bytes, name: str,
                           content_type: str) -> str:
        """Upload a JPEG or PNG photo; returns the attachment id a message can show."""
        answer = await self._post("/v2.0/oa/upload/image", access_token,
                                  files={"file": (name, data, content_type)})
        if not answer.get("attachment_id"):
            raise ZaloApiError(0, "the upload answer carries no attachment_id")
        return str(answer["attachment_id"])

    async def _post(self, path: str, access_token: str, **body: Any) -> dict[str, Any]:
        """POST with the token header; Zalo's `data` on success, else ZaloApiError."""
        try:
            response = await self.client.post(f"{self.root}{path}",
                                              headers={"access_token": access_token}, **body)
        except httpx.HTTPError as exc:  # timeouts, refused or dropped connections
            raise ZaloApiError(None, f"{type(exc).__name__}: {exc}") from None
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 500 or response.status_code == 429:
            raise ZaloApiError(None, f"HTTP {response.status_code}")
        if not isinstance(answer, dict):
            raise ZaloApiError(response.status_code, f"HTTP {response.status_code} without JSON")
        code = str(answer.get("error", "0"))
        if code.lstrip("-").isdigit() and int(code) != 0:
            raise ZaloApiError(int(code), str(answer.get("message") or "no description"))
        return answer["data"] if isinstance(answer.get("data"), dict) else {}

    async def fetch(self, url: str, max_bytes: int) -> bytes:
        """Download a member's picture from Zalo's CDN, refusing it once it grows past the cap."""
        return await download_capped(self.client, url, max_bytes, self.media_hosts)

    async def aclose(self) -> None:
        """Close pooled connections when the worker stops."""
        await self.client.aclose()


def reported_remaining(data: dict[str, Any]) -> int | None:
    """`remain` of the `quota` object Zalo adds to a send's answer (Official Account API,
    "Gửi tin tư vấn": `{"quota": {"quota_type", "remain", "total", "expired_date"}}`); numbers
    may come as strings. None when the answer carries none."""
    quota = data.get("quota")
    if not isinstance(quota, dict):
        return None
    remain = quota.get("remain")
    if isinstance(remain, bool):
        return None
    if isinstance(remain, int):
        return remain
    if isinstance(remain, str) and remain.strip().lstrip("-").isdigit():
        return int(remain)
    return None


def failure(err: ZaloApiError) -> SendResult:
    """A Zalo error in the sender's terms: retry, slow down, or give up with a reason."""
    text = f"Zalo {err.code if err.code is not None else 'network'}: {err.description}"
    if err.code is None:
        return SendResult(ok=False, error=f"network: {text}")
    if err.code in WINDOW_CODES:
        return SendResult(ok=False, final=True,
                          error=f"outside the Zalo messaging window (not followed, blocked or "
                                f"no recent interaction): {text}")
    if err.code == -32:
        return SendResult(ok=False, error=f"rate limited: {text}", retry_after=RATE_LIMITED_WAIT)
    if err.code in RETRY_CODES:
        return SendResult(ok=False, error=f"try again later: {text}")
    if err.code in TOKEN_CODES:
        # A token refused even after a refresh is the deployment's fault, not the message's:
        # the row is tried again later, never dropped.
        log.error("Zalo refused a freshly refreshed access token: %s", err.description)
        return SendResult(ok=False, error=f"access token refused after a refresh: {text}")
    return SendResult(ok=False, final=True, error=f"refused by Zalo: {text}")
