"""Campaign material in chat: "Tài liệu" to browse the library by topic and get an item again,
and the buttons under each item: "Đã nhận" and "Đã dùng ở thôn" (which asks how many people
it reached)."""

from __future__ import annotations

from handlers.flow import Ctx
from handlers.menu import MENU_BUTTONS
from handlers.types import Button, Inbound, Reply
from messages_vi import Text, _
from storage import content as library
from storage.content import ContentView

FLOW = "content"
PREFIX = "content:"
WORDS = frozenset({"tai lieu", "/library", "library", "thu vien", "tai lieu truyen thong"})
# Buttons on Zalo OA are at most five: four topics or items, and one more for the rest.
PAGE = 4
MAX_PEOPLE = 100_000


def item_reply(item: ContentView, locale: str, broadcast_id: int | None) -> Reply:
    """An item as a member reads it, with its acknowledgement buttons."""
    tag = f"{broadcast_id or 0}:{item.id}"
    buttons = [Button(_("Received"), f"{PREFIX}ack:{tag}")]
    if item.use_in_village:
        buttons.append(Button(_("Used in my village"), f"{PREFIX}used:{tag}"))
    body: list[Text | str] = [item.title_for(locale), item.text_for(locale)]
    body += list(item.links)
    return Reply(text=tuple(body), buttons=tuple(buttons), media=item.media)


def route(ctx: Ctx, inbound: Inbound, text: str) -> bool:
    """Handle what belongs to the library; False leaves the message to the router."""
    member = ctx.identity.member
    if member is None:
        return False
    payload = inbound.payload or ""
    if payload.startswith(PREFIX):
        _press(ctx, payload[len(PREFIX):])
        return True
    if payload == "cmd:library" or text in WORDS:
        _shelves(ctx)
        return True
    if ctx.state.flow == FLOW:
        if ctx.state.step == "people":
            return _people(ctx, text)
        ctx.finish()
    return False


def _press(ctx: Ctx, rest: str) -> None:
    action, _sep, args = rest.partition(":")
    if action == "shelves":
        _shelves(ctx, int(args) if args.isdigit() and len(args) < 4 else 0)
        return
    if action == "topic":
        _topic(ctx, args.partition(":")[0], int(args.partition(":")[2] or 0))
        return
    if action == "get":
        _get(ctx, args)
        return
    try:
        broadcast_id, item_id = (int(x) for x in args.split(":"))
    except ValueError:
        _shelves(ctx)
        return
    member = ctx.identity.member
    assert member is not None
    if action == "ack":
        fresh = library.acknowledge(ctx.session, item_id=item_id, member_id=member.id,
                                    kind="received", broadcast_id=broadcast_id or None)
        ctx.say(_("Thank you, noted that you received it.") if fresh
                else _("You already told us you received it."))
        return
    if action == "used":
        if ctx.state.flow not in ("", FLOW):  # a report in progress keeps its draft
            ctx.say(_("Please finish or cancel what you are doing first, then press "
                      "the button again."))
            return
        library.acknowledge(ctx.session, item_id=item_id, member_id=member.id,
                            kind="received", broadcast_id=broadcast_id or None)
        ctx.state.flow, ctx.state.step = FLOW, "people"
        ctx.state.draft = {"item": item_id, "broadcast": broadcast_id}
        ctx.say(_("How many people did it reach? Type a number."))
        return
    _shelves(ctx)


def _people(ctx: Ctx, text: str) -> bool:
    digits = text.replace(".", "").replace(",", "").replace(" nguoi", "").strip()
    if not digits.isdigit():
        ctx.finish()
        return False  # something else: the router takes it, the question is dropped
    people = int(digits)
    if people < 1 or people > MAX_PEOPLE:
        ctx.say(_("Please type a number of people from 1 to {limit}.", limit=MAX_PEOPLE))
        return True
    member = ctx.identity.member
    assert member is not None
    item_id, broadcast_id = int(ctx.draft["item"]), int(ctx.draft.get("broadcast") or 0)
    ctx.finish()
    fresh = library.acknowledge(ctx.session, item_id=item_id, member_id=member.id, kind="used",
                                broadcast_id=broadcast_id or None, people=people,
                                today=ctx.today, channel=ctx.identity.channel)
    if fresh:
        ctx.say(_("Thank you! Noted: used in the village, {people} people reached.",
                  people=people), buttons=MENU_BUTTONS)
    else:
        ctx.say(_("You already told us you used this material."), buttons=MENU_BUTTONS)
    return True


def _shelves(ctx: Ctx, start: int = 0) -> None:
    shelves = library.library_topics(ctx.session)
    if not shelves:
        ctx.say(_("The library has no material yet."), buttons=MENU_BUTTONS)
        return
    if len(shelves) == 1:
        _topic(ctx, shelves[0].code, 0)
        return
    buttons = [Button(s.name or _("Other"), f"{PREFIX}topic:{s.code}:0")
               for s in shelves[start:start + PAGE]]
    # Paged here, like the items of a topic: the router's own "Xem thêm" re-asks a question.
    if len(shelves) > start + PAGE:
        buttons.append(Button(_("More"), f"{PREFIX}shelves:{start + PAGE}"))
    elif start:
        buttons.append(Button(_("Back to the first choices"), f"{PREFIX}shelves:0"))
    ctx.say(_("Campaign material. Choose a topic:"), buttons=buttons)


def _topic(ctx: Ctx, code: str, start: int) -> None:
    items = library.list_items(ctx.session, topic_code=code, limit=PAGE + 1, offset=start)
    if not items:
        _shelves(ctx)
        return
    buttons = [Button(i.title_for(ctx.identity.locale)[:20], f"{PREFIX}get:{i.id}")
               for i in items[:PAGE]]
    if len(items) > PAGE:
        buttons.append(Button(_("More"), f"{PREFIX}topic:{code}:{start + PAGE}"))
    lines = [f"{n}. {i.title_for(ctx.identity.locale)}" for n, i in
             enumerate(items[:PAGE], start + 1)]
    ctx.say(_("Choose the material you want:"), "\n".join(lines), buttons=buttons)


def _get(ctx: Ctx, item: str) -> None:
    view = library.get_item(ctx.session, int(item)) if item.isdigit() else None
    if view is None:
        _shelves(ctx)
        return
    ctx.replies.append(item_reply(view, ctx.identity.locale, None))
