"""Zalo Official Account's outbound side, in the worker's event loop: a neutral message becomes
consultation texts and photos (media.py), with query buttons (buttons.py), sent through the OA
API (api.py) with a token kept fresh (tokens.py).

Before a row goes out, `may_send` checks the reply window and the free-reply quota (quota.py); a
row that fits neither is left to the shared sender's window rule.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.channels.base import SendResult
from bot.channels.port import PRIORITY_REPLY, ChannelPort, Database, OutboundMessage, utcnow
from bot.channels.zalo_oa.api import KEEP_QUOTE_CODES, TOKEN_CODES, ZaloApi, ZaloApiError, failure
from bot.channels.zalo_oa.buttons import with_buttons
from bot.channels.zalo_oa.inbound import BUTTONS, CHANNEL, quote_key
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
from bot.ratelimit import Limits

log = logging.getLogger(__name__)

# Zalo publishes no per-second send rate for consultation messages, only quotas and the -32
# "try later" error. 10/s overall stays well under what a single OA is seen to sustain and still
# delivers a province's thousand members in under two minutes; one a second per chat keeps a
# member's replies in order and readable on a slow phone.
ZALO_OA = Limits(per_second=10.0, per_chat_per_second=1.0)


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
        BUTTONS.remember(ChannelPort(self.db), user_id, choices)

    async def fetch_media(self, url: str) -> bytes:
        """Download a member's photo from the URL its event carried."""
        return await self.api.fetch(url, self.max_photo_bytes)
