"""Zalo Official Account's outward side, in the worker's event loop: sending and photo downloads.

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

Before a row goes out, `may_send` checks the reply window and the free-reply quota
(quota.py); a row that fits neither is left to the shared sender's window rule.

httpx is used directly: no maintained asyncio SDK for the OA API exists, and we make few calls.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bot.channels.base import ChannelStart, MediaHosts, SendResult, download_capped
from bot.channels.port import PRIORITY_REPLY, ChannelPort, Database, OutboundMessage, utcnow
from bot.channels.zalo_oa.buttons import with_buttons
from bot.channels.zalo_oa.inbound import CHANNEL, quote_key, remember_buttons
from bot.channels.zalo_oa.media import (
    Attachments,
    Part,
    PhotoRefused,
    compose,
    photo_message,
    text_message,
)
from bot.channels.zalo_oa.quota import ReplyQuota, ZaloPolicy
from bot.channels.zalo_oa.tokens import ZaloTokenError, ZaloTokens
from bot.config import Config
from bot.dispatcher import Dispatcher
from bot.ratelimit import Limits

log = logging.getLogger(__name__)

TOKEN_INVALID = -216
TOKEN_EXPIRED = -220
TOKEN_CODES = frozenset({TOKEN_INVALID, TOKEN_EXPIRED})
WINDOW_CODES = frozenset({-213, -217, -227, -230, -232, -234, -244})
RETRY_CODES = frozenset({-32, -100})
KEEP_QUOTE_CODES = WINDOW_CODES | RETRY_CODES | TOKEN_CODES  # errors a quote cannot cause
RATE_LIMITED_WAIT = 30.0  # seconds the whole channel pauses after -32, which has no stated wait
KEEPER_INTERVAL = 600.0  # seconds between token checks when nothing is being sent
# Zalo publishes no per-second send rate for consultation messages, only quotas and the -32
# "try later" error. 10/s overall stays well under what a single OA is seen to sustain and still
# delivers a province's thousand members in under two minutes; one a second per chat keeps a
# member's replies in order and readable on a slow phone.
ZALO_OA = Limits(per_second=10.0, per_chat_per_second=1.0)


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
            timeout=httpx.Timeout(timeout, connect=5.0),
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


class ZaloSender:
    """Renders outbox payloads as consultation messages; keeps the token fresh as it goes."""

    name = CHANNEL
    limits = ZALO_OA

    def __init__(self, api: ZaloApi, tokens: ZaloTokens, db: Database, *,
                 max_photo_bytes: int = 5 * 1024 * 1024, policy: ZaloPolicy | None = None,
                 window: timedelta | None = None, quota: int | None = None,
                 media_dir: Path | None = None) -> None:
        self.api = api
        self.tokens = tokens
        self.db = db
        self.max_photo_bytes = max_photo_bytes
        policy = policy or ZaloPolicy()
        if window is not None:  # a test's or an operator's override of the free window
            policy = replace(policy, free_window=window)
        if quota is not None:  # 0: no count
            policy = replace(policy, free_quota=quota or None)
        self.policy = policy
        self.quota = ReplyQuota(db, policy.free_quota)
        self.attachments = Attachments(db, media_dir)
        # Zalo's own word on a member's remaining free messages, from `quota` in a send's
        # answer: user id -> (the member's last message it counts from, remaining).
        self.reported: dict[str, tuple[datetime | None, int]] = {}

    @property
    def window(self) -> timedelta:
        return self.policy.free_window

    def is_group(self, external_id: str) -> bool:
        """Never: an OA talks to one person at a time."""
        return False

    def is_paced(self, payload: dict[str, Any]) -> bool:
        """Acknowledgements cost Zalo nothing (none are sent); everything else is paced."""
        return payload.get("kind") != "ack"

    def may_send(self, message: OutboundMessage, now: datetime) -> bool:
        """Only within the window after the member's last message and its free-reply quota."""
        if message.payload.get("kind") == "ack":
            return True
        last = message.last_inbound_at
        if last is None:
            return False
        age = now - last
        if age >= self.policy.billed_until():
            return False
        if age >= self.policy.free_window:
            return True  # billed: the operator chose to pay for these (ZALO_USE_BILLED)
        reported = self.reported.get(message.external_id)
        if reported is not None and reported[0] == last and reported[1] <= 0:
            # Zalo said no free message is left since this member last wrote.
            return self.policy.use_billed
        return self.quota.allows(message, now) or self.policy.use_billed

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one outbox row as consultation texts and photos, uploads first."""
        payload = message.payload
        if payload.get("kind") == "ack":
            return SendResult(ok=True)  # no button spinners to stop on Zalo
        plan = compose(payload)
        reply = message.priority <= PRIORITY_REPLY
        quote = await asyncio.to_thread(self._setting, quote_key(message.external_id)) \
            if reply else None
        sent, sent_id = 0, None
        try:
            token = await self.tokens.ensure_fresh()
            # Every photo is uploaded before anything is sent: a refused photo costs the
            # member no half-delivered message and the quota no message.
            photos: dict[int, tuple[str, bool]] = {}
            for part in plan.parts:
                if part.media_id is not None and part.media_id not in photos:
                    token, photos[part.media_id] = await self._attachment(token, part.media_id)
            for part in plan.parts:
                token, sent_id, quote = await self._send_part(token, message.external_id, part,
                                                              photos, quote)
                sent += 1
                remain = self.api.remaining.pop(message.external_id, None)
                if remain is not None:
                    self.reported[message.external_id] = (message.last_inbound_at, remain)
        except ZaloTokenError as exc:
            return SendResult(ok=False, error=f"Zalo token: {exc}")
        except PhotoRefused as exc:
            return SendResult(ok=False, final=exc.final, error=f"Zalo photo: {exc}")
        except ZaloApiError as err:
            return failure(err)
        finally:
            self.quota.note(message, sent, utcnow())
        if plan.choices or reply:
            # A reply decides what "1" means next; a broadcast without buttons leaves it be.
            await asyncio.to_thread(self._remember, message.external_id, plan.choices)
        return SendResult(ok=True, platform_message_id=sent_id)

    async def _attachment(self, token: str, media_id: int) -> tuple[str, tuple[str, bool]]:
        """A photo's attachment id (cached or uploaded now); on -216/-220 refresh once, retry."""
        current = token

        async def upload(data: bytes, name: str, content_type: str) -> str:
            nonlocal current
            try:
                try:
                    return await self.api.upload_image(current, data, name, content_type)
                except ZaloApiError as err:
                    if err.code not in TOKEN_CODES:
                        raise
                current = str((await self.tokens.refresh(rejected=current)).access_token)
                return await self.api.upload_image(current, data, name, content_type)
            except ZaloApiError as err:  # say which photo, keep Zalo's code for failure()
                raise ZaloApiError(err.code, f"uploading photo {media_id}: "
                                             f"{err.description}") from None

        found = await self.attachments.get(media_id, upload)
        return current, found

    async def _send_part(self, token: str, user_id: str, part: Part,
                         photos: dict[int, tuple[str, bool]],
                         quote: str | None) -> tuple[str, str | None, str | None]:
        """One message; a photo whose remembered attachment id Zalo refuses is uploaded anew."""
        if part.media_id is None:
            plain = text_message(part.text or "…")
            if not part.buttons:
                return await self._deliver(token, user_id, plain, quote)
            return await self._deliver(token, user_id, with_buttons(plain, list(part.buttons)),
                                       quote, plain=plain)
        attachment_id, fresh = photos[part.media_id]
        try:
            return await self._deliver(token, user_id, photo_message(attachment_id, part.text),
                                       quote)
        except ZaloApiError as err:
            if fresh or err.code is None or err.code in KEEP_QUOTE_CODES:
                raise
            # Zalo states no lifetime for attachment ids; one it no longer knows is uploaded once.
            log.info("Zalo refused remembered attachment %s of photo %s (%s); uploading again",
                     attachment_id, part.media_id, err)
            await self.attachments.forget(part.media_id, attachment_id)
            token, photos[part.media_id] = await self._attachment(token, part.media_id)
            return await self._deliver(token, user_id,
                                       photo_message(photos[part.media_id][0], part.text), quote)

    async def _deliver(self, token: str, user_id: str, body: dict[str, Any],
                       quote: str | None, *, plain: dict[str, Any] | None = None,
                       ) -> tuple[str, str | None, str | None]:
        """One message: -216/-220 refresh once; refused buttons (`plain` is the message without
        them), then a refused quote, are each dropped once rather than lose the answer.

        Returns the token to go on with, Zalo's message id and the quote still in use.
        """
        refreshed = False
        while True:
            try:
                return token, await self.api.send_message(token, user_id, body, quote), quote
            except ZaloApiError as err:
                if err.code in TOKEN_CODES and not refreshed:
                    refreshed = True
                    token = str((await self.tokens.refresh(rejected=token)).access_token)
                    continue
                refused = err.code is not None and err.code not in KEEP_QUOTE_CODES
                if refused and plain is not None:
                    # Buttons first: the numbered list in the text still offers every choice,
                    # while a reply without its quote may cost a paid message.
                    log.warning("Zalo refused query buttons (%s); sending the numbered text "
                                "alone", err)
                    body, plain = plain, None
                    continue
                if quote and refused:
                    # An unusable quote must not cost the member the answer: send it plainly.
                    log.info("Zalo refused quoting %s (%s); sending without the quote",
                             quote, err)
                    quote = None
                    continue
                raise

    def _setting(self, key: str) -> str | None:
        """A small stored value (the quote id, a long photo URL), read off the event loop."""
        return ChannelPort(self.db).value(key)

    def _remember(self, user_id: str, choices: list[dict[str, str]]) -> None:
        """Record what a typed number means for this member from now on."""
        remember_buttons(ChannelPort(self.db), user_id, choices)

    async def fetch_media(self, url: str) -> bytes:
        """Download a member's photo from the URL its event carried."""
        return await self.api.fetch(url, self.max_photo_bytes)


class TokenKeeper:
    """Keeps the tokens alive when nothing is sent: a refresh token unused for ≈3 months dies."""

    def __init__(self, tokens: ZaloTokens, *, interval: float = KEEPER_INTERVAL) -> None:
        self.tokens = tokens
        self.interval = interval

    async def run(self, stop: threading.Event) -> None:
        """Check the tokens now and every `interval` seconds until the worker stops."""
        while not stop.is_set():
            try:
                await self.tokens.ensure_fresh()
            except Exception as exc:  # a keeper that dies would let the refresh token lapse
                log.error("Zalo token check failed: %s", exc)
            waited = 0.0
            while waited < self.interval and not stop.is_set():
                await asyncio.sleep(1.0)
                waited += 1.0


async def start(config: Config, db: Database, dispatcher: Dispatcher) -> ChannelStart:
    """Connect Zalo OA for the worker: sender, photo downloads and a token keeper."""
    if not config.zalo_app_id or not config.zalo_app_secret:
        raise ValueError("ZALO_APP_ID and ZALO_APP_SECRET must be set: without them the Zalo "
                         "access token cannot be refreshed and stops working within a day")
    if not config.zalo_oa_secret_key:
        log.warning("ZALO_OA_SECRET_KEY is not set: every Zalo webhook will be refused")
    tokens = ZaloTokens(config, db)
    await asyncio.to_thread(tokens.load)
    api = ZaloApi(config)
    sender = ZaloSender(api, tokens, db, max_photo_bytes=config.max_photo_bytes,
                        policy=ZaloPolicy.of(config), media_dir=config.media_path)
    log.info("Zalo OA channel ready; free replies for %s after a member's message (%s), "
             "billed messages %s", sender.policy.free_window,
             f"at most {sender.policy.free_quota}" if sender.policy.free_quota else "no count",
             f"up to {sender.policy.billed_until()}" if sender.policy.use_billed else "not used")
    return ChannelStart(sender=sender, fetchers={CHANNEL: sender.fetch_media},
                        poller=TokenKeeper(tokens), closers=[api.aclose])
