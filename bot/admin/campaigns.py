"""Content and broadcasts on the web: the library, a composer with a live audience count, and
each broadcast's progress, followed live.

Every officer who reads reports may read the library; only province admins write to it and
send broadcasts (a broadcast reaches past any one district). The queries are the CLI's
(storage.content, storage.broadcasts): this module only turns form fields into their typed
values, and refuses anything it cannot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from bot.admin.common import audit, bp, config, me, reading, writing
from bot.admin.forms import ContentForm, PostForm
from bot.admin.pages import _common, _int_arg, _needs_reports
from messages_vi import _
from storage import broadcasts, plan_admin
from storage import content as library
from storage.admin_views import AdminRole
from storage.broadcasts import Audience, BroadcastError
from storage.content import ContentError
from storage.models import utcnow

# A broadcast's states and the member roles, shown through the catalogs.
LABELS = (_("scheduled"), _("fanning_out"), _("sending"), _("paused"), _("cancelled"),
          _("done"), _("district"), _("commune"))
ROLES = ("member", "leader")
MAX_CODES = 50


def _province() -> None:
    """Broadcasts are the province's: anyone else is told the page does not exist."""
    if me().role != AdminRole.PROVINCE:
        abort(404)


def _writer() -> None:
    if me().role != AdminRole.PROVINCE:
        abort(403)


# --- the library ------------------------------------------------------------------------------


@bp.get("/content")
@login_required
def content_list() -> Any:
    _needs_reports()
    with reading() as session:
        items = library.list_items(session, limit=200)
    return render_template("admin/content_list.html", items=items, **_common())


@bp.get("/content/<int:item_id>")
@login_required
def content_item(item_id: int) -> Any:
    _needs_reports()
    with reading() as session:
        current = library.get_item(session, item_id)
        shown = library.get_item(session, item_id, version=_int_arg("version")) \
            if current is not None and _int_arg("version") else current
    if current is None or shown is None:
        abort(404)
    return render_template("admin/content_item.html", item=shown, current=current,
                           **_common())


def _tags(text: str) -> list[str]:
    return [t.strip()[:40] for t in text.split(",") if t.strip()][:20]


@bp.route("/content/new", methods=["GET", "POST"])
@bp.route("/content/<int:item_id>/edit", methods=["GET", "POST"])
@login_required
def content_edit(item_id: int | None = None) -> Any:
    _needs_reports()
    _writer()
    form = ContentForm()
    error = None
    with writing() as session:
        topics = plan_admin.topics(session)
        current = library.get_item(session, item_id) if item_id is not None else None
        if item_id is not None and current is None:
            abort(404)
        if request.method == "POST":
            if not form.validate_on_submit():
                abort(400)
            actor = f"admin:{me().username}"
            try:
                if current is None:
                    item_id = library.add_item(
                        session, title=str(form.title.data), text=str(form.text.data),
                        topic_code=str(form.topic.data or "") or None,
                        tags=_tags(str(form.tags.data or "")),
                        use_in_village=bool(form.use_in_village.data), actor=actor)
                else:
                    library.edit_item(session, current.id, title=str(form.title.data),
                                      text=str(form.text.data), actor=actor)
            except ContentError as exc:
                error = str(exc)
            else:
                return redirect(url_for("admin.content_item", item_id=item_id))
        elif current is not None:
            form.title.data, form.text.data = current.title, current.text
    return render_template("admin/content_edit.html", form=form, item=current, topics=topics,
                           error=error, **_common()), 400 if error else 200


# --- broadcasts -------------------------------------------------------------------------------


def _codes(values: list[str], limit: int = 128) -> tuple[str, ...]:
    """Codes as given, stripped and bounded; more than MAX_CODES is refused."""
    codes = tuple(dict.fromkeys(v.strip()[:limit] for v in values if v.strip()))
    if len(codes) > MAX_CODES:
        abort(400)
    return codes


def _audience(data: MultiDict[str, str]) -> Audience:
    """The composer's fields as an Audience; unknown codes are caught by storage."""
    roles = _codes(data.getlist("role"))
    if any(r not in ROLES for r in roles):
        abort(400)
    unacked = data.get("not_acknowledged", "").strip()
    if unacked and not (unacked.isdigit() and len(unacked) < 12):
        abort(400)
    return Audience(areas=_codes(data.getlist("area")),
                    team_kinds=_codes(data.getlist("team_kind"), 64), roles=roles,
                    teams=_codes(data.get("teams", "").replace(";", ",").split(","), 64),
                    not_acknowledged=int(unacked) if unacked else None)


def _send_at(value: str) -> datetime | None:
    """A local "YYYY-MM-DDTHH:MM" from the date-time field, or None for now."""
    if not value.strip():
        return None
    try:
        local = datetime.strptime(value.strip()[:16], "%Y-%m-%dT%H:%M")
    except ValueError:
        abort(400)
    return local.replace(tzinfo=config().tz)


@bp.get("/broadcasts")
@login_required
def broadcast_list() -> Any:
    _province()
    with reading() as session:
        rows = broadcasts.list_broadcasts(session, limit=50)
    return render_template("admin/broadcasts.html", rows=rows, **_common())


@bp.route("/broadcasts/new", methods=["GET", "POST"])
@login_required
def broadcast_new() -> Any:
    _province()
    form = PostForm()
    error = None
    with writing() as session:
        choices = plan_admin.audience_choices(session)
        items = library.list_items(session, limit=200)
        if request.method == "POST":
            if not form.validate_on_submit():
                abort(400)
            item = _int_arg_form("item")
            audience = _audience(request.form)
            send_at = _send_at(request.form.get("send_at", ""))
            try:
                broadcast_id = broadcasts.create_broadcast(
                    session, item, audience, send_at=send_at, actor=f"admin:{me().username}")
            except BroadcastError as exc:
                error = str(exc)
            else:
                audit(session, "broadcast.create", object_type="broadcast",
                      object_id=str(broadcast_id),
                      detail={"item": item, "audience": audience.as_dict()})
                return redirect(url_for("admin.broadcast_view", broadcast_id=broadcast_id))
    return render_template("admin/broadcast_new.html", form=form, choices=choices, items=items,
                           roles=ROLES, error=error, chosen=request.form,
                           preset=_int_arg("item"), **_common()), 400 if error else 200


def _int_arg_form(name: str) -> int:
    value = request.form.get(name, "")
    if not (value.isdigit() and len(value) < 12):
        abort(400)
    return int(value)


@bp.post("/broadcasts/count")
@login_required
def broadcast_count() -> Any:
    """The composer's live count: members per channel for the audience as it stands."""
    _province()
    if not PostForm().validate_on_submit():
        abort(400)
    audience = _audience(request.form)
    try:
        with reading() as session:
            count = broadcasts.count_audience(session, audience)
    except BroadcastError as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"total": count.total, "by_channel": count.by_channel,
                    "no_channel": count.no_channel})


def _status_json(status: broadcasts.BroadcastStatus) -> dict[str, Any]:
    done = (status.sent + status.failed + status.unreachable + status.outside_window
            + status.held_quota + status.cancelled)
    return {**status.counts(), "id": status.id, "state": status.state,
            "state_label": gettext(status.state), "done": done,
            "percent": min(100, done * 100 // status.audience_total)
            if status.audience_total else 100,
            "cancelled": status.cancelled, "failures": status.failures}


def _status_or_404(broadcast_id: int) -> Any:
    """A broadcast's live status for a province admin; 404 for anyone else or no broadcast."""
    _province()
    try:
        with reading() as session:
            return broadcasts.broadcast_status(session, broadcast_id)
    except BroadcastError:
        abort(404)


@bp.get("/broadcasts/<int:broadcast_id>")
@login_required
def broadcast_view(broadcast_id: int) -> Any:
    status = _status_or_404(broadcast_id)
    return render_template("admin/broadcast.html", s=status, live=_status_json(status),
                           form=PostForm(), **_common())


@bp.get("/broadcasts/<int:broadcast_id>/status")
@login_required
def broadcast_status(broadcast_id: int) -> Any:
    """What the progress bar polls."""
    status = _status_or_404(broadcast_id)
    return jsonify(_status_json(status))


@bp.post("/broadcasts/<int:broadcast_id>/<any(pause, resume, cancel):action>")
@login_required
def broadcast_control(broadcast_id: int, action: str) -> Any:
    _province()
    if not PostForm().validate_on_submit():
        abort(400)
    now = utcnow()
    try:
        with writing() as session:
            if action == "pause":
                broadcasts.pause(session, broadcast_id)
            elif action == "resume":
                broadcasts.resume(session, broadcast_id, now=now)
            else:
                broadcasts.cancel(session, broadcast_id, now=now)
            audit(session, f"broadcast.{action}", object_type="broadcast",
                  object_id=str(broadcast_id))
    except BroadcastError:
        abort(409 if _exists(broadcast_id) else 404)
    return redirect(url_for("admin.broadcast_view", broadcast_id=broadcast_id))


def _exists(broadcast_id: int) -> bool:
    try:
        with reading() as session:
            broadcasts.broadcast_status(session, broadcast_id)
    except BroadcastError:
        return False
    return True
