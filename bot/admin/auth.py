"""Signing in and out: hashed passwords, throttled attempts, fresh and bounded sessions."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from flask import redirect, render_template, request, session, url_for
from flask_login import LoginManager, login_required, login_user, logout_user
from werkzeug.security import check_password_hash

from bot.admin.common import Principal, bp, fingerprint, reading, writing
from bot.admin.forms import LoginForm, LogoutForm
from storage import admin_views
from storage.models import utcnow

log = logging.getLogger(__name__)

MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW = timedelta(minutes=15)
SESSION_HOURS = 8  # an office day; then sign in again, whatever the activity
# Checked when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = ("scrypt:32768:8:1$abcdefghijklmnop$" + "0" * 128)

login_manager = LoginManager()
login_manager.login_view = "admin.login"
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(user_id: str) -> Principal | None:
    admin_id, _dot, print_ = user_id.partition(".")
    if not admin_id.isdigit():
        return None
    with reading() as db_session:
        account = admin_views.account(db_session, admin_id=int(admin_id))
    if account is None or not account.active or fingerprint(account.password_hash) != print_:
        return None
    started = session.get("admin_since")
    if not isinstance(started, (int, float)) or time.time() - started > SESSION_HOURS * 3600:
        return None
    return Principal(account)


def _address() -> str:
    return (request.remote_addr or "unknown")[:64]


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        username = (form.username.data or "").strip()
        now = utcnow()
        with writing() as db_session:
            by_account, by_address = admin_views.recent_login_failures(
                db_session, username=username, address=_address(), since=now - FAILURE_WINDOW)
            account = admin_views.account(db_session, username=username)
            if by_account >= MAX_FAILURES_PER_ACCOUNT or by_address >= MAX_FAILURES_PER_ADDRESS:
                error, status = "throttled", 429
            elif account is not None and account.active and check_password_hash(
                    account.password_hash, form.password.data or ""):
                admin_views.audit(db_session, f"admin:{username}", "admin.login",
                                  object_type="admin", object_id=username, at=now)
            else:
                if account is None:
                    check_password_hash(_DUMMY_HASH, form.password.data or "")
                admin_views.audit(db_session, f"ip:{_address()}", "admin.login_failed",
                                  object_type="admin", object_id=username, at=now)
                error, status = "wrong", 401
        if error is None and account is not None:
            # A fresh session: nothing from before the sign-in survives it (session fixation).
            session.clear()
            session["admin_since"] = time.time()
            session.permanent = False
            login_user(Principal(account))
            return redirect(url_for("admin.dashboard"))
    elif request.method == "POST":
        status = 400
    return render_template("admin/login.html", form=form, error=error), status


@bp.post("/logout")
@login_required
def logout() -> Any:
    form = LogoutForm()
    if form.validate_on_submit():
        logout_user()
        session.clear()
    return redirect(url_for("admin.login"))


@bp.after_request
def no_store(response: Any) -> Any:
    """Pages with personal data are never kept by a browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
    response.headers["Referrer-Policy"] = "same-origin"
    return response
