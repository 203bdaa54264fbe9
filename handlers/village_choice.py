"""Choosing the village a member means when a typed name fits more than one."""

from __future__ import annotations

from handlers import parsing
from handlers.flow import Ctx
from storage import members


def best_hits(ctx: Ctx, text: str, home: int | None, closest: int) -> list[int]:
    """The equally best places matching a typed name (rank at most `closest`)."""
    hits = members.search_places(ctx.session, parsing.arabic_numerals(text), near=home)
    if not hits or hits[0].rank > closest:
        return []
    return [h.id for h in hits if h.rank == hits[0].rank]


def own_commune(ctx: Ctx, ids: list[int], home: int | None) -> int | None:
    """One place, or the one of several in the member's own commune; None when unsure."""
    if len(ids) == 1:
        return ids[0]
    commune = members.commune_of(ctx.session, home)
    if commune is None:
        return None
    own = [i for i in ids if i == home or members.commune_of(ctx.session, i) == commune]
    return own[0] if len(own) == 1 else None
