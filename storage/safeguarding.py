"""Safeguarding cases and who may read them; the consent ledger; admins' disclosure phrases.

Every read of a case goes through `cases_visible_to`, which checks the reader's role and area
in the query itself: a safeguarding officer sees the cases of their area and below, a province
admin all of them, and nobody else any.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.db import rows_changed
from storage.models import Area, AuditLog, Identity, Member, Team, TeamKind
from storage.models_safeguarding import (
    DisclosurePhrase,
    SafeguardingCase,
    SafeguardingOfficer,
)
from storage.textfold import fold_words

TRUSTED_ADDRESS_KIND = "trusted_address"
MAX_AREA_DEPTH = 8  # province → district → commune → village, with room for other trees


class CaseStatus(StrEnum):
    OPEN = "open"
    CONTACTED = "contacted"
    CLOSED = "closed"


@dataclass(frozen=True)
class OpenedCase:
    id: int
    number: str
    area_name: str
    team_name: str
    officers: tuple[OfficerContact, ...]


@dataclass(frozen=True)
class OfficerContact:
    member_id: int
    identity_id: int
    channel: str
    locale: str


@dataclass(frozen=True)
class CaseRow:
    id: int
    number: str
    status: str
    category: str
    created_at: datetime
    area: str
    team: str
    member_name: str
    text: str


def case_number(case_id: int) -> str:
    return f"HT-{case_id:05d}"


def area_chain(session: Session, area_id: int | None) -> list[int]:
    """The area and its ancestors, nearest first."""
    chain: list[int] = []
    while area_id is not None and len(chain) < MAX_AREA_DEPTH:
        chain.append(area_id)
        area_id = session.scalar(select(Area.parent_id).where(Area.id == area_id))
    return chain


def _subtree_ids(session: Session, root_ids: list[int]) -> set[int]:
    """Every area under the given roots, roots included (the tree is small and shallow)."""
    found, frontier = set(root_ids), list(root_ids)
    for _depth in range(MAX_AREA_DEPTH):
        if not frontier:
            break
        frontier = list(session.scalars(select(Area.id).where(Area.parent_id.in_(frontier))))
        found.update(frontier)
    return found


def open_case(
    session: Session, *, identity_id: int, member_id: int | None, team_id: int | None,
    channel: str, category: str, text: str, now: datetime,
) -> OpenedCase:
    """Record a disclosure and find the safeguarding officers who must hear of it."""
    team = session.get(Team, team_id) if team_id is not None else None
    area_id = team.area_id if team is not None else None
    case = SafeguardingCase(identity_id=identity_id, member_id=member_id, team_id=team_id,
                            area_id=area_id, channel=channel, category=category,
                            text=text[:4000], status=CaseStatus.OPEN, created_at=now,
                            updated_at=now)
    session.add(case)
    session.flush()
    chain = area_chain(session, area_id)
    officers: list[OfficerContact] = []
    if chain:
        # The nearest officers first; each officer is told once, on the channel they used last.
        found = session.execute(
            select(SafeguardingOfficer.member_id, Identity.id, Identity.channel,
                   Member.locale, SafeguardingOfficer.area_id, Identity.last_inbound_at)
            .join(Member, Member.id == SafeguardingOfficer.member_id)
            .join(Identity, Identity.member_id == Member.id)
            .where(SafeguardingOfficer.area_id.in_(chain), Member.erased_at.is_(None),
                   Identity.consent == "given", Identity.unreachable_reason.is_(None))
        ).all()
        rank = {a: i for i, a in enumerate(chain)}
        rows = sorted(found, key=lambda r: (rank[r[4]], -(r[5].timestamp() if r[5] else 0)))
        seen: set[int] = set()
        for member, ident, chan, locale, _area, _last in rows:
            if member in seen or member == member_id:
                continue
            seen.add(member)
            officers.append(OfficerContact(member, ident, chan, locale))
    area_name = session.scalar(select(Area.name).where(Area.id == area_id)) if area_id else ""
    return OpenedCase(case.id, case_number(case.id), area_name or "",
                      team.name if team is not None else "", tuple(officers))


def trusted_address_near(session: Session, area_id: int | None) -> str | None:
    """The nearest trusted-address team (địa chỉ tin cậy cộng đồng) to an area, for the hotline
    answer: in the area's commune first, then its district, then anywhere in the province."""
    chain = area_chain(session, area_id)
    for root in chain[1:]:
        name = session.scalar(
            select(Team.name).join(TeamKind, TeamKind.id == Team.kind_id)
            .where(TeamKind.code == TRUSTED_ADDRESS_KIND, Team.active,
                   Team.area_id.in_(_subtree_ids(session, [root])))
            .order_by(Team.id).limit(1))
        if name:
            return name
    return None


# --- who reads cases ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """Who asks to read cases: a province admin, a safeguarding officer in chat (a member),
    or a safeguarding officer of the web console for an area."""

    province_admin: bool = False
    officer_member_id: int | None = None
    officer_area_id: int | None = None


def _visible_areas(session: Session, reader: Reader) -> set[int] | None:
    """None means every area (province admin); an empty set means nothing."""
    if reader.province_admin:
        return None
    if reader.officer_area_id is not None:
        return _subtree_ids(session, [reader.officer_area_id])
    if reader.officer_member_id is None:
        return set()
    roots = list(session.scalars(select(SafeguardingOfficer.area_id).where(
        SafeguardingOfficer.member_id == reader.officer_member_id)))
    return _subtree_ids(session, roots) if roots else set()


def cases_visible_to(
    session: Session, reader: Reader, *, status: str | None = None, limit: int = 50,
) -> list[CaseRow]:
    """The cases this reader may see, newest first; the role is checked in the query."""
    areas = _visible_areas(session, reader)
    if areas is not None and not areas:
        return []
    query = (select(SafeguardingCase, Area.name, Team.name, Member.display_name)
             .outerjoin(Area, Area.id == SafeguardingCase.area_id)
             .outerjoin(Team, Team.id == SafeguardingCase.team_id)
             .outerjoin(Member, Member.id == SafeguardingCase.member_id)
             .order_by(SafeguardingCase.id.desc()).limit(limit))
    if areas is not None:
        query = query.where(SafeguardingCase.area_id.in_(areas))
    if status:
        query = query.where(SafeguardingCase.status == status)
    return [CaseRow(c.id, case_number(c.id), c.status, c.category, c.created_at, area or "",
                    team or "", name or "", c.text)
            for c, area, team, name in session.execute(query)]


def set_case_status(
    session: Session, reader: Reader, case_id: int, status: CaseStatus, *, actor: str,
    now: datetime,
) -> bool:
    """Move a case on; False when it does not exist or the reader may not see it."""
    areas = _visible_areas(session, reader)
    query = update(SafeguardingCase).where(SafeguardingCase.id == case_id)
    if areas is not None:
        query = query.where(SafeguardingCase.area_id.in_(areas or {-1}))
    changed = rows_changed(session.execute(query.values(status=status, handled_by=actor[:120],
                                           updated_at=now)))
    if changed:
        session.add(AuditLog(actor=actor, at=now, action="case.status", object_type="case",
                             object_id=str(case_id), detail={"status": str(status)}))
    return bool(changed)


def grant_officer(session: Session, member_id: int, area_code: str, *, actor: str,
                  now: datetime) -> bool:
    """Give a member the safeguarding role for an area; False when member or area is unknown."""
    member = session.get(Member, member_id)
    area_id = session.scalar(select(Area.id).where(Area.code == area_code))
    if member is None or member.erased_at is not None or area_id is None:
        return False
    exists = session.scalar(select(SafeguardingOfficer.id).where(
        SafeguardingOfficer.member_id == member_id, SafeguardingOfficer.area_id == area_id))
    if exists is None:
        session.add(SafeguardingOfficer(member_id=member_id, area_id=area_id, granted_by=actor,
                                        created_at=now))
        session.add(AuditLog(actor=actor, at=now, action="safeguarding.grant",
                             object_type="member", object_id=str(member_id),
                             detail={"area": area_code}))
    return True


def officers(session: Session) -> list[tuple[int, str, str]]:
    """(member id, name, area code) of every safeguarding officer."""
    return [(m, n, a) for m, n, a in session.execute(
        select(SafeguardingOfficer.member_id, Member.display_name, Area.code)
        .join(Member, Member.id == SafeguardingOfficer.member_id)
        .join(Area, Area.id == SafeguardingOfficer.area_id)
        .order_by(Area.code, Member.id))]


def is_officer(session: Session, member_id: int) -> bool:
    return session.scalar(select(SafeguardingOfficer.id).where(
        SafeguardingOfficer.member_id == member_id).limit(1)) is not None


# --- the phrase list admins extend -----------------------------------------------------------

_PHRASE_CACHE: tuple[float, tuple[tuple[str, str], ...]] = (0.0, ())
PHRASE_CACHE_SECONDS = 60.0


def added_phrases(session: Session) -> tuple[tuple[str, str], ...]:
    """(folded phrase, category) added by admins; read at most once a minute per process, so
    the message path does not pay a query for a list that changes a few times a year."""
    global _PHRASE_CACHE
    loaded_at, phrases = _PHRASE_CACHE
    if time.monotonic() - loaded_at < PHRASE_CACHE_SECONDS and loaded_at:
        return phrases
    phrases = tuple((p, c) for p, c in session.execute(
        select(DisclosurePhrase.phrase, DisclosurePhrase.category)))
    _PHRASE_CACHE = (time.monotonic(), phrases)
    return phrases


def forget_phrase_cache() -> None:
    global _PHRASE_CACHE
    _PHRASE_CACHE = (0.0, ())


def add_phrase(session: Session, phrase: str, category: str, *, actor: str,
               now: datetime) -> str:
    """Store an admin's phrase folded; returns the folded form."""
    folded = fold_words(phrase)
    if not folded:
        raise ValueError("the phrase has no letters or digits")
    if session.scalar(select(DisclosurePhrase.id).where(DisclosurePhrase.phrase == folded)) is None:
        session.add(DisclosurePhrase(phrase=folded, category=category, added_by=actor,
                                     created_at=now))
    forget_phrase_cache()
    return folded


def remove_phrase(session: Session, phrase: str) -> bool:
    changed = rows_changed(session.execute(delete(DisclosurePhrase).where(
        DisclosurePhrase.phrase == fold_words(phrase))))
    forget_phrase_cache()
    return bool(changed)
