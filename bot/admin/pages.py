"""The officers' pages: reports, members, invite codes, safeguarding cases, audit log.

Each read goes through storage.admin_views with the signed-in account's scope, so another
area's report, photo or member is answered 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from flask import abort, redirect, render_template, request, send_file, url_for
from flask_login import login_required

from bot.admin.common import audit, bp, config, me, reading, writing
from bot.admin.forms import CaseStatusForm, InviteForm, LogoutForm, ReviewForm
from bot.dispatcher import render_reply
from handlers.types import Button, Reply
from messages_vi import _
from storage import admin_views, outbox
from storage import members as members_store
from storage import safeguarding as cases_store
from storage.admin_views import AdminRole, ReportFilters, ReportStatus
from storage.models import utcnow

# Values shown through the catalogs (`_(row.status)` in the templates).
LABELS = (_("submitted"), _("verified"), _("returned"), _("open"), _("contacted"),
          _("closed"), _("member"), _("leader"))


def _today() -> date:
    return utcnow().astimezone(config().tz).date()


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def _page() -> int:
    return min(_int_arg("page") or 0, 10_000)


def _needs_reports() -> None:
    if not me().reads_reports:
        abort(404)


def _sees_identifiable() -> bool:
    """Photos that may show a woman or child: the area's officers and province admins only."""
    return me().role in (AdminRole.PROVINCE, AdminRole.DISTRICT, AdminRole.COMMUNE)


def _common() -> dict[str, Any]:
    return {"me": me(), "logout_form": LogoutForm(), "tz": config().tz}


@bp.get("/reports")
@login_required
def reports() -> Any:
    _needs_reports()
    filters = ReportFilters(
        area_id=_int_arg("area"), team_id=_int_arg("team"),
        activity_type_id=_int_arg("type"),
        status=request.args.get("status") if request.args.get("status") in set(ReportStatus)
        else None,
        date_from=_date_arg("from"), date_to=_date_arg("to"))
    page = _page()
    with writing() as session:
        rows, more = admin_views.list_reports(session, me().scope, filters, page=page)
        areas = admin_views.scope_choices(session, me().scope)
        audit(session, "report.list", detail={"page": page, "count": len(rows)})
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("admin/reports.html", rows=rows, more=more, page=page,
                           areas=areas, filters=filters, args=args,
                           statuses=list(ReportStatus), **_common())


@bp.get("/reports/<int:report_id>")
@login_required
def report(report_id: int) -> Any:
    _needs_reports()
    with writing() as session:
        detail = admin_views.report_detail(session, me().scope, report_id,
                                           sees_identifiable=_sees_identifiable())
        if detail is None:
            abort(404)
        audit(session, "report.view", object_type="report", object_id=str(report_id))
    return render_template("admin/report.html", detail=detail, form=ReviewForm(),
                           **_common())


@bp.post("/reports/<int:report_id>/<any(verify, return):action>")
@login_required
def review(report_id: int, action: str) -> Any:
    _needs_reports()
    if not me().can_verify:
        abort(403)
    form = ReviewForm()
    if not form.validate_on_submit():
        abort(400)
    reason = (form.reason.data or "").strip()
    if action == "return" and not reason:
        return redirect(url_for("admin.report", report_id=report_id, need_reason=1))
    status = ReportStatus.VERIFIED if action == "verify" else ReportStatus.RETURNED
    now = utcnow()
    with writing() as session:
        outcome = admin_views.review_report(session, me().scope, report_id, status)
        if outcome is None:
            abort(404)
        audit(session, f"report.{status}", object_type="report", object_id=str(report_id),
              detail={"reason": reason} if reason else None)
        if outcome.member_identity is not None:
            identity_id, channel, locale = outcome.member_identity
            text = (_("Your report {number} was checked and confirmed. Thank you!",
                      number=outcome.number) if status == ReportStatus.VERIFIED else
                    _("Your report {number} was returned by the Women's Union: {reason}",
                      number=outcome.number, reason=reason))
            # Queued with the change itself; the worker delivers it, never this request.
            outbox.enqueue(session, identity_id, channel,
                           render_reply(Reply.of(text, buttons=(
                               Button(_("My reports"), "cmd:my_reports"),)), locale),
                           priority=outbox.PRIORITY_BULK, now=now)
    return redirect(url_for("admin.report", report_id=report_id))


def _stored_photo(media_id: int, action: str) -> tuple[str, Path, str]:
    """A report photo the reader may see, as its media key, file and type; 404 otherwise.

    The scope check is in the query (a photo of a report outside the reader's area is not
    found), the view is audited, and a key that would lead out of the media directory is
    refused even though only the service writes keys.
    """
    _needs_reports()
    with writing() as session:
        found = admin_views.photo_in_scope(session, me().scope, media_id,
                                           sees_identifiable=_sees_identifiable())
        if found is None:
            abort(404)
        audit(session, action, object_type="media", object_id=str(media_id))
    key, content_type = found
    media = config().media_path.resolve()
    path = (media / key).resolve()
    if media not in path.parents or not path.is_file():
        abort(404)
    return key, path, content_type


@bp.get("/photos/<int:media_id>")
@login_required
def photo(media_id: int) -> Any:
    _key, path, content_type = _stored_photo(media_id, "photo.view")
    return send_file(path, mimetype=content_type, max_age=0)


@bp.get("/members")
@login_required
def members() -> Any:
    _needs_reports()
    search = request.args.get("q", "")[:100]
    page = _page()
    with writing() as session:
        rows, more = admin_views.list_members(session, me().scope, search=search, page=page)
        audit(session, "member.list", detail={"q": search, "page": page, "count": len(rows)})
    return render_template("admin/members.html", rows=rows, more=more, page=page, q=search,
                           **_common())


def _case_reader() -> cases_store.Reader:
    account = me()
    if account.role == AdminRole.PROVINCE:
        return cases_store.Reader(province_admin=True)
    if account.role == AdminRole.SAFEGUARDING:
        if account.area_id is None:
            return cases_store.Reader(province_admin=True)
        return cases_store.Reader(officer_area_id=account.area_id)
    abort(404)


@bp.get("/cases")
@login_required
def cases() -> Any:
    reader = _case_reader()
    status = request.args.get("status") or None
    if status not in (None, *cases_store.CaseStatus):
        status = None
    with writing() as session:
        rows = cases_store.cases_visible_to(session, reader, status=status, limit=200)
        audit(session, "case.list", detail={"count": len(rows)})
    return render_template("admin/cases.html", rows=rows, form=CaseStatusForm(),
                           statuses=list(cases_store.CaseStatus), **_common())


@bp.post("/cases/<int:case_id>/<any(open, contacted, closed):status>")
@login_required
def case_status(case_id: int, status: str) -> Any:
    reader = _case_reader()
    if not CaseStatusForm().validate_on_submit():
        abort(400)
    with writing() as session:
        if not cases_store.set_case_status(session, reader, case_id,
                                           cases_store.CaseStatus(status),
                                           actor=f"admin:{me().username}", now=utcnow()):
            abort(404)
    return redirect(url_for("admin.cases"))


@bp.get("/audit")
@login_required
def audit_log() -> Any:
    if me().role != AdminRole.PROVINCE:
        abort(404)
    page = _page()
    with reading() as session:
        lines, more = admin_views.audit_lines(session, page=page)
    return render_template("admin/audit.html", lines=lines, more=more, page=page, **_common())


@bp.route("/invites", methods=["GET", "POST"])
@login_required
def invites() -> Any:
    """Invite codes of the officer's teams: create one for a role, revoke one, see its use."""
    _needs_reports()
    form = InviteForm()
    page = _page()
    with writing() as session:
        teams = admin_views.teams_in_scope(session, me().scope)
        created = None
        if request.method == "POST":
            if not me().can_verify:
                abort(403)
            if not form.validate_on_submit():
                abort(400)
            team_code = str(form.team.data)
            if not admin_views.team_code_in_scope(session, me().scope, team_code):
                abort(404)
            created, _team = members_store.create_invite(
                session, team_code, role=str(form.role.data), days=int(form.days.data or 30),
                max_uses=int(form.max_uses.data or 30), actor=f"admin:{me().username}",
                now=utcnow())
        rows, more = admin_views.list_invites(session, me().scope, page=page)
        audit(session, "invite.list", detail={"page": page})
    return render_template("admin/invites.html", form=form, rows=rows, more=more, page=page,
                           created=created, teams=teams, revoke_form=CaseStatusForm(), **_common())


@bp.post("/invites/<int:invite_id>/revoke")
@login_required
def revoke_invite(invite_id: int) -> Any:
    _needs_reports()
    if not me().can_verify:
        abort(403)
    if not CaseStatusForm().validate_on_submit():
        abort(400)
    with writing() as session:
        code = admin_views.invite_code_in_scope(session, me().scope, invite_id)
        if code is None:
            abort(404)
        members_store.revoke_invite(session, code, actor=f"admin:{me().username}",
                                    now=utcnow())
    return redirect(url_for("admin.invites"))
