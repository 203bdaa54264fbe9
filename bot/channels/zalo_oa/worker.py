"""What the worker runs for Zalo OA: the sender, photo downloads and the token keeper (no polling:
Zalo only calls the webhook)."""

from __future__ import annotations

import asyncio
import logging

from bot.channels.base import ChannelStart
from bot.channels.port import Database
from bot.channels.zalo_oa.api import ZaloApi
from bot.channels.zalo_oa.inbound import CHANNEL
from bot.channels.zalo_oa.outbound import ZaloSender
from bot.channels.zalo_oa.quota import ZaloPolicy
from bot.channels.zalo_oa.tokens import TokenKeeper, ZaloTokens
from bot.config import Config
from bot.dispatcher import Dispatcher

log = logging.getLogger(__name__)


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
