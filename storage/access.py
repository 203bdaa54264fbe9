"""Who may join, link and lead: code attempts, near misses, links to undo, granted roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import throttle
from storage.models import AuditLog, Identity, InviteCode, LinkCode, Member, Team

# Wrong codes: per identity (a web chat identity is its browser session), per network address.
WRONG_PER_IDENTITY = throttle.Limit("code.identity", 5, timedelta(minutes=15))
WRONG_PER_ADDRESS = throttle.Limit("code.address", 20, timedelta(hours=1))
# A wrong code this close to a live one (differing in at most NEAR_DISTANCE places) counts
# against that code; after NEAR_TRIES of them it stops working.
NEAR = throttle.Limit("code.near", 5, timedelta(days=1))
NEAR_DISTANCE = 2
UNDO_DAYS = 7


@dataclass(frozen=True)
class OtherIdentity:
    """Another chat of the same member: where a new link is announced."""

    id: int
    channel: str
    locale: str


@dataclass(frozen=True)
class TeamMember:
    id: int
    name: str
    role: str
    granted_by: str
    channels: tuple[str, ...]


def attempt_keys(identity_id: int, origin: str | None) -> list[tuple[throttle.Limit, str]]:
    """The counters a wrong code is charged to."""
    keys = [(WRONG_PER_IDENTITY, f"identity:{identity_id}")]
    if origin:
        keys.append((WRONG_PER_ADDRESS, f"address:{origin}"))
    return keys


def wait_before_code(session: Session, identity_id: int, origin: str | None,
                     now: datetime) -> timedelta | None:
    """How long this identity or address must wait before its next code is even looked at."""
    return throttle.blocked(session, attempt_keys(identity_id, origin), now)


def _distance(first: str, second: str) -> int:
    """Places at which two codes of the same length differ; longer than any limit otherwise."""
    if len(first) != len(second):
        return len(first) + len(second)
    return sum(a != b for a, b in zip(first, second, strict=True))


def wrong_code(session: Session, code: str, identity_id: int, origin: str | None,
               now: datetime) -> int:
    """Charge a wrong code to its sender and to every live code near it; returns codes killed."""
    throttle.record(session, attempt_keys(identity_id, origin), now)
    killed = 0
    links = session.scalars(select(LinkCode).where(LinkCode.used_at.is_(None),
                                                   LinkCode.expires_at > now))
    for link in links:
        if _distance(link.code, code) <= NEAR_DISTANCE and _near_miss(session, f"link:{link.id}",
                                                                      now):
            link.used_at = now
            killed += 1
    invites = session.scalars(select(InviteCode).where(InviteCode.revoked_at.is_(None),
                                                       InviteCode.expires_at > now))
    for invite in invites:
        if _distance(invite.code, code) <= NEAR_DISTANCE and _near_miss(
                session, f"invite:{invite.id}", now):
            invite.revoked_at = now
            session.add(AuditLog(actor="system", at=now, action="invite.revoke",
                                 object_type="invite", object_id=invite.code,
                                 detail={"reason": "too many wrong codes near it"}))
            killed += 1
    return killed


def _near_miss(session: Session, key: str, now: datetime) -> bool:
    """Count a near miss against one code; True when it has had enough of them."""
    throttle.record(session, [(NEAR, key)], now)
    return throttle.count(session, NEAR.bucket, key, now - NEAR.window) >= NEAR.count


def other_identities(session: Session, member_id: int, but: int) -> list[OtherIdentity]:
    """The member's other chats, which are told about a new link."""
    rows = session.scalars(select(Identity).where(Identity.member_id == member_id,
                                                  Identity.id != but).order_by(Identity.id))
    return [OtherIdentity(i.id, i.channel, i.locale) for i in rows]


def undo_link(session: Session, by_identity_id: int, linked_identity_id: int,
              now: datetime) -> bool:
    """Detach a chat that a link code attached, at the request of an older chat of the member.

    Refused when the pressing chat is not the same member's, is the linked chat itself, or was
    itself attached later than the one it undoes; and after UNDO_DAYS.
    """
    by = session.get(Identity, by_identity_id)
    linked = session.get(Identity, linked_identity_id)
    if by is None or linked is None or by.id == linked.id or by.member_id is None \
            or by.member_id != linked.member_id:
        return False
    linked_at = _linked_at(session, linked.id, by.member_id)
    if linked_at is None or now - linked_at > timedelta(days=UNDO_DAYS):
        return False
    own = _linked_at(session, by.id, by.member_id)
    if own is not None and own > linked_at:
        return False
    linked.member_id = None
    session.add(AuditLog(actor=f"identity:{by.id}", at=now, action="member.unlink",
                         object_type="member", object_id=str(by.member_id),
                         detail={"identity": linked.id}))
    return True


def _linked_at(session: Session, identity_id: int, member_id: int) -> datetime | None:
    return session.scalar(
        select(AuditLog.at).where(AuditLog.action == "member.link",
                                  AuditLog.actor == f"identity:{identity_id}",
                                  AuditLog.object_id == str(member_id))
        .order_by(AuditLog.at.desc()).limit(1))


# --- roles ------------------------------------------------------------------------------------


def set_leader(session: Session, member_id: int, *, leader: bool, actor: str,
               now: datetime) -> Member:
    """An officer's grant (or withdrawal) of the team leader role, kept in the audit log."""
    member = session.get(Member, member_id)
    if member is None or member.erased_at is not None:
        raise LookupError(f"no member with id {member_id}")
    member.role = "leader" if leader else "member"
    session.add(AuditLog(actor=actor, at=now,
                         action="member.grant_leader" if leader else "member.revoke_leader",
                         object_type="member", object_id=str(member.id)))
    return member


def team_members(session: Session, team_code: str) -> list[TeamMember]:
    """A team's members with their role and where it came from, for officers."""
    team = session.scalar(select(Team).where(Team.code == team_code))
    if team is None:
        raise LookupError(f"no team with code {team_code!r}")
    members = list(session.scalars(select(Member).where(
        Member.team_id == team.id, Member.erased_at.is_(None)).order_by(Member.id)))
    ids = [str(m.id) for m in members]
    grants: dict[str, str] = {}
    for action, actor, object_id in session.execute(
            select(AuditLog.action, AuditLog.actor, AuditLog.object_id)
            .where(AuditLog.action.in_(["member.grant_leader", "member.revoke_leader"]),
                   AuditLog.object_id.in_(ids)).order_by(AuditLog.at, AuditLog.id)):
        grants[object_id] = f"granted by {actor}" if action == "member.grant_leader" else ""
    joins: dict[int, str] = {}
    for detail in session.scalars(select(AuditLog.detail).where(
            AuditLog.action == "member.join", AuditLog.object_id == team.code)):
        if isinstance(detail, dict) and isinstance(detail.get("member"), int) \
                and detail.get("invite"):
            joins[detail["member"]] = f"invite {detail['invite']}"
    channels: dict[int, list[str]] = {}
    for member_id, channel in session.execute(
            select(Identity.member_id, Identity.channel)
            .where(Identity.member_id.in_([m.id for m in members])).order_by(Identity.id)):
        if member_id is not None:
            channels.setdefault(member_id, []).append(channel)
    return [TeamMember(m.id, m.display_name, m.role,
                       (grants.get(str(m.id)) or joins.get(m.id, "")) if m.role != "member"
                       else "", tuple(channels.get(m.id, ())))
            for m in members]
