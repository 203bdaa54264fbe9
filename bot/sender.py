"""The outbox sender every channel shares: leases, pacing, retries and a readable end state."""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.channels.base import ChannelSender, SendResult
from bot.dispatcher import Wakeup
from bot.ratelimit import Pacer
from bot.send_journal import SendJournal
from storage import outbox
from storage.db import Database
from storage.models import utcnow
from storage.outbox import PRIORITY_BULK, Delivery, OutboundMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SenderSettings:
    batch: int = 200
    # Short, so rows of a worker that died go again soon; the send journal keeps those the
    # platform already took from going twice.
    lease: timedelta = timedelta(seconds=30)
    # A row whose chat may not be written to for longer than this goes back to the queue,
    # so no row sits leased while it waits (and no lease expires under a slow chat).
    max_hold_seconds: float = 5.0
    # Broadcast rows are booked at most this far ahead; the rest go back to the queue. At a
    # paced platform's rate a batch then lasts about this long, so a reply queued meanwhile is
    # claimed soon after (it then skips the rows booked ahead: Pacer.reserve's `urgent`).
    bulk_hold_seconds: float = 1.5
    in_flight: int = 64
    batches_at_once: int = 2
    max_attempts: int = 8
    idle_wait_seconds: float = 1.0


def backoff(attempts: int) -> float:
    """Exponential backoff with full jitter, from 1 s up to 10 minutes."""
    return random.uniform(0.5, 1.0) * min(600.0, 2.0 ** max(0, attempts - 1))


async def _stuck_behind(lane: asyncio.Task[list[Delivery]]) -> Delivery | None:
    """What stopped an earlier lane of the same chat (a row not sent, and not merely outside a
    messaging window), or None when it went through."""
    try:
        deliveries = await asyncio.shield(lane)  # our cancellation must not cancel that lane
    except Exception:  # that lane crashed: its rows come back when their lease ends
        return Delivery(0, "pending", 0, error="an earlier message to this chat failed")
    return next((d for d in deliveries if d.status not in ("sent", "outside_window")), None)


def _behind(rows: list[OutboundMessage], stuck: Delivery) -> list[Delivery]:
    """Rows that wait behind a row that did not go: given back unsent, as that row ended."""
    status = "unreachable" if stuck.status == "unreachable" else "pending"
    after = stuck.next_attempt_at or utcnow()
    return [Delivery(r.id, status, r.identity_id, error=stuck.error, next_attempt_at=after,
                     refund_attempt=True) for r in rows]


class PriorityGate:
    """The in-flight limit, handing a free slot to the most urgent waiter first.

    A member in a conversation whose reply is claimed while a broadcast's rows wait for a
    connection goes ahead of them (lower priority numbers first, then in arrival order):
    with a FIFO semaphore, the reply would wait behind a whole claimed batch of bulk sends.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = 0

    async def acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        self._arrivals += 1
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, self._arrivals, ticket))
        try:
            await ticket
        except asyncio.CancelledError:
            if ticket.done() and not ticket.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiting:
            ticket = heapq.heappop(self._waiting)[2]
            if not ticket.done():  # a cancelled waiter's ticket is skipped
                ticket.set_result(None)
                return
        self._free += 1


class OutboxSender:
    """Claims due rows, sends them paced per channel and per chat, and records every outcome."""

    def __init__(self, db: Database, channels: list[ChannelSender], wakeup: Wakeup | None = None,
                 settings: SenderSettings | None = None,
                 journal: SendJournal | None = None) -> None:
        self.db = db
        self.journal = journal
        self.channels = {c.name: c for c in channels}
        self.pacers = {c.name: Pacer(c.limits) for c in channels}
        self.wakeup = wakeup or Wakeup()
        self.settings = settings or SenderSettings()
        self._lanes: dict[tuple[str, str], asyncio.Task[list[Delivery]]] = {}
        self._gate_loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: PriorityGate | None = None
        # When rows given back (held by pacing, or to retry) are due again, soonest first: an
        # idle sender wakes for them instead of sleeping its whole idle wait.
        self._due: list[datetime] = []
        self._stale_checked: datetime | None = None

    async def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; wakes at once when a dispatcher queues a reply.

        Up to `batches_at_once` claimed batches are out together, sharing one in-flight gate:
        the next batch is claimed, and starts sending, while the last one's slowest sends and
        its write-back finish, so neither the database round trips nor a batch's tail leave the
        connections idle. A chat's rows still go one after the other across batches (lanes).
        When pacing is what holds the sends back, nothing is claimed ahead.
        """
        log.info("sender delivering for %s", ", ".join(self.channels))
        batches: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            try:
                claimed = await asyncio.to_thread(self._claim)
            except Exception:
                log.exception("claiming rows failed; retrying shortly")
                await asyncio.sleep(1.0)
                continue
            if claimed:
                batch = asyncio.create_task(self._deliver(claimed))
                batches.add(batch)
                batch.add_done_callback(batches.discard)
            more_due = len(claimed) >= self.settings.batch
            if (more_due and len(batches) < self.settings.batches_at_once
                    and self._pacing_seconds(claimed) < 1.0):
                continue
            if batches:
                # Paced: a batch books its rows at most bulk_hold_seconds ahead and gives the
                # rest back, so the next one is claimed while it still sends; waiting for it
                # to end would leave the pacer idle for a write-back and a claim each time.
                ahead = claimed and len(batches) < self.settings.batches_at_once
                await asyncio.wait(batches, return_when=asyncio.FIRST_COMPLETED,
                                   timeout=self.settings.bulk_hold_seconds / 3 if ahead else None)
            else:
                await asyncio.to_thread(self.wakeup.wait, self._idle_wait())
        if batches:
            await asyncio.wait(batches)  # what was claimed is sent and written back

    def _note_due(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Remember when rows given back to wait come due, so the idle sender wakes for them."""
        for delivery in deliveries:
            if delivery.status == "pending" and delivery.next_attempt_at is not None:
                heapq.heappush(self._due, delivery.next_attempt_at)
        return deliveries

    def _idle_wait(self) -> float:
        """Seconds to wait with nothing due: the idle wait, or less when a row comes due."""
        now = utcnow()
        while self._due and self._due[0] <= now:  # due already: claimed, or another's now
            heapq.heappop(self._due)
        if not self._due:
            return self.settings.idle_wait_seconds
        return min(self.settings.idle_wait_seconds,
                   max(0.01, (self._due[0] - now).total_seconds()))

    def _pacing_seconds(self, claimed: list[OutboundMessage]) -> float:
        """How long pacing alone will take to let this batch out, after what is booked.

        Beyond a second, rows claimed ahead would only be given back to wait (and the claim
        would come before the batch's own sends are booked), so the next claim waits instead.
        """
        rows = Counter(message.channel for message in claimed)
        return max((self.pacers[channel].backlog() + count / self.pacers[channel].limits.per_second
                    for channel, count in rows.items()), default=0.0)

    async def deliver_once(self) -> int:
        """One round: claim a batch, send it, write the outcomes. Returns rows handled."""
        claimed = await asyncio.to_thread(self._claim)
        if not claimed:
            return 0
        await asyncio.to_thread(self._record, self._note_due(await self._send_batch(claimed)))
        return len(claimed)

    async def _deliver(self, claimed: list[OutboundMessage]) -> None:
        """Send a batch and write its outcomes; a failure here leaves the rows to their lease."""
        try:
            await asyncio.to_thread(self._record, self._note_due(await self._send_batch(claimed)))
        except Exception:
            log.exception("a batch of %d rows failed; they go again when their lease ends",
                          len(claimed))

    async def _send_batch(self, claimed: list[OutboundMessage]) -> list[Delivery]:
        """Send a claimed batch: many chats at once, each chat behind its earlier rows."""
        by_chat: dict[tuple[str, str], list[OutboundMessage]] = defaultdict(list)
        for message in claimed:
            by_chat[(message.channel, message.external_id)].append(message)
        gate = self._gate()
        if self.journal is not None:  # before any of the batch's calls, one write for all
            self.journal.begin_many([message.id for message in claimed])
        lanes = []
        for chat, rows in by_chat.items():
            lane = asyncio.create_task(self._send_chat(rows, gate, self._lanes.get(chat)))
            self._lanes[chat] = lane
            lane.add_done_callback(functools.partial(self._lane_done, chat))
            lanes.append(lane)
        outcomes = await asyncio.gather(*lanes)
        return [d for chat in outcomes for d in chat]

    def _gate(self) -> PriorityGate:
        """The in-flight limit shared by every batch of this event loop."""
        loop = asyncio.get_running_loop()
        if self._in_flight is None or self._gate_loop is not loop:  # futures are bound to
            self._gate_loop = loop                                   # the loop that made them
            self._in_flight = PriorityGate(self.settings.in_flight)
        return self._in_flight

    def _lane_done(self, chat: tuple[str, str], lane: asyncio.Task[list[Delivery]]) -> None:
        if self._lanes.get(chat) is lane:
            del self._lanes[chat]

    def _claim(self) -> list[OutboundMessage]:
        now = utcnow()
        # Rows of a sender that died come back when their lease runs out; looking for them a
        # few times a lease is enough, and that walk grows with the rows ever sent.
        stale = self._stale_checked is None or now - self._stale_checked >= self.settings.lease / 3
        if stale:
            self._stale_checked = now
        with self.db.transaction() as session:
            return outbox.claim_due(session, list(self.channels), now=now,
                                    limit=self.settings.batch, lease=self.settings.lease,
                                    stale=stale)

    def _record(self, deliveries: list[Delivery]) -> None:
        now = utcnow()
        with self.db.transaction() as session:
            outbox.record_deliveries(session, deliveries, now=now)
            for delivery in deliveries:
                if delivery.status == "outside_window":
                    outbox.divert(session, delivery.outbox_id, now=now)
            outbox.announce(session)
        if self.journal is not None:
            self.journal.recorded([d.outbox_id for d in deliveries])

    def recover(self) -> int:
        """Before sending: rows dead workers' journals show as taken by the platform are sent.

        Returns how many rows were marked sent; rows left in doubt go again after their lease.
        """
        if self.journal is None:
            return 0
        found = self.journal.leftovers()
        if not found.files:
            return 0
        with self.db.transaction() as session:
            marked = outbox.reconcile_sent(session, found.sent, now=utcnow())
        for path in found.files:
            path.unlink(missing_ok=True)
        log.info("send journal: %d rows a stopped worker sent are marked sent; %d it had "
                 "taken without an answer go again", marked, len(found.in_doubt))
        return marked

    async def _send_chat(self, rows: list[OutboundMessage], gate: PriorityGate,
                         earlier: asyncio.Task[list[Delivery]] | None = None) -> list[Delivery]:
        """One chat's rows, in order: a later message never overtakes an earlier one."""
        if earlier is not None and (stuck := await _stuck_behind(earlier)) is not None:
            return _behind(rows, stuck)
        channel = self.channels[rows[0].channel]
        pacer = self.pacers[channel.name]
        group = channel.is_group(rows[0].external_id)
        done: list[Delivery] = []
        for index, row in enumerate(rows):
            paced = channel.is_paced(row.payload)
            urgent = row.priority < PRIORITY_BULK
            wait = pacer.peek(row.external_id, group=group, urgent=urgent) if paced else 0.0
            hold = self.settings.max_hold_seconds if urgent else self.settings.bulk_hold_seconds
            if wait > hold:
                later = utcnow() + timedelta(seconds=wait)
                done += [Delivery(r.id, "pending", r.identity_id, next_attempt_at=later,
                                  refund_attempt=True) for r in rows[index:]]
                break
            if not channel.may_send(row, utcnow()):
                done.append(Delivery(row.id, "outside_window", row.identity_id,
                                     error=f"outside the {channel.name} messaging window"))
                continue
            if paced:
                await asyncio.sleep(pacer.reserve(row.external_id, group=group, urgent=urgent))
            await gate.acquire(row.priority)
            try:
                # Counted as late as possible, once a connection is ours: a send admitted and
                # then kept waiting would reach the platform bunched with later ones.
                while paced and (late := pacer.admit()) > 0:
                    await asyncio.sleep(late)
                try:
                    result = await self._attempt(channel, row)
                finally:
                    if paced:
                        pacer.finish(row.external_id, group=group)
                if self.journal is not None and result.ok:
                    self.journal.done(row.id, result.platform_message_id)
            finally:
                gate.release()
            delivery = self._outcome(row, result)
            done.append(delivery)
            if result.retry_after:
                pacer.push_back(result.retry_after)
            if delivery.status != "sent":
                done += _behind(rows[index + 1:], delivery)  # keep this chat's order
                break
        return done

    async def _attempt(self, channel: ChannelSender, row: OutboundMessage) -> SendResult:
        try:
            return await channel.send(row)
        except Exception as exc:  # a channel bug is one failed try, not a dead sender
            log.exception("channel %s crashed sending row %s", channel.name, row.id)
            return SendResult(ok=False, error=f"internal error: {type(exc).__name__}: {exc}")

    def _outcome(self, row: OutboundMessage, result: SendResult) -> Delivery:
        now = utcnow()
        if result.ok:
            return Delivery(row.id, "sent", row.identity_id,
                            platform_message_id=result.platform_message_id)
        if result.unreachable:
            return Delivery(row.id, "unreachable", row.identity_id, error=result.error)
        if result.outside_window:
            return Delivery(row.id, "outside_window", row.identity_id, error=result.error)
        if result.final or row.attempts >= self.settings.max_attempts:
            reason = result.error or "failed"
            if not result.final:
                reason = f"gave up after {row.attempts} tries: {reason}"
            return Delivery(row.id, "failed", row.identity_id, error=reason)
        wait = result.retry_after or backoff(row.attempts)
        return Delivery(row.id, "pending", row.identity_id, error=result.error,
                        next_attempt_at=now + timedelta(seconds=wait))

