"""From a channel's message to saved state and queued replies, in one transaction."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot import inbound_guard
from bot.channels.port import Memory, write_memories
from bot.config import Config
from handlers import router
from handlers.flow import Ctx, Settings
from handlers.menu import MENU_BUTTONS
from handlers.types import Inbound, Photo, Reply
from messages_vi import _, normalise_locale, render, short_labels
from storage import conversation, outbox
from storage.db import Database
from storage.enums import PhotoError
from storage.media import register_remote_photo, store_photo
from storage.models import utcnow
from storage.values import ButtonPayload, MessagePayload, OutboxPayload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingPhoto:
    """A photo: its bytes (web chat, console) or where to fetch it later (platforms).

    Nothing is stored before the member consented.
    """

    data: bytes | None
    declared_type: str = ""
    source: str | None = None
    size: int = 0


@dataclass(frozen=True)
class Incoming:
    """What a channel hands over: a platform event reduced to what conversations use."""

    channel: str
    external_id: str
    event_id: str
    text: str = ""
    payload: str | None = None
    photos: tuple[IncomingPhoto, ...] = ()
    oversize_photos: int = 0
    start_param: str | None = None
    locale: str | None = None
    ack: str | None = None  # a button press the platform wants acknowledged
    edited: bool = False
    origin: str | None = None  # the sender's network address (web chat), for rate limits
    memories: tuple[Memory, ...] = ()  # per-chat values to keep, written with this message
    # The reader chose the language for this message (the web chat's ?lang=): replies use it
    # rather than the one their member was created with.
    locale_chosen: bool = False


@dataclass
class Outcome:
    duplicate: bool = False
    identity_id: int | None = None
    queued: list[int] = field(default_factory=list)


class Wakeup:
    """Tells a sender in this process that rows are waiting, instead of it polling slowly."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def notify(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        fired = self._event.wait(timeout)
        self._event.clear()
        return fired


def merge_replies(replies: list[Reply]) -> list[Reply]:
    """Join a reply without buttons or media to the next one: fewer messages, same words.

    Platforms pace messages per chat (Telegram: one a second), so three short replies would
    reach the member over three seconds.
    """
    merged: list[Reply] = []
    for reply in replies:
        if merged and not merged[-1].buttons and not merged[-1].media:
            last = merged.pop()
            reply = Reply(text=last.text + reply.text, buttons=reply.buttons, media=reply.media)
        merged.append(reply)
    return merged


def render_reply(reply: Reply, locale: str) -> MessagePayload:
    """Translate a reply for its reader; the outbox keeps what the person will read.

    Long button labels are shortened here, once their words in the reader's language are known;
    the payload, which is what a press sends back, stays as the conversation made it."""
    whole = [render(b.label, locale) for b in reply.buttons]
    buttons: list[ButtonPayload] = []
    for label, full, button in zip(short_labels(whole), whole, reply.buttons, strict=True):
        shown: ButtonPayload = {"label": label, "payload": button.payload}
        if label != full:
            shown["full"] = full  # a numbered list in the text has room for every word
        buttons.append(shown)
    return {
        "text": "\n\n".join(render(part, locale) for part in reply.text),
        "buttons": buttons,
        "media": list(reply.media),
    }


class _Duplicate(Exception):
    """Raised inside the transaction so a retried event leaves nothing behind."""


class Dispatcher:
    """Dedupe, load state, run the conversation, save, queue: the one data path."""

    def __init__(self, config: Config, db: Database, wakeup: Wakeup | None = None) -> None:
        self.config = config
        self.db = db
        self.wakeup = wakeup or Wakeup()
        self.settings = Settings(media_dir=config.media_path,
                                 max_photo_bytes=config.max_photo_bytes,
                                 max_participants=config.max_participants,
                                 loose_photo_minutes=config.retention.loose_photo_minutes)

    def dispatch(self, incoming: Incoming, now: datetime | None = None) -> Outcome:
        """Handle one message exactly once; replies are queued, never sent from here."""
        now = now or utcnow()
        cleaned = inbound_guard.clean_incoming(incoming)
        if cleaned is None:
            log.warning("%s: dropped a message without a usable chat id", incoming.channel)
            return Outcome()
        incoming = cleaned
        try:
            outcome = self._handle(incoming, now)
        except Exception:
            # A bug must not cost the member their draft or leave them without an answer.
            log.exception("conversation failed on %s event %s", incoming.channel,
                          incoming.event_id)
            outcome = self._apologise(incoming, now)
        if outcome.queued:
            self.wakeup.notify()
        return outcome

    def _handle(self, incoming: Incoming, now: datetime) -> Outcome:
        try:
            with self.db.transaction() as session:
                return self._converse(session, incoming, now)
        except _Duplicate:
            return Outcome(duplicate=True)

    def _converse(self, session: Any, incoming: Incoming, now: datetime) -> Outcome:
        locale = normalise_locale(incoming.locale)
        row, claimed = conversation.enter(session, incoming.channel, incoming.external_id,
                                          incoming.event_id, locale, now)
        identity_id = row.id
        if claimed is None:
            raise _Duplicate  # a retry: roll back the identity's new message time too
        write_memories(session, incoming.memories)
        identity = conversation.view_of(session, row, incoming.channel)
        photos = self._photos(session, incoming, identity_id, identity.consent == "given")
        inbound = Inbound(
            channel=incoming.channel, external_id=incoming.external_id,
            event_id=incoming.event_id, text=incoming.text or "", payload=incoming.payload,
            photos=photos, start_param=incoming.start_param, locale=locale,
            received_at=now, edited=incoming.edited,
        )
        ctx = Ctx(session=session, identity=identity, state=claimed.state, now=now,
                  today=now.astimezone(self.config.tz).date(), settings=self.settings,
                  origin=incoming.origin)
        router.handle(ctx, inbound)
        reader_locale = identity.member.locale if identity.member else identity.locale
        if incoming.locale_chosen:
            reader_locale = locale
        messages = self._ack(incoming)
        messages += [(inbound_guard.mask_echoes(render_reply(reply, reader_locale),
                                                incoming.text), outbox.PRIORITY_REPLY)
                     for reply in merge_replies(ctx.replies)]
        queued = conversation.save_and_queue(session, identity_id, incoming.channel, ctx.state,
                                             messages, now)
        for notice in ctx.notices:
            queued.append(outbox.enqueue(session, notice.identity_id, notice.channel,
                                         render_reply(notice.reply, notice.locale), now=now))
        if claimed.held_back:
            queued += self._catch_up(session, identity_id, reader_locale, now)
        return Outcome(identity_id=identity_id, queued=queued)

    def _catch_up(self, session: Any, identity_id: int, locale: str, now: datetime) -> list[int]:
        """Messages the platform's window held back go out now that the member wrote."""
        header = render_reply(Reply.of(_("While you were away:")), locale)
        return outbox.catch_up(session, identity_id, header, now=now)

    def _ack(self, incoming: Incoming) -> list[tuple[OutboxPayload, int]]:
        """Stop the platform's button spinner, ahead of the reply itself."""
        if incoming.ack is None:
            return []
        return [({"kind": "ack", "id": incoming.ack}, outbox.PRIORITY_ACK)]

    def note_seen(self, channel: str, event_id: str) -> bool:
        """Record an event that needs no answer, so a retry of it is recognised too."""
        event_id = inbound_guard.fit_id(event_id, inbound_guard.EVENT_ID_LIMIT)
        with self.db.transaction() as session:
            return conversation.claim_inbound(session, channel, event_id) is not None

    def note_unreachable(self, channel: str, external_id: str, event_id: str,
                         reason: str) -> None:
        """The platform told us this person cannot be written to (e.g. they blocked the bot)."""
        event_id = inbound_guard.fit_id(event_id, inbound_guard.EVENT_ID_LIMIT)
        if external_id != inbound_guard.fit_id(external_id, inbound_guard.EXTERNAL_ID_LIMIT):
            return
        with self.db.transaction() as session:
            if conversation.claim_inbound(session, channel, event_id) is None:
                return
            conversation.mark_unreachable(session, channel, external_id, reason)

    def _photos(self, session: Any, incoming: Incoming, identity_id: int,
                consented: bool) -> tuple[Photo, ...]:
        too_large = tuple(Photo(None, 0, PhotoError.TOO_LARGE)
                          for _ in range(incoming.oversize_photos))
        if not consented:
            return too_large  # nothing about a person is stored before they agree
        stored = []
        for photo in incoming.photos:
            if photo.data is not None:
                result = store_photo(session, self.config.media_path, identity_id, photo.data,
                                     max_bytes=self.config.max_photo_bytes)
            elif photo.source:
                result = register_remote_photo(session, identity_id, photo.source, photo.size,
                                               max_bytes=self.config.max_photo_bytes)
            else:
                continue
            stored.append(Photo(result.media_id, result.size, result.error))
        return tuple(stored) + too_large

    def _apologise(self, incoming: Incoming, now: datetime) -> Outcome:
        with self.db.transaction() as session:
            inbound_id = conversation.claim_inbound(session, incoming.channel, incoming.event_id)
            if inbound_id is None:
                return Outcome(duplicate=True)
            write_memories(session, incoming.memories)
            identity_id = conversation.get_or_create_identity(
                session, incoming.channel, incoming.external_id,
                normalise_locale(incoming.locale), now)
            reply = Reply.of(_("Sorry, something went wrong on our side. What you entered "
                               "so far is kept; please try again."), buttons=MENU_BUTTONS)
            row = outbox.enqueue(session, identity_id, incoming.channel,
                                 render_reply(reply, normalise_locale(incoming.locale)), now=now)
            return Outcome(identity_id=identity_id, queued=[row])
