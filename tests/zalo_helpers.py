"""What the Zalo OA test modules share: the app wired to a fake OA API, and recorded events.

Each test module declares its own four-line `zh` fixture around `running()`: a fixture imported
by name would read as an unused import that the test arguments shadow.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

from channel_harness import ChannelHarness, channel_config
from fakes.zalo_api import FakeZalo, sign

from bot.channels.base import ChannelSender
from bot.channels.zalo_oa import inbound as zalo
from bot.channels.zalo_oa.api import ZaloApi
from bot.channels.zalo_oa.outbound import ZaloSender
from bot.channels.zalo_oa.tokens import EXPIRES_KEY, ZaloTokens, stored_pair
from messages_vi import _, render
from storage import settings
from storage.models import utcnow

PAYLOADS = Path(__file__).parent / "payloads" / "zalo"
USER = "7654321098765432109"  # longer than 2^53, like every Zalo id
_msg_ids = itertools.count(8901234567890200000)
_stamps = itertools.count()
_restamped: dict[str, str] = {}


def now_ms() -> str:
    """A Zalo event time (ms since the epoch) as of now, distinct for each call."""
    return str(int(time.time() * 1000) + next(_stamps) % 1000)


def vi(msgid: str, **params: object) -> str:
    """A catalog message as a member reads it."""
    return render(_(msgid, **params), "vi")


def payload(name: str) -> dict:
    """A recorded-style event from tests/payloads/zalo/."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


class Harness(ChannelHarness):
    """The real app with the Zalo channel configured against the fake, and a way to send."""

    def __init__(self, db_url: str, tmp_path: Path, fake: FakeZalo, **env: str) -> None:
        self.fake = fake
        self.oa_secret = secrets.token_urlsafe(24)
        super().__init__(channel_config(db_url, tmp_path, **{
            "ZALO_APP_ID": fake.app_id, "ZALO_APP_SECRET": fake.app_secret,
            "ZALO_OA_SECRET_KEY": self.oa_secret, "ZALO_OA_ACCESS_TOKEN": fake.access_token,
            "ZALO_OA_REFRESH_TOKEN": fake.refresh_token, "ZALO_API_URL": fake.url,
            "ZALO_OAUTH_URL": fake.url, **env}), zalo.init_app, "zalo")

    # --- webhook

    def event(self, name: str, user: str = USER, **message: object) -> dict:
        event = copy.deepcopy(payload(name))
        for side in ("sender", "follower"):
            if side in event:
                event[side]["id"] = user
        if "message" in event:
            event["message"]["msg_id"] = str(next(_msg_ids))
            event["message"].update(message)
        event["timestamp"] = now_ms()
        return event

    def post(self, event: dict | bytes, *, signature: str | None = "default",
             app_id: str | None = None, secret: str | None = None):
        if isinstance(event, dict) and str(event.get("timestamp", "")).isdigit() and abs(
                int(event["timestamp"]) - time.time() * 1000) > 60_000:
            # The fixtures carry fictional times, and a webhook refuses events far from now:
            # each is stamped as sent now, the same stamp for a retry of the same event.
            stamp = _restamped.setdefault(str(event["timestamp"]), now_ms())
            event = {**event, "timestamp": stamp}
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "default":
            data = json.loads(body, parse_int=str)
            signature = sign(body, app_id or self.fake.app_id, str(data.get("timestamp", "")),
                             secret or self.oa_secret)
        if signature is not None:
            headers["X-ZEvent-Signature"] = signature
        return self.client.post("/webhooks/zalo", data=body, headers=headers)

    def say(self, text: str, user: str = USER, *, deliver: bool = True) -> dict:
        event = self.event("user_send_text", user, text=text)
        assert self.post(event).status_code == 200
        if deliver:
            self.send_all()
        return event

    # --- worker side

    def sender(self, **kwargs: object) -> ZaloSender:
        kwargs.setdefault("media_dir", self.config.media_path)
        return ZaloSender(ZaloApi(self.config), ZaloTokens(self.config, self.db), self.db,
                          max_photo_bytes=self.config.max_photo_bytes, **kwargs)

    @contextlib.asynccontextmanager
    async def senders(self, **kwargs: object) -> AsyncIterator[list[ChannelSender]]:
        sender = self.sender(**kwargs)
        try:
            yield [sender]
        finally:
            await sender.api.aclose()

    def stored(self):
        return stored_pair(self.db)

    def known_expiry(self, left: timedelta = timedelta(hours=20)) -> None:
        """As after a refresh: the stored access token's expiry is known."""
        ZaloTokens(self.config, self.db).load()
        with self.db.transaction() as session:
            settings.put(session, EXPIRES_KEY, (utcnow() + left).isoformat())


@contextlib.contextmanager
def running(db_url: str, tmp_path: Path) -> Iterator[Harness]:
    """A fake OA API and the app wired to it, both shut down afterwards."""
    with FakeZalo() as fake:
        harness = Harness(db_url, tmp_path, fake)
        try:
            yield harness
        finally:
            harness.close()
