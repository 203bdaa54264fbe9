"""The plan page: indicators, how each is measured, targets per area, deadlines and reminders.

Everyone who reads reports sees the plan for their own area and the areas under it; province
admins enter per-area targets here (the plan's per-district annex is not in its text). Each
change is audited and the dashboard's bars read it at once.
"""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask_login import login_required

from bot.admin.common import audit, bp, me, writing
from bot.admin.forms import PostForm
from bot.admin.pages import _common, _int_arg, _needs_reports, _today
from messages_vi import _
from storage import admin_dashboard, plan_admin
from storage.admin_views import AdminRole
from storage.models import utcnow
from storage.plans import current_plan
from storage.progress import AreaNode

# Measure kinds and periods as the page names them.
LABELS = (_("active_teams"), _("report_count"), _("participant_sum"), _("phase_to_date"),
          _("selected"),
          _("year"), _("quarter"), _("month"), _("yearly"), _("quarterly"), _("monthly"))


def _shown(tree: list[AreaNode], area_id: int | None) -> list[AreaNode]:
    """The chosen area (the reader's own by default) and its children; 404 outside the tree."""
    root = tree[0] if area_id is None else next((a for a in tree if a.id == area_id), None)
    if root is None:
        abort(404)
    return [root, *(a for a in tree if a.parent_id == root.id)]


@bp.get("/plan")
@login_required
def plan() -> Any:
    _needs_reports()
    with writing() as session:
        loaded = current_plan(session)
        if loaded is None:
            return render_template("admin/plan.html", plan=None, **_common())
        tree = admin_dashboard.scope_tree(session, me().scope)
        shown = _shown(tree, _int_arg("area"))
        indicators = plan_admin.indicator_targets(session, [a.id for a in shown])
        schedules = plan_admin.schedules(session, _today())
        audit(session, "plan.view")
        name, start, end = loaded.name, loaded.phase_start, loaded.phase_end
    return render_template("admin/plan.html", plan=(name, start, end), areas=shown,
                           indicators=indicators, schedules=schedules, form=PostForm(),
                           saved=request.args.get("saved"), **_common())


def _target(value: str) -> int | None:
    value = value.strip().replace(".", "").replace(",", "")
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        abort(400)
    return int(value)


@bp.post("/plan/targets")
@login_required
def plan_targets() -> Any:
    _needs_reports()
    if me().role != AdminRole.PROVINCE:
        abort(403)
    if not PostForm().validate_on_submit():
        abort(400)
    changes: dict[tuple[int, int], int | None] = {}
    for key, value in request.form.items():
        kind, _dash, rest = key.partition("-")
        indicator, _dash, area = rest.partition("-")
        if kind != "t":
            continue
        if not (indicator.isdigit() and area.isdigit()) or len(changes) > 5000:
            abort(400)
        changes[(int(indicator), int(area))] = _target(value)
    with writing() as session:
        tree = admin_dashboard.scope_tree(session, me().scope)
        try:
            changed = plan_admin.set_targets(session, changes, area_ids=[a.id for a in tree],
                                             actor=f"admin:{me().username}", now=utcnow())
        except ValueError:
            abort(400)
    area = request.args.get("area", "")
    if area.isdigit():
        return redirect(url_for("admin.plan", saved=changed, area=area))
    return redirect(url_for("admin.plan", saved=changed))
