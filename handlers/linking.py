"""Codes typed to join or link, under limits; a new link announced on the member's other chats.

Link codes are long enough not to be guessed in their 30 minutes (storage.members.LINK_LENGTH),
so a link takes effect at once; every other chat of the member is then told, with a button that
undoes it. Wrong codes, link or invite, are counted per identity (a web chat identity is its
browser session) and per network address, and against any live code they come close to
(storage.access): guessing slows to a few tries an hour, and a code being circled dies.
"""

from __future__ import annotations

import math

from handlers.flow import Ctx
from handlers.types import Button, Inbound, Reply
from messages_vi import Text, _
from storage import access, members

UNDO = "link.undo:"
CHANNEL_NAMES: dict[str, Text | str] = {
    "webchat": _("the web chat"), "telegram": "Telegram", "zalo": "Zalo",
    "zalo_bot": "Zalo Bot", "facebook": "Messenger", "console": _("the console"),
}


def throttled(ctx: Ctx) -> bool:
    """Say so and return True when this sender must wait before another code is checked."""
    wait = access.wait_before_code(ctx.session, ctx.identity.id, ctx.origin, ctx.now)
    if wait is None:
        return False
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    ctx.say(_("Too many wrong codes. To keep members' data safe, please wait {minutes} minutes "
              "and type the code again.", minutes=minutes))
    return True


def looks_like_code(code: str) -> bool:
    """Characters of the code alphabet, of an invite's or a link code's length: what a guess
    that could ever match looks like. A newcomer chatting at the invite question ("xin chao",
    "Hoa o thon Ta Lu") is not charged.
    """
    lengths = {members.INVITE_LENGTH, members.LINK_LENGTH}
    return len(code) in lengths and set(code) <= set(members.INVITE_ALPHABET)


def wrong(ctx: Ctx, code: str) -> None:
    """Count a wrong code against its sender and any live code it came close to."""
    if looks_like_code(code):
        access.wrong_code(ctx.session, code, ctx.identity.id, ctx.origin, ctx.now)


def is_link_code(code: str) -> bool:
    """Link codes are longer than invite codes, from the same alphabet."""
    return len(code) == members.LINK_LENGTH


def announce(ctx: Ctx, member_id: int) -> None:
    """Tell the member's other chats about the new link, with a button to undo it."""
    where = CHANNEL_NAMES.get(ctx.identity.channel, ctx.identity.channel)
    for other in access.other_identities(ctx.session, member_id, but=ctx.identity.id):
        text = _("Your account was just linked to a new chat on {channel}. If this was not you, "
                 "press Undo: that chat will no longer see or change your data.", channel=where)
        # Queued with this message's commit, rendered for that chat's reader.
        ctx.tell(other.id, other.channel, other.locale, Reply.of(text, buttons=(
            Button(_("Undo"), f"{UNDO}{ctx.identity.id}"),
            Button(_("It was me"), "cmd:menu"))))


def handle(ctx: Ctx, inbound: Inbound) -> bool:
    """An Undo press from a link announcement; False for anything else."""
    if not inbound.payload or not inbound.payload.startswith(UNDO):
        return False
    value = inbound.payload[len(UNDO):]
    linked = int(value) if value.isdigit() and len(value) < 19 else 0
    if not access.undo_link(ctx.session, ctx.identity.id, linked, ctx.now):
        ctx.say(_("That link can no longer be undone from here. Ask your commune officer for "
                  "help."), buttons=[Button(_("Menu"), "cmd:menu")])
        return True
    ctx.say(_("Undone: that chat is no longer linked to you. If someone else had your code, "
              "tell your commune officer."), buttons=[Button(_("Menu"), "cmd:menu")])
    return True
