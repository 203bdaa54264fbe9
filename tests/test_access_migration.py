"""Migration 0007: a leader whose role was chosen, not granted, becomes a member."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, inspect, select

from storage import migrate
from storage.db import Database
from storage.models import (
    Area,
    AuditLog,
    InviteCode,
    Member,
    Team,
    TeamKind,
    utcnow,
)


@pytest.fixture
def empty_db(empty_db_url: str) -> Iterator[Database]:
    database = Database(empty_db_url)
    yield database
    database.dispose()


def test_self_chosen_leaders_are_members_after_the_upgrade(empty_db: Database) -> None:
    migrate.upgrade(empty_db.engine, "0005")
    assert "rate_events" not in inspect(empty_db.engine).get_table_names()
    now = utcnow()
    with empty_db.transaction() as session:
        area = Area(code="v", name="V", name_folded="v", level="village")
        kind = TeamKind(code="communication", name="Tổ")
        session.add_all([area, kind])
        session.flush()
        team = Team(code="communication.v", name="Tổ V", name_folded="to v", kind_id=kind.id,
                    area_id=area.id)
        session.add(team)
        session.flush()
        session.add_all([
            InviteCode(code="LEADER22", team_id=team.id, role="leader", max_uses=1,
                       expires_at=now + timedelta(days=1)),
            InviteCode(code="MEMBER22", team_id=team.id, role="member", max_uses=9,
                       expires_at=now + timedelta(days=1)),
        ])
        # Core inserts name only the columns members had at 0005 (the model has later ones).
        for name in ("chose", "invited", "granted", "member-invite", "plain"):
            session.execute(insert(Member.__table__).values(
                display_name=name, role="member" if name == "plain" else "leader",
                team_id=team.id))
        ids = dict(session.execute(select(Member.display_name, Member.id)).all())
        for name, invite in (("chose", None), ("invited", "LEADER22"), ("granted", None),
                             ("member-invite", "MEMBER22"), ("plain", None)):
            session.add(AuditLog(actor="identity:1", at=now, action="member.join",
                                 object_type="team", object_id=team.code,
                                 detail={"member": ids[name], "role": "leader",
                                         "invite": invite}))
        session.add(AuditLog(actor="officer:x", at=now, action="member.grant_leader",
                             object_type="member", object_id=str(ids["granted"])))
    migrate.upgrade(empty_db.engine)
    assert "rate_events" in inspect(empty_db.engine).get_table_names()
    with empty_db.sessions() as session:
        roles = {name: role for name, role in session.execute(
            select(Member.display_name, Member.role))}
    assert roles == {"chose": "member", "invited": "leader", "granted": "leader",
                     "member-invite": "member", "plain": "member"}
