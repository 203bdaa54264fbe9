"""The reminder ledger: who is owed a reminder, and the record that makes each one go out once.

The due reminders start from the completeness query, so only members of teams that have not
reported are found, each with the one chat they are best reached on, leaving out whoever the
ledger already has for that (deadline, period, member, offset). Writing a ledger row and
queueing its message happen in one transaction, and the ledger's unique key refuses a second
writer: each reminder exactly once across restarts and several workers.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.completeness import PeriodDue, completeness_select
from storage.enums import Role
from storage.models import Area, AuditLog, Identity, Member
from storage.models_deadlines import (
    DigestLedger,
    NilReport,
    OfficerGrant,
    OfficerInvite,
    ReminderLedger,
)

SNOOZE_OFFSET = -10_000
OFFICER_ROLES = ("officer_commune", "officer_district", "officer_province")


def escalation_offset(days_after_due: int) -> int:
    """Escalations share the ledger below zero: -1 on the due date, -8 a week after."""
    return -1 - days_after_due


class DueReminder(NamedTuple):
    """One member of a team that has not reported, owed the reminder at `offset_days`.

    A named tuple: a run may build hundreds of thousands of them.
    """

    occ: int  # index into the dues the query was asked for
    deadline_id: int
    period: str
    offset_days: int
    team_id: int
    team_name: str
    member_id: int
    member_name: str
    role: str
    identity_id: int
    channel: str
    locale: str = "vi"


def _best_identity() -> Any:
    """Each member's chat to write to: consented, reachable, the one they used last."""
    rank = func.row_number().over(
        partition_by=Identity.member_id,
        order_by=(func.coalesce(Identity.last_inbound_at, Identity.created_at).desc(),
                  Identity.id.desc()))
    return (select(Identity.id, Identity.member_id, Identity.channel, rank.label("rank"))
            .where(Identity.member_id.is_not(None), Identity.consent == "given",
                   Identity.unreachable_reason.is_(None))
            .subquery("best"))


def due_reminders(session: Session, dues: Sequence[PeriodDue]) -> list[DueReminder]:
    """Everyone owed a reminder for these dues (each with its offset), in three queries.

    In no particular order (the preview sorts what it prints).

    The completeness query once per team, then the members (with their best chat) of the teams
    that have not reported, then the ledger rows already written for these dues; joined here,
    so the per-team counts are not run again for every member.
    """
    if not dues:
        return []
    conn = session.connection()
    late: dict[int, list[tuple[int, int, str]]] = {}  # team -> [(occ, team, name)]
    for row in conn.execute(completeness_select(dues)):
        if not (row.reports or row.nil):
            late.setdefault(row.team_id, []).append((row.occ, row.team_id, row.team_name))
    if not late:
        return []
    best = _best_identity()
    teams = list(late)
    members = conn.execute(
        select(Member.team_id, Member.id, Member.display_name, Member.role, best.c.id,
               best.c.channel, Member.locale)
        .join(best, and_(best.c.member_id == Member.id, best.c.rank == 1))
        .where(Member.team_id.in_(teams), Member.erased_at.is_(None),
               Member.deactivated_at.is_(None))
        .order_by(Member.team_id, Member.id)).all()
    keys = {(d.deadline_id, d.period, d.offset_days) for d in dues}
    sent = {tuple(r) for r in conn.execute(
        select(ReminderLedger.deadline_id, ReminderLedger.period, ReminderLedger.offset_days,
               ReminderLedger.member_id)
        .where(or_(*(and_(ReminderLedger.deadline_id == k[0], ReminderLedger.period == k[1],
                          ReminderLedger.offset_days == k[2]) for k in keys))))}
    by_team: dict[int, list[Any]] = {}
    for m in members:
        by_team.setdefault(m[0], []).append(m)
    owed = []
    for team_id, rows in late.items():
        people = by_team.get(team_id, ())
        for occ, _team, team_name in rows:
            due = dues[occ]
            for _t, member_id, name, role, identity_id, channel, locale in people:
                if due.roles and role not in due.roles:
                    continue
                if sent and (due.deadline_id, due.period, due.offset_days, member_id) in sent:
                    continue
                owed.append(DueReminder(occ, due.deadline_id, due.period, due.offset_days,
                                        team_id, team_name, member_id, name, role,
                                        identity_id, channel, locale))
    return owed


def _insert(session: Session, model: type) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model))


def claim(session: Session, owed: Sequence[DueReminder], *, kind: str, now: datetime
          ) -> list[tuple[int, DueReminder]]:
    """Write ledger rows for these; returns (ledger id, reminder) for the ones this
    transaction wrote, never one another worker wrote first."""
    if not owed:
        return []
    stmt = (_insert(session, ReminderLedger).on_conflict_do_nothing(
        index_elements=["deadline_id", "period", "member_id", "offset_days"])
        .returning(ReminderLedger.id, ReminderLedger.deadline_id, ReminderLedger.period,
                   ReminderLedger.member_id, ReminderLedger.offset_days))
    written: dict[tuple[int, str, int, int], int] = {}
    rows = [{"kind": kind, "deadline_id": o.deadline_id, "period": o.period,
             "member_id": o.member_id, "offset_days": o.offset_days,
             "identity_id": o.identity_id, "status": "sent", "due_at": now, "created_at": now}
            for o in owed]
    for start in range(0, len(rows), 1000):
        for r in session.execute(stmt, rows[start:start + 1000]):
            written[(r[1], r[2], r[3], r[4])] = r[0]
    keys = [(o.deadline_id, o.period, o.member_id, o.offset_days) for o in owed]
    return [(written[k], o) for k, o in zip(keys, owed, strict=True) if k in written]


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    kind: str
    deadline_id: int
    period: str
    member_id: int
    offset_days: int


def entry(session: Session, entry_id: int) -> LedgerEntry | None:
    row = session.get(ReminderLedger, entry_id)
    if row is None:
        return None
    return LedgerEntry(row.id, row.kind, row.deadline_id, row.period, row.member_id,
                       row.offset_days)


def snooze(session: Session, of: LedgerEntry, *, until: datetime, now: datetime) -> bool:
    """Owe this member one more reminder at `until`; False when they already snoozed once."""
    stmt = (_insert(session, ReminderLedger).on_conflict_do_nothing(
        index_elements=["deadline_id", "period", "member_id", "offset_days"])
        .returning(ReminderLedger.id))
    written = session.execute(stmt, [{
        "kind": "snooze", "deadline_id": of.deadline_id, "period": of.period,
        "member_id": of.member_id, "offset_days": SNOOZE_OFFSET, "identity_id": None,
        "status": "owed", "due_at": until, "created_at": now}]).all()
    return bool(written)


@dataclass(frozen=True)
class OwedSnooze:
    id: int
    deadline_id: int
    period: str
    member_id: int


def owed_snoozes(session: Session, now: datetime) -> list[OwedSnooze]:
    """Snoozes whose moment has come, taken (marked sent) in the caller's transaction."""
    rows = session.execute(select(ReminderLedger.id, ReminderLedger.deadline_id,
                                  ReminderLedger.period, ReminderLedger.member_id)
                           .where(ReminderLedger.status == "owed",
                                  ReminderLedger.due_at <= now)
                           .with_for_update(skip_locked=True)).all()
    if rows:
        session.execute(update(ReminderLedger).where(ReminderLedger.id.in_([r[0] for r in rows]))
                        .values(status="sent"))
    return [OwedSnooze(*r) for r in rows]


def skip_snooze(session: Session, snooze_id: int) -> None:
    session.execute(update(ReminderLedger).where(ReminderLedger.id == snooze_id)
                    .values(status="skipped"))


def record_nil(session: Session, *, team_id: int, deadline_id: int, period: str,
               member_id: int, now: datetime) -> bool:
    """The team's "no activity" for the period; False when the team had already said so."""
    stmt = (_insert(session, NilReport).on_conflict_do_nothing(
        index_elements=["team_id", "deadline_id", "period"]).returning(NilReport.id))
    written = session.execute(stmt, [{"team_id": team_id, "deadline_id": deadline_id,
                                      "period": period, "member_id": member_id,
                                      "created_at": now}]).all()
    if written:
        session.add(AuditLog(actor=f"member:{member_id}", at=now, action="report.nil",
                             object_type="team", object_id=str(team_id),
                             detail={"deadline": deadline_id, "period": period}))
    return bool(written)


# --- officers of an area ---------------------------------------------------------------------


@dataclass(frozen=True)
class Officer:
    member_id: int
    role: str
    area_id: int
    area_name: str
    identity_id: int
    channel: str
    locale: str


def officers(session: Session, roles: Sequence[str]) -> list[Officer]:
    """Officers with these roles and a chat to reach them on."""
    best = _best_identity()
    rows = session.execute(
        select(OfficerGrant.member_id, OfficerGrant.role, OfficerGrant.area_id, Area.name,
               best.c.id, best.c.channel, Member.locale)
        .join(Member, and_(Member.id == OfficerGrant.member_id, Member.erased_at.is_(None),
                           Member.deactivated_at.is_(None)))
        .join(Area, Area.id == OfficerGrant.area_id)
        .join(best, and_(best.c.member_id == OfficerGrant.member_id, best.c.rank == 1))
        .where(OfficerGrant.role.in_(list(roles))).order_by(OfficerGrant.member_id))
    return [Officer(*r) for r in rows]


def claim_escalation(session: Session, *, deadline_id: int, period: str, member_id: int,
                     offset_days: int, identity_id: int, now: datetime) -> bool:
    """The ledger row for one officer's escalation; False when it was already sent."""
    stmt = (_insert(session, ReminderLedger).on_conflict_do_nothing(
        index_elements=["deadline_id", "period", "member_id", "offset_days"])
        .returning(ReminderLedger.id))
    return bool(session.execute(stmt, [{
        "kind": "escalation", "deadline_id": deadline_id, "period": period,
        "member_id": member_id, "offset_days": offset_days, "identity_id": identity_id,
        "status": "sent", "due_at": now, "created_at": now}]).all())


def claim_digest(session: Session, member_id: int, day: date, now: datetime) -> bool:
    stmt = (_insert(session, DigestLedger).on_conflict_do_nothing(
        index_elements=["member_id", "day"]).returning(DigestLedger.id))
    return bool(session.execute(stmt, [{"member_id": member_id, "day": day,
                                        "created_at": now}]).all())


INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def create_officer_invite(session: Session, area_code: str, role: str, *, actor: str,
                          now: datetime, days: int = 14, max_uses: int = 5) -> tuple[str, str]:
    """A code an officer of an area joins with; returns (code, area name)."""
    if role not in OFFICER_ROLES:
        raise ValueError(f"role must be one of {', '.join(OFFICER_ROLES)}")
    area = session.scalar(select(Area).where(Area.code == area_code))
    if area is None:
        raise ValueError(f"no area {area_code!r}")
    code = "CB" + "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8))
    session.add(OfficerInvite(code=code, area_id=area.id, role=role,
                              expires_at=now + timedelta(days=days), max_uses=max_uses,
                              created_by=actor, created_at=now))
    session.add(AuditLog(actor=actor, at=now, action="officer_invite.create", object_type="area",
                         object_id=area.code, detail={"role": role}))
    return code, area.name


@dataclass(frozen=True)
class OfficerJoin:
    status: str  # ok | unknown | expired | used_up
    role: str = ""
    area_name: str = ""


def use_officer_invite(session: Session, code: str, identity_id: int, now: datetime
                       ) -> OfficerJoin:
    """Make this chat's person an officer of the invite's area (a member with no team)."""
    invite = session.scalar(select(OfficerInvite).where(OfficerInvite.code == code)
                            .with_for_update())
    if invite is None or invite.revoked_at is not None:
        return OfficerJoin("unknown")
    if invite.expires_at <= now:
        return OfficerJoin("expired")
    if invite.uses >= invite.max_uses:
        return OfficerJoin("used_up")
    identity = session.get_one(Identity, identity_id)
    area = session.get_one(Area, invite.area_id)
    # The officer's role lives in the grant; as a person they are an ordinary member with no
    # team (members.role holds team roles only, and the database refuses anything else).
    member = Member(display_name="", role=Role.MEMBER, team_id=None, locale=identity.locale,
                    consent_at=now, created_at=now)
    session.add(member)
    session.flush()
    identity.member_id = member.id
    session.add(OfficerGrant(member_id=member.id, area_id=area.id, role=invite.role,
                             created_at=now))
    invite.uses += 1
    session.add(AuditLog(actor=f"identity:{identity_id}", at=now, action="officer.join",
                         object_type="area", object_id=area.code,
                         detail={"member": member.id, "role": invite.role}))
    return OfficerJoin("ok", invite.role, area.name)


@dataclass(frozen=True)
class Contact:
    member_id: int
    team_id: int | None
    identity_id: int
    channel: str
    locale: str


def contact(session: Session, member_id: int) -> Contact | None:
    """The member's team and the chat to reach them on, or None (erased, unreachable)."""
    best = _best_identity()
    row = session.execute(
        select(Member.id, Member.team_id, best.c.id, best.c.channel, Member.locale)
        .join(best, and_(best.c.member_id == Member.id, best.c.rank == 1))
        .where(Member.id == member_id, Member.erased_at.is_(None),
               Member.deactivated_at.is_(None))).first()
    return Contact(*row) if row else None
