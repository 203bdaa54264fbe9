"""What the admin pages share: the blueprint, the signed-in account, the database, the audit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, abort, current_app
from flask_login import UserMixin, current_user
from sqlalchemy.orm import Session

from bot.config import Config
from storage import admin_views
from storage.admin_views import AdminAccount
from storage.db import Database
from storage.models import utcnow

bp = Blueprint("admin", __name__, url_prefix="/admin")


class Principal(UserMixin):
    """The signed-in admin as Flask-Login sees it.

    Its id carries a fingerprint of the password hash, so a password reset ends every session
    opened with the old password; a deactivated account loads as nobody at the next request.
    """

    def __init__(self, account: AdminAccount) -> None:
        self.account = account

    def get_id(self) -> str:
        return f"{self.account.id}.{fingerprint(self.account.password_hash)}"


def fingerprint(password_hash: str) -> str:
    import hashlib

    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def config() -> Config:
    return current_app.extensions["duan8.config"]


def database() -> Database:
    return current_app.extensions["duan8.db"]


def me() -> AdminAccount:
    user: Any = current_user
    if not getattr(user, "is_authenticated", False):
        abort(401)
    return user.account


@contextmanager
def reading() -> Iterator[Session]:
    with database().sessions() as session:
        yield session


@contextmanager
def writing() -> Iterator[Session]:
    with database().transaction() as session:
        yield session


def audit(session: Session, action: str, *, object_type: str = "", object_id: str = "",
          detail: dict[str, object] | None = None) -> None:
    """Who read or changed what, when: every view of a report, photo or member list."""
    admin_views.audit(session, f"admin:{me().username}", action, object_type=object_type,
                      object_id=object_id, detail=detail, at=utcnow())
