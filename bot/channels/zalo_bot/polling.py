"""Zalo Bot Platform's events by getUpdates, for deployments without a public URL, and the switch
to and from the webhook (`duan8 zalo-bot set-webhook`, `delete-webhook`)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from bot.channels import polling
from bot.channels.port import Database
from bot.channels.zalo_bot.inbound import handle_update
from bot.channels.zalo_bot.outbound import ZaloBotApi, ZaloBotError
from bot.config import Config
from bot.dispatcher import Dispatcher

log = logging.getLogger(__name__)

MODE_KEY = "zalo_bot.mode"
POLL_TIMEOUT = 25  # getUpdates' own default is 30 s; a little less keeps proxies from cutting it
HANDLE_ATTEMPTS = 4  # about 7 s of retries when the database is briefly away


class ZaloBotPoller:
    """getUpdates for deployments without a public URL.

    Events carry no update_id and getUpdates takes no offset: Zalo hands each event out once.
    The dispatcher's dedupe on event name + message id makes a redelivery after a crash
    harmless, so nothing else is stored.
    """

    def __init__(self, api: ZaloBotApi, dispatcher: Dispatcher, *,
                 timeout: int = POLL_TIMEOUT) -> None:
        self.api = api
        self.dispatcher = dispatcher
        self.timeout = timeout

    async def poll_once(self, timeout: int | None = None) -> int:
        """Fetch and handle one batch; returns how many events it held."""
        wait = self.timeout if timeout is None else timeout
        try:
            # The docs type `timeout` as a string of seconds.
            result = await self.api.call("getUpdates", {"timeout": str(wait)}, timeout=wait + 10)
        except ZaloBotError as err:
            if err.code == 408:  # the long poll ended with nothing to hand out
                return 0
            raise
        if isinstance(result, list):
            updates = [u for u in result if isinstance(u, dict)]
        else:  # the docs show one event per answer, not a list
            updates = [result] if isinstance(result, dict) and result else []
        for update in updates:
            await self._handle(update)
        return len(updates)

    async def _handle(self, update: dict[str, Any]) -> None:
        """Zalo hands an event out once, so a failed save is retried here before giving up."""
        for attempt in range(HANDLE_ATTEMPTS):
            try:
                await asyncio.to_thread(handle_update, self.dispatcher, update)
                return
            except Exception:
                if attempt == HANDLE_ATTEMPTS - 1:
                    log.exception("lost a Zalo Bot event after %d tries", HANDLE_ATTEMPTS)
                    return
                await asyncio.sleep(2.0 ** attempt)

    async def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set, backing off while Zalo or the network is failing."""
        # Any failure: a poller that dies would silently stop all answers.
        await polling.poll_until_stopped(self.poll_once, stop, platform="Zalo Bot",
                                         recoverable=(Exception,))


async def set_webhook(config: Config, db: Database, url: str) -> None:
    """Point Zalo at our webhook, with the secret it must send back in every request."""
    secret = config.zalo_bot_webhook_secret or ""
    if not 8 <= len(secret) <= 256:
        raise ValueError("ZALO_BOT_WEBHOOK_SECRET must be set, 8 to 256 characters")
    api = ZaloBotApi(config)
    try:
        await api.call("setWebhook", {"url": url, "secret_token": secret})
    finally:
        await api.aclose()
    await polling.set_mode(db, MODE_KEY, webhook=True)


async def delete_webhook(config: Config, db: Database) -> None:
    """Back to polling: getUpdates does not work while a webhook is set."""
    api = ZaloBotApi(config)
    try:
        await api.call("deleteWebhook")
    finally:
        await api.aclose()
    await polling.set_mode(db, MODE_KEY, webhook=False)
