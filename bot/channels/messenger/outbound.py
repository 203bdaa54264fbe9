"""Facebook Messenger's outbound side, in the worker's event loop: Send API, uploads, photos.

Platform facts are in the shared PLATFORMS.md notes (Messenger section) and Meta's references:
Send API https://developers.facebook.com/docs/messenger-platform/reference/send-api/,
quick replies https://developers.facebook.com/docs/messenger-platform/send-messages/quick-replies/,
errors https://developers.facebook.com/docs/messenger-platform/error-codes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bot.channels.base import (
    EMPTY_ERROR,
    SendResult,
    split_text,
    text_to_send,
)
from bot.channels.download import MediaHosts, download_capped
from bot.channels.media_out import MediaOut, MediaRefused, OutgoingFile, media_ids
from bot.channels.messenger.inbound import CHANNEL
from bot.channels.port import Database, OutboundMessage
from bot.channels.tls import client_tls
from bot.config import Config
from bot.ratelimit import Limits

log = logging.getLogger(__name__)

# Meta: 300 Send API calls/s per Page for text (PLATFORMS.md); headroom absorbs network jitter.
LIMITS = Limits(per_second=250.0)
TEXT_LIMIT = 2000  # Send API: text is at most 2,000 characters
MAX_QUICK_REPLIES = 13  # quick replies: at most 13 ...
TITLE_LIMIT = 20  # ... each titled in at most 20 characters (longer ones are cut by Messenger)
PAYLOAD_LIMIT = 1000  # ... with a payload of at most 1,000 characters
WINDOW = timedelta(hours=24)  # the standard messaging window after the member's last message
# Non-promotional message tags that may reach a member outside the window (PLATFORMS.md).
# HUMAN_AGENT is left out: it is for a person answering, never for this bot.
ALLOWED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"})
RATE_LIMIT_WAIT = 60.0  # Graph rate-limit errors carry no wait; a minute lets the quota refill
# Graph rate limiting: 4 application, 17 user, 32 page, 613 "calls exceeded the rate limit".
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
OUTSIDE_WINDOW = (10, 2018278)  # "This message is sent outside of allowed window"
# Unreachable, for good: 551 / 1545041 "This person isn't available right now" and 100 / 2018001
# "No matching user found" (Messenger Platform, "Send API error codes").
UNREACHABLE_CODES = frozenset({551})
UNREACHABLE_SUBCODES = frozenset({1545041, 2018001})
# 2018108 / 2018109: sources disagree. Some read them as the person blocking the Page; others
# (integrators' reports) see them when the app lacks review for pages_messaging or the
# recipient is not a tester of an app in development. Marking members unreachable on them could
# silence a whole deployment, so they are refusals an admin sees as a likely configuration fault.
CONFIGURATION_SUBCODES = frozenset({2018108, 2018109})
TOKEN_CODE = 190  # the access token is invalid or expired

_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s\"']+")


class RedactToken(logging.Filter):
    """httpx logs every request URL at INFO, and the Page token rides in its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "access_token=" in message:
            record.msg, record.args = _TOKEN_IN_URL.sub(r"\1[redacted]", message), ()
        return True


def _redact_httpx_logs() -> None:
    """Install the redaction once on httpx's logger (it logs under the name "httpx")."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactToken) for f in logger.filters):
        logger.addFilter(RedactToken())


def bearer(token: str) -> dict[str, str]:
    """The Page token as a header: Graph takes OAuth 2.0 bearer tokens (the same host's
    WhatsApp Cloud API reference sends every call so), and a header stays out of URLs that
    proxies and access logs keep."""
    return {"Authorization": f"Bearer {token}"}


def make_client(config: Config, *, pool: int = 64) -> httpx.AsyncClient:
    """One connection pool to FB_GRAPH_URL, so tests and proxies can stand in for Graph."""
    _redact_httpx_logs()
    return httpx.AsyncClient(
        base_url=config.fb_graph_url, verify=client_tls(),
        timeout=httpx.Timeout(15.0, connect=5.0),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
    )


def message_tag(payload: dict[str, Any]) -> str | None:
    """The message tag a payload asks for, if it is one this bot may use."""
    tag = payload.get("tag")
    return tag if isinstance(tag, str) and tag in ALLOWED_TAGS else None


def in_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Within 24 hours of the member's last message, any reply may be sent."""
    return last_inbound_at is not None and now - last_inbound_at < WINDOW


def choices(text: str, buttons: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """Buttons as quick replies; too many or too long become a numbered list in the text.

    Messenger would cut a title after 20 characters ("Truyền thông trực tiế…"), so a member
    could not tell long choices apart; numbers keep every word readable.
    """
    if not buttons:
        return text, []
    fits = len(buttons) <= MAX_QUICK_REPLIES and all(
        0 < len(b["label"]) <= TITLE_LIMIT for b in buttons)
    if fits:
        return text, [{"content_type": "text", "title": b["label"],
                       "payload": b["payload"][:PAYLOAD_LIMIT]} for b in buttons]
    if len(buttons) > MAX_QUICK_REPLIES:
        log.warning("%d choices for Messenger: only the first %d can be pressed",
                    len(buttons), MAX_QUICK_REPLIES)
    listing = "\n".join(f"{n}. {b.get('full') or b['label']}"
                        for n, b in enumerate(buttons, start=1))
    replies = [{"content_type": "text", "title": str(n), "payload": b["payload"][:PAYLOAD_LIMIT]}
               for n, b in enumerate(buttons[:MAX_QUICK_REPLIES], start=1)]
    return (f"{text}\n\n{listing}" if text else listing), replies


def render_messages(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The Send API `message` objects for one outbox payload, quick replies on the last."""
    text, replies = choices(payload.get("text") or "", payload.get("buttons") or [])
    sendable = text_to_send(text.strip(), has_extras=bool(replies))
    if sendable is None:
        return []
    parts = split_text(sendable, TEXT_LIMIT)
    messages: list[dict[str, Any]] = [{"text": part} for part in parts]
    if replies:
        messages[-1]["quick_replies"] = replies
    return messages


def graph_failure(status: int, body: Any, headers: httpx.Headers | None = None) -> SendResult:
    """A Graph error answer in the sender's terms: wait, retry, give up, or unreachable."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    sub = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    message = str(error.get("message") or f"HTTP {status}")
    facts = [f"code {code}" + (f"/{sub}" if sub else "")] if code is not None else []
    facts += [f"fbtrace_id {error['fbtrace_id']}"] if error.get("fbtrace_id") else []
    detail = f"{message} ({', '.join(facts)})" if facts else message
    if status == 429 or code in RATE_LIMIT_CODES:
        wait = (headers or httpx.Headers()).get("Retry-After", "")
        seconds = float(wait) if wait.isdigit() else RATE_LIMIT_WAIT
        return SendResult(ok=False, error=f"rate limited by Messenger: {detail}",
                          retry_after=max(seconds, 1.0))
    if (code, sub) == OUTSIDE_WINDOW:
        # Not unreachable: the member can write again, and then we may answer.
        return SendResult(ok=False, outside_window=True,
                          error=f"outside the Messenger 24-hour window: {detail}")
    if code in UNREACHABLE_CODES or sub in UNREACHABLE_SUBCODES:
        return SendResult(ok=False, unreachable=True, error=f"unreachable on Messenger: {detail}")
    if sub in CONFIGURATION_SUBCODES:
        log.warning("Messenger refused a message with %s; check the app's review status and "
                    "that it is live, not in development", detail)
        return SendResult(ok=False, final=True,
                          error=f"refused by Messenger, probably the app's configuration (not "
                                f"reviewed for pages_messaging, or in development mode and the "
                                f"person is not a tester): {detail}")
    if code == TOKEN_CODE:
        return SendResult(ok=False, final=True,
                          error=f"the Page access token (FB_PAGE_ACCESS_TOKEN) was refused: "
                                f"{detail}")
    if status >= 500 or code in (1, 2):  # 1/2: "unknown"/"unexpected" error, retry later
        return SendResult(ok=False, error=f"Messenger error: {detail}")
    if 400 <= status < 500:
        return SendResult(ok=False, final=True, error=f"refused by Messenger: {detail}")
    return SendResult(ok=False, error=f"Messenger error: {detail}")


def json_body(response: httpx.Response) -> Any:
    """The body as JSON, or None when Graph (or a proxy) answered something else."""
    try:
        return response.json()
    except ValueError:
        return None


# Messenger Platform, "Saving assets": image, audio, video and file attachments up to 25 MB;
# reusable attachment ids expire after 90 days, so one older than 80 is uploaded again.
ATTACHMENT_LIMITS = {"image": 25 * 1000 * 1000, "video": 25 * 1000 * 1000,
                     "file": 25 * 1000 * 1000}
ATTACHMENT_MAX_AGE = 80 * 24 * 3600.0


class UploadFailed(Exception):
    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error)
        self.result = result


def media_out(db: Database, media_dir: Path | None) -> MediaOut:
    """Messenger's reusable attachments, uploaded once per file (Attachment Upload API)."""
    return MediaOut(db, media_dir, key_prefix="facebook.attachment.", limits=ATTACHMENT_LIMITS,
                    max_age=ATTACHMENT_MAX_AGE)


class FacebookSender:
    """Renders outbox payloads as Send API calls and downloads the photos members send."""

    name = CHANNEL
    limits = LIMITS

    def __init__(self, config: Config, client: httpx.AsyncClient,
                 media: MediaOut | None = None) -> None:
        self.config = config
        self.client = client
        self.token = config.fb_page_access_token or ""
        self.media = media  # without it, a payload's files are left out (tests of text alone)

    def is_group(self, external_id: str) -> bool:
        return False  # Page conversations are one-to-one

    def is_paced(self, payload: dict[str, Any]) -> bool:
        return payload.get("kind") != "ack"

    def may_send(self, message: OutboundMessage, now: datetime) -> bool:
        """Inside the 24-hour window anything; outside only a permitted message tag."""
        if message.payload.get("kind") == "ack" or in_window(message.last_inbound_at, now):
            return True
        return message_tag(message.payload) is not None

    async def send(self, message: OutboundMessage) -> SendResult:
        payload = message.payload
        if payload.get("kind") == "ack":
            return SendResult(ok=True)  # Messenger has no button spinner to stop
        tag = message_tag(payload)
        # A tagged message keeps its tag even inside the window: valid there too, and safe if
        # the window closes while the row waits for its turn.
        envelope: dict[str, Any] = {"recipient": {"id": message.external_id},
                                    "messaging_type": "MESSAGE_TAG" if tag else "RESPONSE"}
        if tag:
            envelope["tag"] = tag
        if self.media is not None and media_ids(payload):
            return await self._send_with_files(envelope, payload)
        sent_id: str | None = None
        parts = render_messages(payload)
        if not parts:
            return SendResult(ok=False, final=True, error=EMPTY_ERROR)
        for part in parts:
            result = await self._post({**envelope, "message": part})
            if not result.ok:
                return result
            sent_id = result.platform_message_id
        return SendResult(ok=True, platform_message_id=sent_id)

    async def _send_with_files(self, envelope: dict[str, Any],
                               payload: dict[str, Any]) -> SendResult:
        """The text, then each file as an attachment by its reusable id; the quick replies on
        the last message, where Messenger shows them. Every file is checked first."""
        assert self.media is not None
        try:
            files = await self.media.files(payload)
        except MediaRefused as exc:
            return SendResult(ok=False, final=exc.final, error=str(exc))
        text, replies = choices(payload.get("text") or "", payload.get("buttons") or [])
        messages: list[dict[str, Any]] = [
            {"text": part} for part in (split_text(text.strip(), TEXT_LIMIT)
                                        if text.strip() else [])]
        first_file = len(messages)
        messages += [{"attachment": {"type": f.kind, "payload": {}}} for f in files]
        if replies:
            messages[-1]["quick_replies"] = replies
        sent_id: str | None = None
        for index, message in enumerate(messages):
            file = files[index - first_file] if index >= first_file else None
            result = await (self._post({**envelope, "message": message}) if file is None
                            else self._post_file(envelope, message, file))
            if not result.ok:
                return result
            sent_id = result.platform_message_id
        return SendResult(ok=True, platform_message_id=sent_id)

    async def _post_file(self, envelope: dict[str, Any], message: dict[str, Any],
                         file: OutgoingFile) -> SendResult:
        """One attachment message; an id Messenger no longer knows is uploaded once more."""
        assert self.media is not None
        for attempt in range(2):
            try:
                attachment_id, _uploaded = await self.media.platform_id(file, self._upload)
            except UploadFailed as exc:
                return exc.result
            body = {**envelope, "message": {**message, "attachment": {
                "type": file.kind, "payload": {"attachment_id": attachment_id}}}}
            result = await self._post(body)
            if result.ok or attempt or "attachment" not in (result.error or "").lower():
                return result
            await self.media.forget(file.media_id, attachment_id)
        return result

    async def _upload(self, file: OutgoingFile) -> str:
        """Attachment Upload API: the file as `filedata`, saved as reusable; its id."""
        data = await asyncio.to_thread(file.read)
        spec = {"attachment": {"type": file.kind, "payload": {"is_reusable": True}}}
        try:
            response = await self.client.post(
                f"/{self.config.fb_graph_version}/me/message_attachments",
                data={"message": json.dumps(spec)},
                files={"filedata": (file.name, data, file.content_type)},
                headers=bearer(self.token), timeout=httpx.Timeout(120.0, connect=5.0))
        except httpx.TransportError as exc:
            raise UploadFailed(SendResult(ok=False, error=f"network: {type(exc).__name__}: "
                                                          f"{exc}")) from exc
        answer = json_body(response)
        attachment_id = answer.get("attachment_id") if isinstance(answer, dict) else None
        if response.is_success and attachment_id:
            return str(attachment_id)
        if response.is_success:
            raise UploadFailed(SendResult(ok=False, error="Messenger answered an upload "
                                                          "without an attachment_id"))
        raise UploadFailed(graph_failure(response.status_code, answer, response.headers))

    async def _post(self, body: dict[str, Any]) -> SendResult:
        """One Send API call."""
        try:
            response = await self.client.post(
                f"/{self.config.fb_graph_version}/me/messages", json=body,
                headers=bearer(self.token))
        except httpx.TimeoutException as exc:
            return SendResult(ok=False, error=f"network: timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return SendResult(ok=False, error=f"network: {type(exc).__name__}: {exc}")
        data = json_body(response)
        if response.is_success:
            mid = data.get("message_id") if isinstance(data, dict) else None
            return SendResult(ok=True, platform_message_id=str(mid) if mid else None)
        return graph_failure(response.status_code, data, response.headers)

    async def fetch_media(self, url: str) -> bytes:
        """Download a photo a member sent, from its attachment URL: only Meta's CDN
        (FB_MEDIA_HOSTS) over HTTPS, or the configured Graph root."""
        hosts = MediaHosts(self.config.media_hosts.get(CHANNEL, ()), self.config.fb_graph_url)
        return await download_capped(self.client, url, self.config.max_photo_bytes, hosts)
