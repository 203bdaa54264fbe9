"""Data protection: the consent ledger, what is held about a member, and erasure that erases.

Erasure keeps the plan's figures: a report stays as anonymous counts (date, place, numbers),
but nothing that names or reaches the member survives — not their name, notes, consent details,
conversation, the messages sent to them (the web chat's history is those messages), nor the
links from safeguarding cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from storage.db import rows_changed
from storage.enums import OutboxStatus
from storage.members import erase_member
from storage.models import ConversationState, Identity, Media, Member, Outbox, Report, Team
from storage.models_safeguarding import ConsentRecord, SafeguardingCase

ERASED = OutboxStatus.ERASED  # an outbox row whose content was erased with its member


@dataclass(frozen=True)
class ConsentEntry:
    version: str
    decision: str
    channel: str
    at: datetime


@dataclass(frozen=True)
class HeldData:
    """What the service keeps about one member, as the member is shown it."""

    name: str
    team: str
    reports: int
    photos: int
    channels: tuple[str, ...]
    consents: tuple[ConsentEntry, ...]


def record_consent_decision(session: Session, identity_id: int, *, given: bool, version: str,
                            channel: str, at: datetime) -> None:
    """One line of the ledger: the notice's version, the answer, when, and where."""
    session.add(ConsentRecord(identity_id=identity_id, version=version, channel=channel,
                              decision="given" if given else "refused", at=at))


def _identity_ids(session: Session, identity_id: int) -> tuple[int | None, list[int]]:
    member_id = session.scalar(select(Identity.member_id).where(Identity.id == identity_id))
    if member_id is None:
        return None, [identity_id]
    return member_id, list(session.scalars(select(Identity.id).where(
        Identity.member_id == member_id)))


def stored_about(session: Session, identity_id: int) -> HeldData:
    member_id, ids = _identity_ids(session, identity_id)
    name = team = ""
    reports = photos = 0
    if member_id is not None:
        row = session.execute(select(Member.display_name, Team.name)
                              .outerjoin(Team, Team.id == Member.team_id)
                              .where(Member.id == member_id)).one()
        name, team = row[0], row[1] or ""
        reports = session.scalar(select(func.count()).select_from(Report)
                                 .where(Report.member_id == member_id)) or 0
    photos = session.scalar(select(func.count()).select_from(Media)
                            .where(Media.identity_id.in_(ids))) or 0
    channels = tuple(sorted(set(session.scalars(select(Identity.channel)
                                                .where(Identity.id.in_(ids))))))
    consents = tuple(ConsentEntry(r.version, r.decision, r.channel, r.at) for r in session.scalars(
        select(ConsentRecord).where(ConsentRecord.identity_id.in_(ids))
        .order_by(ConsentRecord.at, ConsentRecord.id)))
    return HeldData(name, team, reports, photos, channels, consents)


def ask_consent_again(session: Session, version: str) -> int:
    """After the notice changed: everyone whose latest consent was not to `version` is asked
    again at their next message. Returns how many identities that is."""
    agreed = (select(ConsentRecord.identity_id)
              .where(ConsentRecord.version == version, ConsentRecord.decision == "given")
              .where(ConsentRecord.identity_id.is_not(None)))
    return rows_changed(session.execute(update(Identity).where(
        Identity.consent == "given", Identity.id.not_in(agreed)).values(consent="pending")
    ))


def erase(session: Session, identity_id: int, media_dir: Path, at: datetime) -> int:
    """Erase a member's personal data everywhere; returns how many photo files were removed.

    Runs in the caller's transaction, so the confirmation queued after it is the only message
    left for the member.
    """
    member_id, ids = _identity_ids(session, identity_id)
    if member_id is not None:
        # Before erase_member unlinks the reports from the member: their notes are free text
        # the member wrote, so they go; the counts stay for the plan.
        session.execute(update(Report).where(Report.member_id == member_id)
                        .values(notes=""))
        session.execute(update(SafeguardingCase).where(SafeguardingCase.member_id == member_id)
                        .values(member_id=None, identity_id=None))
    session.execute(update(SafeguardingCase).where(SafeguardingCase.identity_id.in_(ids))
                    .values(identity_id=None))
    removed = erase_member(session, identity_id, media_dir, at)
    # Every message ever sent to them: it may quote what they typed, and it is the web chat's
    # history. Emptied rather than deleted: SQLite reuses the highest deleted ids, and the web
    # chat reads "messages after the last id seen", so the confirmation must get a new one.
    session.execute(update(Outbox).where(Outbox.identity_id.in_(ids)).values(
        payload={}, status=ERASED, last_error=None, platform_message_id=None))
    session.execute(delete(ConsentRecord).where(ConsentRecord.identity_id.in_(ids)))
    session.execute(update(ConversationState).where(ConversationState.identity_id.in_(ids))
                    .values(flow="", step="", draft={}))
    return removed


def set_photos_identifiable(session: Session, member_id: int, identifiable: bool) -> str | None:
    """The member's answer about their latest report's photos; the report's number, or None
    when they have no report with photos. Only the member's own report is touched."""
    latest = session.execute(
        select(Report.id, Report.number).join(Media, Media.report_id == Report.id)
        .where(Report.member_id == member_id).order_by(Report.id.desc()).limit(1)).first()
    if latest is None:
        return None
    session.execute(update(Media).where(Media.report_id == latest[0])
                    .values(identifiable=identifiable))
    return str(latest[1])
