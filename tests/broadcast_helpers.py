"""Members in bulk for broadcast tests and benchmarks: teams, members and one channel each."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select

from storage.db import Database
from storage.members import ensure_village_team
from storage.models import Identity, Member, utcnow
from storage.search import area_id_by_code

TA_LU_1 = "nt.bac-ai.phuoc-dai.ta-lu-1"
DA_MAI_TREN = "nt.thuan-bac.phuoc-khang.da-mai-tren"


def team_in(db: Database, village: str) -> int:
    with db.transaction() as session:
        area_id = area_id_by_code(session, village)
        assert area_id is not None
        return ensure_village_team(session, area_id).id


def add_members(db: Database, team_id: int | None, count: int, *, channel: str = "telegram",
                role: str = "member", start: int = 0, age: timedelta = timedelta(hours=1),
                chunk: int = 5000, now: datetime | None = None) -> list[int]:
    """`count` members of a team, each with one consented identity; their member ids."""
    now = now or utcnow()
    ids: list[int] = []
    for first in range(start, start + count, chunk):
        last = min(first + chunk, start + count)
        with db.transaction() as session:
            top = session.scalar(select(Member.id).order_by(Member.id.desc()).limit(1)) or 0
            session.execute(insert(Member), [
                {"display_name": f"Thành viên {i}", "role": role, "team_id": team_id,
                 "locale": "vi", "consent_at": now, "created_at": now}
                for i in range(first, last)])
            new = list(session.scalars(select(Member.id).where(Member.id > top)
                                       .order_by(Member.id)))
            session.execute(insert(Identity), [
                {"channel": channel, "external_id": str(1_000_000 + i), "member_id": m,
                 "consent": "given", "locale": "vi", "last_inbound_at": now - age,
                 "created_at": now}
                for i, m in zip(range(first, last), new, strict=True)])
            ids += new
    return ids
