"""Retention: what is kept only for a while.

- An unfinished report draft: deleted after `draft_days` without a message, with the photos sent
  for it; its member is warned `warn_days` before.
- The inbound event keys (kept so a platform's retried webhook makes no second record; platforms
  retry within hours) and the payloads of delivered messages: pruned after `payload_days`.
- Photos of saved reports are kept with the report. Photos of no report and no current draft
  (sent before a report and never claimed, or left by a cancelled draft) go after
  `loose_photo_minutes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Text, cast, delete, select, update
from sqlalchemy.orm import Session

from storage import settings
from storage.db import rows_changed
from storage.models import ConversationState, Identity, InboundEvent, Media, Member, Outbox

WARNED_KEY = "retention.draft_warned.{identity_id}"
BATCH = 1000


@dataclass(frozen=True)
class RetentionPolicy:
    draft_days: int = 30
    warn_days: int = 3
    payload_days: int = 90
    loose_photo_minutes: int = 30


@dataclass(frozen=True)
class DraftToWarn:
    identity_id: int
    channel: str
    locale: str
    deleted_on: datetime


@dataclass(frozen=True)
class Pruned:
    drafts: int
    photos: int
    inbound_events: int
    payloads: int


def drafts_to_warn(session: Session, policy: RetentionPolicy, now: datetime) -> list[DraftToWarn]:
    """Unfinished drafts that will be deleted within `warn_days` and whose owner was not yet
    warned about this draft (a new answer since the warning earns a new warning later)."""
    oldest = now - timedelta(days=policy.draft_days)
    warn_from = oldest + timedelta(days=policy.warn_days)
    rows = session.execute(
        select(ConversationState.identity_id, ConversationState.updated_at, Identity.channel,
               Identity.locale, Member.locale)
        .join(Identity, Identity.id == ConversationState.identity_id)
        .outerjoin(Member, Member.id == Identity.member_id)
        .where(ConversationState.flow != "", ConversationState.updated_at < warn_from,
               ConversationState.updated_at >= oldest, Identity.consent == "given",
               Identity.unreachable_reason.is_(None))
        .order_by(ConversationState.identity_id)
    ).all()
    due: list[DraftToWarn] = []
    for identity_id, updated_at, channel, locale, member_locale in rows:
        marker = settings.get(session, WARNED_KEY.format(identity_id=identity_id))
        if marker == updated_at.isoformat():
            continue
        due.append(DraftToWarn(identity_id, channel, member_locale or locale,
                               updated_at + timedelta(days=policy.draft_days)))
    return due


def mark_warned(session: Session, identity_id: int) -> None:
    """Remember which draft (by its last change) its owner was warned about."""
    updated_at = session.scalar(select(ConversationState.updated_at).where(
        ConversationState.identity_id == identity_id))
    if updated_at is not None:
        settings.put(session, WARNED_KEY.format(identity_id=identity_id), updated_at.isoformat())


def prune(session: Session, policy: RetentionPolicy, media_dir: Path, now: datetime) -> Pruned:
    """Delete what has outlived its time; safe to run again and from several processes."""
    draft_cutoff = now - timedelta(days=policy.draft_days)
    stale = list(session.scalars(select(ConversationState.identity_id).where(
        ConversationState.flow != "", ConversationState.updated_at < draft_cutoff)))
    photos = 0
    for start in range(0, len(stale), BATCH):
        ids = stale[start:start + BATCH]
        # Photos sent for a draft never became part of a report: they go with the draft.
        for media in session.scalars(select(Media).where(
                Media.identity_id.in_(ids), Media.report_id.is_(None),
                Media.created_at < draft_cutoff)):
            if not media.storage_key.startswith("pending/"):
                (media_dir / media.storage_key).unlink(missing_ok=True)
            session.delete(media)
            photos += 1
        session.execute(update(ConversationState).where(
            ConversationState.identity_id.in_(ids), ConversationState.updated_at < draft_cutoff)
            .values(flow="", step="", draft={}, updated_at=now))
        for identity_id in ids:
            settings.delete(session, WARNED_KEY.format(identity_id=identity_id))
    photos += prune_loose_photos(session, media_dir, now - timedelta(
        minutes=policy.loose_photo_minutes))
    payload_cutoff = now - timedelta(days=policy.payload_days)
    events = rows_changed(session.execute(delete(InboundEvent).where(
        InboundEvent.received_at < payload_cutoff)))
    # Delivered or finally failed messages keep their row (counts in `outbox status`), not
    # their words.
    payloads = rows_changed(session.execute(update(Outbox).where(
        Outbox.created_at < payload_cutoff,
        Outbox.status.not_in(["pending", "sending", "outside_window"]),
        cast(Outbox.payload, Text) != "{}",
    ).values(payload={}, last_error=None)))
    return Pruned(len(stale), photos, events or 0, payloads or 0)


def prune_loose_photos(session: Session, media_dir: Path, older_than: datetime) -> int:
    """Delete photos sent before `older_than` that belong to no report and to no draft in
    progress: their file and their row. A draft names its photos in its JSON, read here.
    Photos whose sender was erased are already gone with the erasure."""
    # Campaign material is media of no sender (identity_id NULL): never a loose photo.
    candidates = session.execute(select(Media.id, Media.identity_id, Media.storage_key).where(
        Media.report_id.is_(None), Media.identity_id.is_not(None),
        Media.created_at < older_than).order_by(Media.id)
        .limit(BATCH)).all()
    if not candidates:
        return 0
    owners = {identity_id for _id, identity_id, _key in candidates if identity_id is not None}
    in_use: set[int] = set()
    for flow, draft in session.execute(select(ConversationState.flow, ConversationState.draft)
                                       .where(ConversationState.identity_id.in_(owners))):
        if flow and isinstance(draft, dict):
            for key in ("media", "offered_photos"):
                in_use.update(i for i in draft.get(key) or [] if isinstance(i, int))
    gone = [(media_id, key) for media_id, _identity, key in candidates if media_id not in in_use]
    for _media_id, key in gone:
        if not key.startswith("pending/"):
            (media_dir / key).unlink(missing_ok=True)
    if gone:
        session.execute(delete(Media).where(Media.id.in_([m for m, _k in gone])))
    return len(gone)
