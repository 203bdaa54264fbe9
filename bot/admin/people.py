"""One member on the web: their linked chats and whether each can be reached, and deactivation.

Province admins and the officers of the member's area may deactivate a member: the member
keeps their reports but gets no broadcast and no reminder any more. Viewers read only.
"""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, url_for
from flask_login import login_required

from bot.admin.common import audit, bp, me, writing
from bot.admin.forms import CaseStatusForm
from bot.admin.pages import _common, _needs_reports
from storage import admin_people
from storage.models import utcnow


@bp.get("/members/<int:member_id>")
@login_required
def member(member_id: int) -> Any:
    _needs_reports()
    with writing() as session:
        card = admin_people.member_card(session, me().scope, member_id, now=utcnow())
        if card is None:
            abort(404)
        audit(session, "member.view", object_type="member", object_id=str(member_id))
    return render_template("admin/member.html", card=card, form=CaseStatusForm(),
                           days=admin_people.TROUBLE_PERIOD.days, **_common())


@bp.post("/members/<int:member_id>/<any(deactivate, activate):action>")
@login_required
def member_active(member_id: int, action: str) -> Any:
    _needs_reports()
    if not me().can_verify:
        abort(403)
    if not CaseStatusForm().validate_on_submit():
        abort(400)
    with writing() as session:
        changed = admin_people.set_member_active(
            session, me().scope, member_id, active=action == "activate",
            actor=f"admin:{me().username}", now=utcnow())
        if changed is None:
            abort(404)
    return redirect(url_for("admin.member", member_id=member_id))
