"""Broadcasts: an item to an audience, fanned out into outbox rows in batches, and its status.

Fan-out walks the audience's members in id order, a batch per transaction, and keeps its place
(`Broadcast.cursor`) in the same transaction as the rows it wrote; every row carries the unique
key `b:<broadcast>:<member>`, so however often a worker dies and the work is taken again, no
member gets a second row. A broadcast is taken by one worker at a time under a lease.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from storage import proactive as quota
from storage.models import Area, Identity, Member, Outbox, Team, TeamKind, utcnow
from storage.models_content import Broadcast, ContentAck, ContentItem, ContentVersion
from storage.outbox import HELD_QUOTA, PRIORITY_BULK
from storage.proactive import Proactive

KIND_BROADCAST = "broadcast"
# Outbox statuses a broadcast adds: rows held by pause, and rows a cancel stopped.
PAUSED = "paused"
CANCELLED = "cancelled"
ACTIVE = ("scheduled", "fanning_out", "sending")
# Outbox rows still on their way.
QUEUED = ("pending", "sending", PAUSED)


class BroadcastError(ValueError):
    """A broadcast that cannot be made or changed as asked, said plainly."""


@dataclass(frozen=True)
class Audience:
    """Who gets it: each list is "any of"; lists combine with "and"; all empty is everyone."""

    areas: tuple[str, ...] = ()
    team_kinds: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    not_acknowledged: int | None = None  # members who have not said "received" for this item

    def as_dict(self) -> dict[str, Any]:
        return {"areas": list(self.areas), "team_kinds": list(self.team_kinds),
                "roles": list(self.roles), "teams": list(self.teams),
                "not_acknowledged": self.not_acknowledged}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        return cls(tuple(data.get("areas") or ()), tuple(data.get("team_kinds") or ()),
                   tuple(data.get("roles") or ()), tuple(data.get("teams") or ()),
                   data.get("not_acknowledged"))

    def describe(self) -> str:
        parts = [f"{name}: {', '.join(values)}" for name, values in (
            ("areas", self.areas), ("team kinds", self.team_kinds), ("roles", self.roles),
            ("teams", self.teams)) if values]
        if self.not_acknowledged is not None:
            parts.append(f"not acknowledged item {self.not_acknowledged}")
        return "; ".join(parts) or "everyone"


def _subtree_ids(session: Session, codes: tuple[str, ...]) -> Select[tuple[int]]:
    found = set(session.scalars(select(Area.code).where(Area.code.in_(codes))))
    missing = [c for c in codes if c not in found]
    if missing:
        raise BroadcastError(f"no area with code {', '.join(missing)}")
    tree = select(Area.id).where(Area.code.in_(codes)).cte("audience_areas", recursive=True)
    tree = tree.union_all(select(Area.id).join(tree, Area.parent_id == tree.c.id))
    return select(tree.c.id)


def _check(session: Session, column: Any, values: tuple[str, ...], what: str) -> None:
    found = set(session.scalars(select(column).where(column.in_(values))))
    missing = [v for v in values if v not in found]
    if missing:
        raise BroadcastError(f"no {what} {', '.join(missing)}")


def audience_filter(session: Session, audience: Audience) -> list[ColumnElement[bool]]:
    """WHERE conditions on Member (and Team, outer-joined) for an audience; checks the codes."""
    # Erased and deactivated members are nobody's audience.
    conditions: list[ColumnElement[bool]] = [Member.erased_at.is_(None),
                                             Member.deactivated_at.is_(None)]
    if audience.areas:
        conditions.append(Team.area_id.in_(_subtree_ids(session, audience.areas)))
    if audience.team_kinds:
        _check(session, TeamKind.code, audience.team_kinds, "team kind")
        conditions.append(Team.kind_id.in_(
            select(TeamKind.id).where(TeamKind.code.in_(audience.team_kinds))))
    if audience.roles:
        conditions.append(Member.role.in_(audience.roles))
    if audience.teams:
        _check(session, Team.code, audience.teams, "team")
        conditions.append(Team.code.in_(audience.teams))
    if audience.not_acknowledged is not None:
        conditions.append(~Member.id.in_(select(ContentAck.member_id).where(
            ContentAck.item_id == audience.not_acknowledged, ContentAck.kind == "received")))
    return conditions


def _preferred_identity() -> Any:
    """The member's channel to use: consented, reachable, the one they wrote on last."""
    ident = aliased(Identity)
    return (select(ident.id).where(ident.member_id == Member.id, ident.consent == "given",
                                   ident.unreachable_reason.is_(None))
            .order_by(ident.last_inbound_at.desc().nulls_last(), ident.id).limit(1)
            .correlate(Member).scalar_subquery())


def _members(session: Session, audience: Audience) -> Select[Any]:
    chosen = _preferred_identity().label("identity_id")
    return (select(Member.id, Member.locale, chosen).outerjoin(Team, Team.id == Member.team_id)
            .where(*audience_filter(session, audience)))


@dataclass(frozen=True)
class AudienceCount:
    total: int
    by_channel: dict[str, int]
    no_channel: int  # members with no channel that can take a message


def count_audience(session: Session, audience: Audience) -> AudienceCount:
    """How many members, per channel they would be reached on, before anything is sent."""
    members = _members(session, audience).subquery()
    rows = session.execute(
        select(Identity.channel, func.count())
        .select_from(members).outerjoin(Identity, Identity.id == members.c.identity_id)
        .group_by(Identity.channel))
    by_channel = {channel: n for channel, n in rows if channel is not None}
    total = session.scalar(select(func.count()).select_from(members)) or 0
    return AudienceCount(int(total), dict(sorted(by_channel.items())),
                         int(total) - sum(by_channel.values()))


def create_broadcast(session: Session, item_id: int, audience: Audience, *,
                     send_at: datetime | None = None, actor: str = "",
                     now: datetime | None = None) -> int:
    """A broadcast of the item's current version; the worker fans it out once it is due."""
    item = session.get(ContentItem, item_id)
    if item is None or not item.active:
        raise BroadcastError(f"no content item {item_id}")
    if audience.not_acknowledged is not None and session.get(
            ContentItem, audience.not_acknowledged) is None:
        raise BroadcastError(f"no content item {audience.not_acknowledged}")
    count = count_audience(session, audience)
    version_id = session.execute(select(ContentVersion.id).where(
        ContentVersion.item_id == item_id,
        ContentVersion.version == item.current_version)).scalar_one()
    row = Broadcast(item_id=item_id, version_id=version_id, audience=audience.as_dict(),
                    status="scheduled", send_at=send_at or now or utcnow(),
                    audience_total=count.total, created_by=actor)
    session.add(row)
    session.flush()
    return row.id


@dataclass(frozen=True)
class DueBroadcast:
    id: int
    item_id: int
    version_id: int
    audience: Audience
    cursor: int


def claim_due(session: Session, *, now: datetime, lease: timedelta) -> DueBroadcast | None:
    """Take one broadcast whose fan-out is due (or whose last worker's lease ran out)."""
    query = (select(Broadcast).where(
        Broadcast.status.in_(("scheduled", "fanning_out")), Broadcast.send_at <= now,
        or_(Broadcast.lease_until.is_(None), Broadcast.lease_until < now))
        .order_by(Broadcast.send_at, Broadcast.id).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = session.scalar(query)
    if row is None:
        return None
    row.status, row.lease_until = "fanning_out", now + lease
    return DueBroadcast(row.id, row.item_id, row.version_id, Audience.from_dict(row.audience),
                        row.cursor)


def _insert_ignoring_duplicates(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(Outbox).on_conflict_do_nothing(index_elements=["dedupe_key"])
    if dialect == "sqlite":
        return sqlite_insert(Outbox).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return insert(Outbox)  # pragma: no cover - only the two supported databases


@dataclass
class BatchResult:
    members: int = 0
    queued: int = 0
    no_channel: int = 0
    done: bool = False
    stopped: bool = False  # paused or cancelled meanwhile


def fan_out_batch(session: Session, broadcast_id: int, payloads: Mapping[str, Any], *,
                  now: datetime, not_before: datetime, limit: int, lease: timedelta,
                  proactive: Proactive | None = None) -> BatchResult:
    """Write the next `limit` members' rows and move the cursor, in the caller's transaction.

    `payloads` is the rendered message per locale ("vi" always present). Rows are due at
    `not_before` (quiet hours move it); they are bulk priority, behind every reply. With
    `proactive`, rows to that channel's members who have not written recently spend the
    month's quota; those it has no room for are held until the member writes.
    """
    query = select(Broadcast).where(Broadcast.id == broadcast_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # a pause or cancel waits for this batch, or wins
    row = session.scalar(query)
    if row is None or row.status != "fanning_out":
        return BatchResult(stopped=True)
    audience = Audience.from_dict(row.audience)
    members = session.execute(_members(session, audience).where(Member.id > row.cursor)
                              .order_by(Member.id).limit(limit)).all()
    result = BatchResult(members=len(members))
    values = []
    for member_id, locale, identity_id in members:
        if identity_id is None:
            result.no_channel += 1
            continue
        values.append({"identity_id": identity_id, "member_id": member_id, "locale": locale})
    if values:
        channels = {i: (c, last) for i, c, last in session.execute(
            select(Identity.id, Identity.channel, Identity.last_inbound_at).where(
                Identity.id.in_([v["identity_id"] for v in values])))}
        statuses = _spend_quota(session, proactive, [channels[v["identity_id"]]
                                                     for v in values])
        rows = [{"identity_id": v["identity_id"], "channel": channels[v["identity_id"]][0],
                 "payload": payloads.get(v["locale"]) or payloads["vi"], "status": status,
                 "priority": PRIORITY_BULK, "attempts": 0, "next_attempt_at": not_before,
                 "created_at": now, "kind": KIND_BROADCAST, "broadcast_id": broadcast_id,
                 "dedupe_key": f"b:{broadcast_id}:{v['member_id']}"}
                for v, status in zip(values, statuses, strict=True)]
        session.execute(_insert_ignoring_duplicates(session), rows)
        result.queued = len(rows)
    row.queued_total += result.queued
    row.no_channel += result.no_channel
    if members:
        row.cursor = members[-1][0]
        row.lease_until = now + lease
    if len(members) < limit:
        row.status, row.fanned_out_at, row.lease_until = "sending", now, None
        row.audience_total = row.queued_total + row.no_channel
        result.done = True
    return result


def _spend_quota(session: Session, rule: Proactive | None,
                 targets: list[tuple[str, datetime | None]]) -> list[str]:
    """Each row's status: pending, or held when it is proactive and the quota is spent."""
    if rule is None:
        return ["pending"] * len(targets)
    wanted = [rule.is_proactive(channel, last) for channel, last in targets]
    if not any(wanted):
        return ["pending"] * len(targets)
    quota.lock(session, rule.channel, rule.month)
    room = quota.room(session, rule.channel, rule.month, quota=rule.quota,
                      reserve=rule.reserve, kind=KIND_BROADCAST)
    statuses: list[str] = []
    for proactive in wanted:
        if proactive and room <= 0:
            statuses.append(HELD_QUOTA)
            continue
        room -= proactive
        statuses.append("pending")
    spent = sum(w and s == "pending" for w, s in zip(wanted, statuses, strict=True))
    quota.record(session, rule.channel, rule.month, KIND_BROADCAST, spent=spent,
                 held=statuses.count(HELD_QUOTA))
    return statuses


def hold_until(session: Session, until: datetime, *, now: datetime) -> int:
    """Quiet hours: broadcast rows not yet sent wait until `until`; returns how many."""
    result = session.execute(
        update(Outbox).where(Outbox.kind == KIND_BROADCAST, Outbox.status == "pending",
                             Outbox.next_attempt_at < until,
                             # a copy caught up as a reply to a member who just wrote goes
                             Outbox.priority >= PRIORITY_BULK,
                             Outbox.broadcast_id.in_(select(Broadcast.id).where(
                                 Broadcast.status.in_(ACTIVE))))
        .values(next_attempt_at=until).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _get(session: Session, broadcast_id: int) -> Broadcast:
    row = session.get(Broadcast, broadcast_id)
    if row is None:
        raise BroadcastError(f"no broadcast {broadcast_id}")
    return row


def pause(session: Session, broadcast_id: int) -> None:
    """Stop fan-out and hold every row not yet sent; rows in flight finish."""
    row = _get(session, broadcast_id)
    if row.status not in ACTIVE:
        raise BroadcastError(f"broadcast {broadcast_id} is {row.status}; it cannot be paused")
    row.paused_from, row.status, row.lease_until = row.status, PAUSED, None
    session.execute(update(Outbox).where(Outbox.broadcast_id == broadcast_id,
                                         Outbox.status == "pending").values(status=PAUSED)
                    .execution_options(synchronize_session=False))


def resume(session: Session, broadcast_id: int, *, now: datetime) -> None:
    row = _get(session, broadcast_id)
    if row.status != PAUSED:
        raise BroadcastError(f"broadcast {broadcast_id} is {row.status}, not paused")
    back = row.paused_from or "sending"
    row.status = "fanning_out" if back == "fanning_out" else back
    row.paused_from = None
    session.execute(update(Outbox).where(Outbox.broadcast_id == broadcast_id,
                                         Outbox.status == PAUSED)
                    .values(status="pending", next_attempt_at=now)
                    .execution_options(synchronize_session=False))


def cancel(session: Session, broadcast_id: int, *, now: datetime) -> int:
    """Stop fan-out and every row not yet sent; returns how many rows were stopped."""
    row = _get(session, broadcast_id)
    if row.status == CANCELLED:
        return 0
    row.status, row.cancelled_at, row.lease_until = CANCELLED, now, None
    result = session.execute(
        update(Outbox).where(Outbox.broadcast_id == broadcast_id,
                             Outbox.status.in_(("pending", PAUSED, "outside_window")))
        .values(status=CANCELLED).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class BroadcastStatus:
    """Live figures for one broadcast; the CLI and the admin web both read this."""

    id: int
    item_id: int
    title: str
    state: str
    send_at: datetime
    created_at: datetime
    audience: Audience
    audience_total: int
    queued: int
    sent: int
    failed: int
    outside_window: int
    held_quota: int
    unreachable: int
    cancelled: int
    acknowledged: int
    used: int
    people_reached: int
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # reason → rows

    def counts(self) -> dict[str, int]:
        """The contract's keys (DESIGN.md), for `broadcast status --json`."""
        return {"audience": self.audience_total, "queued": self.queued, "sent": self.sent,
                "failed": self.failed, "outside_window": self.outside_window,
                "held_quota": self.held_quota, "unreachable": self.unreachable,
                "acknowledged": self.acknowledged, "used": self.used}


def _state(row: Broadcast, queued: int) -> str:
    if row.status == "sending" and queued == 0:
        return "done"
    return row.status


def broadcast_status(session: Session, broadcast_id: int) -> BroadcastStatus:
    row = _get(session, broadcast_id)
    by_channel: dict[str, dict[str, int]] = {}
    totals: Counter[str] = Counter()
    for channel, status, n in session.execute(
            select(Outbox.channel, Outbox.status, func.count())
            .where(Outbox.broadcast_id == broadcast_id)
            .group_by(Outbox.channel, Outbox.status)):
        by_channel.setdefault(channel, {})[status] = n
        totals[status] += n
    failures = {reason or "unknown": n for reason, n in session.execute(
        select(Outbox.last_error, func.count())
        .where(Outbox.broadcast_id == broadcast_id, Outbox.status == "failed")
        .group_by(Outbox.last_error).order_by(func.count().desc()))}
    acks = dict(session.execute(
        select(ContentAck.kind, func.count()).where(ContentAck.broadcast_id == broadcast_id)
        .group_by(ContentAck.kind)).all())
    people = session.scalar(select(func.coalesce(func.sum(ContentAck.people), 0)).where(
        ContentAck.broadcast_id == broadcast_id, ContentAck.kind == "used")) or 0
    title = session.scalar(select(ContentVersion.title).where(
        ContentVersion.id == row.version_id)) or ""
    queued = sum(totals[s] for s in QUEUED)
    return BroadcastStatus(
        id=row.id, item_id=row.item_id, title=title, state=_state(row, queued),
        send_at=row.send_at, created_at=row.created_at,
        audience=Audience.from_dict(row.audience), audience_total=row.audience_total,
        queued=queued, sent=totals["sent"], failed=totals["failed"],
        outside_window=totals["outside_window"], held_quota=totals["held_quota"],
        unreachable=totals["unreachable"] + row.no_channel, cancelled=totals[CANCELLED],
        acknowledged=int(acks.get("received", 0)), used=int(acks.get("used", 0)),
        people_reached=int(people), by_channel=by_channel, failures=failures)


def list_broadcasts(session: Session, *, limit: int = 20) -> list[BroadcastStatus]:
    ids = session.scalars(select(Broadcast.id).order_by(Broadcast.id.desc()).limit(limit))
    return [broadcast_status(session, i) for i in list(ids)]


def fan_out_progress(session: Session, broadcast_id: int) -> tuple[int, int, str]:
    """(members walked, audience, status): what a progress bar needs, cheaply."""
    row = _get(session, broadcast_id)
    return row.queued_total + row.no_channel, row.audience_total, row.status

