"""Consent answers, members, teams, invite and link codes, erasure, and the area and place
choices of the join and report conversations."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from storage.enums import Consent, OutboxStatus, Role
from storage.models import (
    Area,
    AuditLog,
    ConversationState,
    Identity,
    InviteCode,
    LinkCode,
    Media,
    Member,
    Outbox,
    Report,
    Setting,
    Team,
    TeamKind,
)
from storage.search import NameMatch, search_areas
from storage.textfold import fold_name
from storage.values import Choice, Village

# Crockford-style alphabet: no 0/O, 1/I/L confusion when a code is read aloud or copied.
INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LINK_TTL = timedelta(minutes=30)
LINK_LENGTH = 12
INVITE_LENGTH = 8
VILLAGE_TEAM_KIND = "communication"


@dataclass(frozen=True)
class InviteCheck:
    status: str  # ok | unknown | expired | revoked | used_up
    team_id: int | None = None
    team_name: str = ""
    role: str = Role.MEMBER


@dataclass(frozen=True)
class JoinedMember:
    id: int
    name: str
    team_name: str


def folded(text: str) -> str:
    """The search form of a name, for conversations comparing typed text with short lists."""
    return fold_name(text)


def record_consent(session: Session, identity_id: int, *, given: bool, at: datetime) -> None:
    """Store the answer to the consent question, and nothing else about the person."""
    identity = session.get_one(Identity, identity_id)
    identity.consent = Consent.GIVEN if given else Consent.REFUSED
    session.add(AuditLog(actor=f"identity:{identity_id}", at=at,
                         action="consent.given" if given else "consent.refused",
                         object_type="identity", object_id=str(identity_id)))


def find_invite(session: Session, code: str, now: datetime) -> InviteCheck:
    """Whether an invite code can be used now, and for which team."""
    row = session.execute(select(InviteCode, Team).join(Team, Team.id == InviteCode.team_id)
                          .where(InviteCode.code == code)).first()
    if row is None:
        return InviteCheck("unknown")
    invite, team = row
    if invite.revoked_at is not None:
        return InviteCheck("revoked")
    if invite.expires_at <= now:
        return InviteCheck("expired")
    if invite.uses >= invite.max_uses:
        return InviteCheck("used_up")
    return InviteCheck("ok", team.id, team.name, invite.role)


def create_invite(
    session: Session, team_code: str, *, role: str, days: int, max_uses: int, actor: str,
    now: datetime,
) -> tuple[str, str]:
    """A new invite code for a team; returns the code and the team's name."""
    team = session.scalar(select(Team).where(Team.code == team_code))
    if team is None:
        raise LookupError(f"no team with code {team_code!r}")
    code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))
    session.add(InviteCode(code=code, team_id=team.id, role=role, max_uses=max_uses,
                           expires_at=now + timedelta(days=days), created_by=actor))
    session.add(AuditLog(actor=actor, action="invite.create", object_type="team",
                         object_id=team.code, detail={"code": code, "days": days}))
    return code, team.name


def revoke_invite(session: Session, code: str, *, actor: str, now: datetime) -> bool:
    """Stop an invite code from working; False when there is no such code."""
    invite = session.scalar(select(InviteCode).where(InviteCode.code == code.upper()))
    if invite is None:
        return False
    invite.revoked_at = invite.revoked_at or now
    session.add(AuditLog(actor=actor, action="invite.revoke", object_type="invite",
                         object_id=invite.code))
    return True


def join_team(
    session: Session, identity_id: int, *, team_id: int, name: str, role: str,
    invite: str | None, at: datetime,
) -> JoinedMember:
    """Create the member (after consent) and attach this identity to them."""
    identity = session.get_one(Identity, identity_id)
    team = session.get_one(Team, team_id)
    # The role comes from the invite row, never from the conversation: without an invite for
    # this team, a newcomer is a member whatever was asked for.
    granted = session.scalar(select(InviteCode.role).where(
        InviteCode.code == invite, InviteCode.team_id == team.id)) if invite else None
    role = granted if granted in {"member", "leader"} else "member"
    member = Member(display_name=name, role=role, team_id=team.id, locale=identity.locale,
                    consent_at=at, created_at=at)
    session.add(member)
    session.flush()
    identity.member_id = member.id
    if invite:
        session.execute(update(InviteCode).where(InviteCode.code == invite)
                        .values(uses=InviteCode.uses + 1))
    session.add(AuditLog(actor=f"identity:{identity_id}", at=at, action="member.join",
                         object_type="team", object_id=team.code,
                         detail={"member": member.id, "role": role, "invite": invite}))
    return JoinedMember(member.id, name, team.name)


def create_link_code(session: Session, member_id: int, now: datetime) -> str:
    """A one-time code of LINK_LENGTH letters and digits; an older unused one stops working.

    31^12 is about 7.9 * 10^17: even a thousand guesses a second for the code's whole life,
    against a thousand live codes, find one with a chance of about 2 in a billion, before the
    per-sender limits and the near-miss rule (storage.access) slow guessing far more.
    """
    session.execute(update(LinkCode).where(LinkCode.member_id == member_id,
                                           LinkCode.used_at.is_(None)).values(used_at=now))
    while True:
        code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(LINK_LENGTH))
        if session.scalar(select(LinkCode.id).where(LinkCode.code == code)) is None:
            break
    session.add(LinkCode(code=code, member_id=member_id, expires_at=now + LINK_TTL))
    return code


def use_link_code(
    session: Session, code: str, identity_id: int, now: datetime
) -> JoinedMember | None:
    """Attach this identity to the member the code was made for, once."""
    link = session.scalar(select(LinkCode).where(LinkCode.code == code))
    if link is None or link.used_at is not None or link.expires_at <= now:
        return None
    link.used_at = now
    member = session.get_one(Member, link.member_id)
    session.get_one(Identity, identity_id).member_id = member.id
    team = session.get(Team, member.team_id) if member.team_id else None
    session.add(AuditLog(actor=f"identity:{identity_id}", at=now, action="member.link",
                         object_type="member", object_id=str(member.id)))
    return JoinedMember(member.id, member.display_name, team.name if team else "")


# --- places --------------------------------------------------------------------------------


def _choice(area: Area) -> Choice:
    return Choice(area.id, area.code, area.name)


def child_areas(session: Session, parent_id: int | None) -> list[Choice]:
    """The active areas directly under a parent (or the roots), in the plan's order."""
    query = select(Area).where(Area.active.is_(True))
    query = query.where(Area.parent_id.is_(None) if parent_id is None
                        else Area.parent_id == parent_id)
    return [_choice(a) for a in session.scalars(query.order_by(Area.position, Area.id))]


def child_area(session: Session, parent_id: int | None, area_id: int) -> NameMatch | None:
    """One child by id, refusing an id from somewhere else in the tree (an old button)."""
    area = session.get(Area, area_id)
    if area is None or not area.active or area.parent_id != parent_id:
        return None
    return NameMatch(area.id, area.code, area.name, area.level, 0)


def level_of_children(session: Session, parent_id: int | None) -> str:
    """What the next question asks for: district, commune, village…"""
    query = select(Area.level).where(Area.active.is_(True)).limit(1)
    query = query.where(Area.parent_id.is_(None) if parent_id is None
                        else Area.parent_id == parent_id)
    return session.scalar(query) or ""


def search_child_areas(session: Session, parent_id: int | None, text: str) -> list[NameMatch]:
    """Children of one area matching what was typed (accents, spacing and small typos forgiven)."""
    return search_areas(session, text, parent_id=parent_id)


def search_places(session: Session, text: str, near: int | None = None) -> list[NameMatch]:
    """Villages (or, failing that, any area) matching a typed place name.

    Two villages may share a name (Ma Ty, Suối Đá): among equally good matches, the one in
    the same commune as `near` (the member's own village) comes first.
    """
    hits = search_areas(session, text, level="village") or search_areas(session, text)
    near_area = session.get(Area, near) if near is not None else None
    if near_area is None or len(hits) < 2:
        return hits
    parents = dict(session.execute(select(Area.id, Area.parent_id)
                                   .where(Area.id.in_([h.id for h in hits]))).all())

    def far(hit: NameMatch) -> bool:
        return hit.id != near_area.id and parents.get(hit.id) != near_area.parent_id

    return sorted(hits, key=lambda hit: (hit.rank, far(hit)))


def villages(session: Session) -> list[Village]:
    """The active villages of the plan with their communes, to find names in typed reports."""
    commune = aliased(Area)
    rows = session.execute(
        select(Area.id, Area.name, Area.parent_id, commune.name)
        .outerjoin(commune, commune.id == Area.parent_id)
        .where(Area.level == "village", Area.active.is_(True))
        .order_by(Area.id)
    ).all()
    return [Village(row[0], row[1], row[2], row[3] or "") for row in rows]


def commune_of(session: Session, area_id: int | None) -> int | None:
    """The commune an area is in: itself for a commune, its parent for a village."""
    area = session.get(Area, area_id) if area_id is not None else None
    if area is None:
        return None
    return area.id if area.level == "commune" else area.parent_id


def same_commune(session: Session, area_id: int, other_id: int) -> bool:
    """Whether two villages share a parent (or are the same place)."""
    first, second = session.get(Area, area_id), session.get(Area, other_id)
    if first is None or second is None:
        return False
    return first.id == second.id or first.parent_id == second.parent_id


def area_choice(session: Session, area_id: int) -> Choice | None:
    area = session.get(Area, area_id)
    return _choice(area) if area is not None and area.active else None


def place_label(session: Session, area_id: int) -> str:
    """A village with its commune, to tell apart two villages of the same name."""
    area = session.get_one(Area, area_id)
    return f"{area.name} ({area.parent.name})" if area.parent else area.name


def team_home(session: Session, team_id: int) -> Choice | None:
    """The area a team belongs to: the default place of its activities."""
    team = session.get(Team, team_id)
    return area_choice(session, team.area_id) if team else None


def teams_for_join(session: Session, area_id: int) -> list[Choice]:
    """Teams of a village; a village without one gets its communication team on first join."""
    teams = list(session.scalars(select(Team).where(Team.area_id == area_id,
                                                    Team.active.is_(True)).order_by(Team.id)))
    if not teams:
        teams = [ensure_village_team(session, area_id)]
    return [Choice(t.id, t.code, t.name) for t in teams]


def ensure_village_team(session: Session, area_id: int, kind_code: str = VILLAGE_TEAM_KIND) -> Team:
    """The village's communication team: the plan has one per village, so it may be made here."""
    area = session.get_one(Area, area_id)
    kind = session.scalar(select(TeamKind).where(TeamKind.code == kind_code))
    if kind is None:
        raise LookupError(f"team kind {kind_code!r} is not in the plan")
    code = f"{kind_code}.{area.code}"[:64]
    team = session.scalar(select(Team).where(Team.code == code))
    if team is None:
        name = f"{kind.name} {area.name}"
        # Two members may join the same new village at once: the second insert meets the
        # first one's unique code, and takes that team instead (inside a savepoint, so the
        # member's own transaction goes on).
        try:
            with session.begin_nested():
                team = Team(code=code, name=name, name_folded=fold_name(name), kind_id=kind.id,
                            area_id=area.id)
                session.add(team)
                session.flush()
        except IntegrityError:
            team = session.scalar(select(Team).where(Team.code == code))
            if team is None:
                raise
    return team



def erase_member(session: Session, identity_id: int, media_dir: Path, at: datetime) -> int:
    """Erase a member's personal data; their reports stay as anonymous counts for the plan.

    Returns how many photo files were removed.
    """
    identity = session.get_one(Identity, identity_id)
    member_id = identity.member_id
    identities = list(session.scalars(select(Identity).where(Identity.member_id == member_id))
                      ) if member_id else [identity]
    removed = 0
    for ident in identities:
        for media in session.scalars(select(Media).where(Media.identity_id == ident.id)):
            (media_dir / media.storage_key).unlink(missing_ok=True)
            session.delete(media)
            removed += 1
        # Held messages too: a "while you were away" catch-up must not reach someone whose
        # data is gone and whose consent is asked again.
        session.execute(delete(Outbox).where(
            Outbox.identity_id == ident.id,
            Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING,
                               OutboxStatus.OUTSIDE_WINDOW])))
        if ident.id != identity_id:
            session.execute(delete(ConversationState).where(
                ConversationState.identity_id == ident.id))
        # Channels keep small per-chat values (the buttons last shown) keyed by the chat id.
        session.execute(delete(Setting).where(
            Setting.key.endswith(f".{ident.external_id}", autoescape=True)))
        # Only the platform's id stays, as after a refusal: it is needed to answer this
        # request, and a later message starts again from the consent question.
        ident.member_id, ident.consent = None, Consent.PENDING
    if member_id is not None:
        member = session.get_one(Member, member_id)
        member.display_name, member.erased_at, member.consent_at = "", at, None
        session.execute(update(Report).where(Report.member_id == member_id)
                        .values(member_id=None))
        session.execute(delete(LinkCode).where(LinkCode.member_id == member_id))
    session.add(AuditLog(actor=f"identity:{identity_id}", at=at, action="member.erase",
                         object_type="member", object_id=str(member_id or ""),
                         detail={"photos": removed}))
    return removed
