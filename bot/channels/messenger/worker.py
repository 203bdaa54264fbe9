"""What the worker runs for Messenger: the sender and photo downloads (no polling: Meta only
calls the webhook)."""

from __future__ import annotations

from bot.channels.base import ChannelStart
from bot.channels.messenger.inbound import CHANNEL
from bot.channels.messenger.outbound import FacebookSender, make_client, media_out
from bot.channels.port import Database
from bot.config import Config
from bot.dispatcher import Dispatcher


async def start(config: Config, db: Database, dispatcher: Dispatcher) -> ChannelStart:
    """Connect Messenger for the worker: the sender and photo downloads; no polling."""
    client = make_client(config)
    sender = FacebookSender(config, client, media_out(db, config.media_path))
    return ChannelStart(sender=sender, fetchers={CHANNEL: sender.fetch_media},
                        closers=[client.aclose])

