"""What the officers' web reads: reports, members and figures, always within the reader's area.

Every function takes a `Scope`. A province admin's scope is everything; a district or commune
officer's is their area and what lies under it, applied in the query itself (a recursive CTE
over the area tree), so a page, a photo or a report of another area is simply not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from storage.models import (
    ActivityType,
    AdminUser,
    Area,
    AuditLog,
    Identity,
    InviteCode,
    Media,
    Member,
    Report,
    Team,
    Topic,
)
from storage.textfold import fold_name

PAGE_SIZE = 50


class AdminRole(StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"
    VIEWER = "viewer"
    SAFEGUARDING = "safeguarding"


class ReportStatus(StrEnum):
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    RETURNED = "returned"


@dataclass(frozen=True)
class AdminAccount:
    id: int
    username: str
    role: AdminRole
    area_id: int | None
    area_name: str
    active: bool
    password_hash: str

    @property
    def can_verify(self) -> bool:
        return self.role in (AdminRole.PROVINCE, AdminRole.DISTRICT, AdminRole.COMMUNE)

    @property
    def reads_reports(self) -> bool:
        return self.role != AdminRole.SAFEGUARDING

    @property
    def scope(self) -> Scope:
        return Scope(self.area_id)


@dataclass(frozen=True)
class Scope:
    """The reader's area; None means the whole deployment (a province admin)."""

    root_area_id: int | None

    def areas(self) -> Select[int] | None:
        """The ids of the root area and everything under it, as a subquery."""
        if self.root_area_id is None:
            return None
        tree = select(Area.id).where(Area.id == self.root_area_id).cte("scope", recursive=True)
        tree = tree.union_all(select(Area.id).join(tree, Area.parent_id == tree.c.id))
        return select(tree.c.id)


def account(session: Session, *, admin_id: int | None = None,
            username: str | None = None) -> AdminAccount | None:
    query = select(AdminUser, Area.name).outerjoin(Area, Area.id == AdminUser.area_id)
    if admin_id is not None:
        query = query.where(AdminUser.id == admin_id)
    elif username is not None:
        query = query.where(AdminUser.username == username)
    else:
        return None
    row = session.execute(query).first()
    if row is None:
        return None
    user, area_name = row
    try:
        role = AdminRole(user.role)
    except ValueError:
        return None
    # A district or commune officer without an area would read everything: refuse instead.
    if role in (AdminRole.DISTRICT, AdminRole.COMMUNE) and user.area_id is None:
        return None
    return AdminAccount(user.id, user.username, role, user.area_id, area_name or "",
                        user.active, user.password_hash)


# --- audit and login throttling -------------------------------------------------------------


def audit(session: Session, actor: str, action: str, *, object_type: str = "",
          object_id: str = "", detail: dict[str, object] | None = None,
          at: datetime) -> None:
    session.add(AuditLog(actor=actor[:120], at=at, action=action, object_type=object_type,
                         object_id=object_id[:64], detail=dict(detail or {})))


def recent_login_failures(session: Session, *, username: str, address: str,
                          since: datetime) -> tuple[int, int]:
    """(failures for this account, failures from this address) since a moment."""
    base = select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "admin.login_failed", AuditLog.at >= since)
    by_account = session.scalar(base.where(AuditLog.object_id == username[:64])) or 0
    by_address = session.scalar(base.where(AuditLog.actor == f"ip:{address}"[:120])) or 0
    return int(by_account), int(by_address)


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str


def audit_lines(session: Session, *, page: int) -> tuple[list[AuditLine], bool]:
    rows = session.scalars(select(AuditLog).order_by(AuditLog.id.desc())
                           .offset(page * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    return ([AuditLine(r.at, r.actor, r.action, r.object_type, r.object_id)
             for r in rows[:PAGE_SIZE]], len(rows) > PAGE_SIZE)


# --- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFilters:
    area_id: int | None = None
    team_id: int | None = None
    activity_type_id: int | None = None
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class ReportRow:
    id: int
    number: str
    activity_date: date
    activity: str
    team: str
    place: str
    total: int
    women: int
    ethnic: int
    children: int
    status: str
    photos: int


@dataclass(frozen=True)
class ReportDetail:
    row: ReportRow
    topic: str
    notes: str
    channel: str
    created_at: datetime
    member_id: int | None
    photo_ids: tuple[int, ...]  # only those the reader may see
    hidden_photos: int


def _in_scope(scope: Scope) -> list[ColumnElement[bool]]:
    areas = scope.areas()
    if areas is None:
        return []
    # A report belongs to its team's area; one without a team to the place it names.
    return [or_(Team.area_id.in_(areas), and_(Report.team_id.is_(None),
                                              Report.area_id.in_(areas)))]


def _report_query(scope: Scope) -> Select[Report, str, str, str]:
    return (select(Report, ActivityType.name, Team.name, Area.name)
            .join(ActivityType, ActivityType.id == Report.activity_type_id)
            .outerjoin(Team, Team.id == Report.team_id)
            .outerjoin(Area, Area.id == Report.area_id)
            .where(*_in_scope(scope)))


def _row(report: Report, activity: str, team: str | None, place: str | None,
         photos: int) -> ReportRow:
    return ReportRow(report.id, report.number, report.activity_date, activity, team or "",
                     place or report.place_text, report.total, report.women, report.ethnic,
                     report.children, report.status, photos)


def list_reports(session: Session, scope: Scope, filters: ReportFilters, *,
                 page: int) -> tuple[list[ReportRow], bool]:
    """One page of reports, newest first, and whether there is a next page."""
    query = _report_query(scope)
    if filters.area_id is not None:
        sub = Scope(filters.area_id).areas()
        assert sub is not None
        query = query.where(or_(Team.area_id.in_(sub), Report.area_id.in_(sub)))
    if filters.team_id is not None:
        query = query.where(Report.team_id == filters.team_id)
    if filters.activity_type_id is not None:
        query = query.where(Report.activity_type_id == filters.activity_type_id)
    if filters.status:
        query = query.where(Report.status == filters.status)
    if filters.date_from:
        query = query.where(Report.activity_date >= filters.date_from)
    if filters.date_to:
        query = query.where(Report.activity_date <= filters.date_to)
    rows = session.execute(query.order_by(Report.id.desc()).offset(page * PAGE_SIZE)
                           .limit(PAGE_SIZE + 1)).all()
    ids = [r[0].id for r in rows[:PAGE_SIZE]]
    counts = dict(session.execute(select(Media.report_id, func.count()).where(
        Media.report_id.in_(ids)).group_by(Media.report_id)).all()) if ids else {}
    return ([_row(r, a, t, p, counts.get(r.id, 0)) for r, a, t, p in rows[:PAGE_SIZE]],
            len(rows) > PAGE_SIZE)


def report_detail(session: Session, scope: Scope, report_id: int, *,
                  sees_identifiable: bool) -> ReportDetail | None:
    """A report within the reader's area, or None (the page answers 404)."""
    found = session.execute(_report_query(scope).where(Report.id == report_id)).first()
    if found is None:
        return None
    report, activity, team, place = found
    photos = session.execute(select(Media.id, Media.identifiable).where(
        Media.report_id == report.id, Media.status == "ready").order_by(Media.id)).all()
    shown = tuple(m for m, flagged in photos if sees_identifiable or not flagged)
    topic = session.scalar(select(Topic.name).where(Topic.id == report.topic_id)) \
        if report.topic_id else None
    return ReportDetail(_row(report, activity, team, place, len(photos)),
                        topic or report.topic_text, report.notes, report.channel,
                        report.created_at, report.member_id, shown, len(photos) - len(shown))


def photo_in_scope(session: Session, scope: Scope, media_id: int, *,
                   sees_identifiable: bool) -> tuple[str, str] | None:
    """(storage key, content type) of a report's photo the reader may see, else None."""
    query = (select(Media.storage_key, Media.content_type, Media.identifiable)
             .join(Report, Report.id == Media.report_id)
             .outerjoin(Team, Team.id == Report.team_id)
             .where(Media.id == media_id, Media.status == "ready", *_in_scope(scope)))
    row = session.execute(query).first()
    if row is None or (row[2] and not sees_identifiable):
        return None
    return str(row[0]), str(row[1])


@dataclass(frozen=True)
class ReviewOutcome:
    number: str
    member_identity: tuple[int, str, str] | None  # (identity id, channel, locale)


def review_report(session: Session, scope: Scope, report_id: int,
                  status: ReportStatus) -> ReviewOutcome | None:
    """Verify or return a report in scope; who to tell, on the channel they used last."""
    found = session.execute(_report_query(scope).where(Report.id == report_id)).first()
    if found is None:
        return None
    report = found[0]
    report.status = status
    target = None
    if report.member_id is not None:
        ident = session.execute(
            select(Identity.id, Identity.channel, Member.locale)
            .join(Member, Member.id == Identity.member_id)
            .where(Identity.member_id == report.member_id, Identity.consent == "given",
                   Member.erased_at.is_(None))
            .order_by(Identity.last_inbound_at.desc().nulls_last(), Identity.id)).first()
        if ident is not None:
            target = (int(ident[0]), str(ident[1]), str(ident[2]))
    return ReviewOutcome(report.number, target)


# --- members ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    id: int
    name: str
    role: str
    team: str
    channels: str
    unreachable: str
    reports: int
    deactivated: bool = False


def list_members(session: Session, scope: Scope, *, search: str, page: int
                 ) -> tuple[list[MemberRow], bool]:
    """Members of teams in scope; `search` matches names typed with or without diacritics."""
    query = (select(Member, Team.name).join(Team, Team.id == Member.team_id)
             .where(Member.erased_at.is_(None), *_team_scope(scope))
             .order_by(Member.display_name, Member.id))
    key = fold_name(search)
    if key:
        # Names have no folded column: compare folded in Python, over names only.
        names = session.execute(select(Member.id, Member.display_name)
                                .join(Team, Team.id == Member.team_id)
                                .where(Member.erased_at.is_(None), *_team_scope(scope))
                                .order_by(Member.display_name, Member.id)).all()
        hits = [i for i, name in names if key in fold_name(name)]
        wanted = hits[page * PAGE_SIZE:(page + 1) * PAGE_SIZE + 1]
        window = session.execute(query.where(Member.id.in_(wanted))).all() if wanted else []
        more = len(wanted) > PAGE_SIZE
    else:
        window = session.execute(query.offset(page * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
        more = len(window) > PAGE_SIZE
    ids = [m.id for m, _team in window[:PAGE_SIZE]]
    channels: dict[int, list[str]] = {}
    trouble: dict[int, list[str]] = {}
    for member_id, channel, reason in session.execute(
            select(Identity.member_id, Identity.channel, Identity.unreachable_reason)
            .where(Identity.member_id.in_(ids))):
        if member_id is None:
            continue
        channels.setdefault(member_id, []).append(channel)
        if reason:
            trouble.setdefault(member_id, []).append(f"{channel}: {reason}")
    counts = dict(session.execute(select(Report.member_id, func.count()).where(
        Report.member_id.in_(ids)).group_by(Report.member_id)).all()) if ids else {}
    return ([MemberRow(m.id, m.display_name, m.role, team, ", ".join(channels.get(m.id, [])),
                       "; ".join(trouble.get(m.id, [])), counts.get(m.id, 0),
                       m.deactivated_at is not None)
             for m, team in window[:PAGE_SIZE]], more)


def _team_scope(scope: Scope) -> list[ColumnElement[bool]]:
    areas = scope.areas()
    return [] if areas is None else [Team.area_id.in_(areas)]


# --- filters --------------------------------------------------------------------------------------


def scope_choices(session: Session, scope: Scope) -> list[tuple[int, str]]:
    """Areas a filter may pick, within the scope (districts and communes; villages are many)."""
    query = select(Area.id, Area.name, Area.level).where(Area.level.in_(["district",
                                                                         "commune"]))
    areas = scope.areas()
    if areas is not None:
        query = query.where(Area.id.in_(areas))
    return [(i, f"{n} ({lvl})") for i, n, lvl in session.execute(query.order_by(Area.code))]


def default_period(today: date) -> tuple[date, date]:
    """The reporting year so far: 1 January to today."""
    return date(today.year, 1, 1), today


# --- invite codes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class InviteRow:
    id: int
    code: str
    team: str
    role: str
    uses: int
    max_uses: int
    expires_at: datetime
    revoked: bool
    created_by: str


def teams_in_scope(session: Session, scope: Scope) -> list[tuple[str, str]]:
    """(team code, team name) of the active teams the reader may invite to."""
    return [(c, n) for c, n in session.execute(
        select(Team.code, Team.name).where(Team.active, *_team_scope(scope))
        .order_by(Team.name))]


def list_invites(session: Session, scope: Scope, *, page: int) -> tuple[list[InviteRow], bool]:
    rows = session.execute(
        select(InviteCode, Team.name).join(Team, Team.id == InviteCode.team_id)
        .where(*_team_scope(scope)).order_by(InviteCode.id.desc())
        .offset(page * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    return ([InviteRow(i.id, i.code, team, i.role, i.uses, i.max_uses, i.expires_at,
                       i.revoked_at is not None, i.created_by)
             for i, team in rows[:PAGE_SIZE]], len(rows) > PAGE_SIZE)


def invite_code_in_scope(session: Session, scope: Scope, invite_id: int) -> str | None:
    return session.scalar(select(InviteCode.code).join(Team, Team.id == InviteCode.team_id)
                          .where(InviteCode.id == invite_id, *_team_scope(scope)))


def team_code_in_scope(session: Session, scope: Scope, team_code: str) -> bool:
    return session.scalar(select(Team.id).where(Team.code == team_code,
                                                *_team_scope(scope))) is not None


# --- exports --------------------------------------------------------------------------------


def area_code_in_scope(session: Session, scope: Scope, area_id: int | None) -> str | None:
    """The code of an area the reader may export, or None when it is outside their area.

    No area asked means the reader's own: the whole plan (None is returned as "" then) for a
    province-wide reader, their district or commune for an officer.
    """
    if area_id is None:
        area_id = scope.root_area_id
        if area_id is None:
            return ""
    query = select(Area.code).where(Area.id == area_id, Area.active.is_(True))
    areas = scope.areas()
    if areas is not None:
        query = query.where(Area.id.in_(areas))
    return session.scalar(query)
