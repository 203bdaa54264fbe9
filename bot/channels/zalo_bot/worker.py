"""What the worker runs for Zalo Bot: the sender, photo downloads, and the poller unless a
webhook is set."""

from __future__ import annotations

import json
import logging

from bot.channels import polling
from bot.channels.base import ChannelStart
from bot.channels.port import Database
from bot.channels.zalo_bot.inbound import CHANNEL
from bot.channels.zalo_bot.outbound import ZaloBotApi, ZaloBotError, ZaloBotSender
from bot.channels.zalo_bot.polling import MODE_KEY, ZaloBotPoller
from bot.config import Config
from bot.dispatcher import Dispatcher

log = logging.getLogger(__name__)


async def start(config: Config, db: Database, dispatcher: Dispatcher) -> ChannelStart:
    """Connect Zalo Bot for the worker: sender, photo downloads, and polling unless webhooked."""
    api = ZaloBotApi(config)
    try:
        me = await api.call("getMe")
        log.info("Zalo Bot connected as %s", json.dumps(me, ensure_ascii=False)[:200])
    except ZaloBotError as err:
        if err.code is not None and err.code < 500:
            await api.aclose()
            raise  # a wrong token: say so at start, not on every send
        log.warning("Zalo Bot getMe failed (%s); starting anyway", err)
    sender = ZaloBotSender(api, db, max_photo_bytes=config.max_photo_bytes)
    poller = await polling.poller_if_wanted(db, MODE_KEY, lambda: ZaloBotPoller(api, dispatcher))
    return ChannelStart(sender=sender, fetchers={CHANNEL: sender.fetch_media}, poller=poller,
                        closers=[api.aclose])
