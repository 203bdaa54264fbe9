"""Administrator accounts: `duan8 admin create` makes one or resets its password.

Members and their platform identities are in storage.members and storage.conversation.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from storage.models import AdminUser, Area, AuditLog


class UnknownArea(LookupError):
    """An area code that no loaded plan has."""


def create_admin(
    session: Session, username: str, password: str, *, role: str, area_code: str | None
) -> bool:
    """Create an admin or reset their password; returns True when a new admin was made."""
    area_id = None
    if area_code:
        area_id = session.scalar(select(Area.id).where(Area.code == area_code))
        if area_id is None:
            raise UnknownArea(area_code)
    user = session.scalar(select(AdminUser).where(AdminUser.username == username))
    created = user is None
    if user is None:
        user = AdminUser(username=username, password_hash="")
        session.add(user)
    user.password_hash = generate_password_hash(password)
    user.role, user.area_id, user.active = role, area_id, True
    session.add(AuditLog(actor="cli", action="admin.create" if created else "admin.reset",
                         object_type="admin", object_id=username, detail={"role": role}))
    return created
