"""The conversation table: gates, fallbacks, states and entry points, and the one function that
routes a message through them.

Read it like python-telegram-bot's ConversationHandler: the *states* are the flows and their
steps (FLOWS); *fallbacks* are commands reachable from any step (FALLBACKS); *entry points*
start a conversation when none is going on (ENTRY_POINTS). Before them, GATES hold: a person
goes through consent and joining, ordinary flows, before anything else. Each is one row to add.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from handlers import (
    content,
    deadline_chat,
    linking,
    menu,
    onboarding,
    parsing,
    photos,
    quick_report,
    report,
    safeguarding,
)
from handlers.flow import (
    COMMAND_PREFIX,
    MAX_ANSWER_CHARS,
    MORE_COMMAND,
    STALE,
    Ctx,
    Flow,
    Step,
    typed,
)
from handlers.parsing import fold
from handlers.types import Inbound
from messages_vi import _, render
from storage import members
from storage.enums import Consent

log = logging.getLogger(__name__)

# --- states --------------------------------------------------------------------------------

FLOWS: dict[str, Flow] = {f.name: f for f in (onboarding.CONSENT, onboarding.JOIN, report.REPORT)}


# --- fallbacks -----------------------------------------------------------------------------


def _cancel(ctx: Ctx) -> None:
    # A draft is never thrown away on one word: "huy" may be a slip, and the answers took time.
    if ctx.state.flow == report.REPORT.name and ctx.draft:
        report.ask_cancel(ctx)
        return
    had_flow = bool(ctx.state.flow)
    ctx.finish()
    ctx.say(_("Cancelled.") if had_flow else _("Nothing to cancel."), buttons=menu.MENU_BUTTONS)


def _cancel_confirmed(ctx: Ctx) -> None:
    had_draft = ctx.state.flow == report.REPORT.name
    ctx.finish()
    ctx.say(_("Report cancelled.") if had_draft else _("Nothing to cancel."),
            buttons=menu.MENU_BUTTONS)


def _keep(ctx: Ctx) -> None:
    """"Giữ lại" under a question that would have thrown something away: carry on."""
    if ctx.state.flow in FLOWS and ctx.draft:
        ctx.say(_("Kept. Let us continue."))
    _where_am_i(ctx)


def _then_where(command: Callable[[Ctx], None], ctx: Ctx) -> None:
    command(ctx)
    _where_am_i(ctx)


def _menu(ctx: Ctx) -> None:
    # The report draft stays where it is; "Report an activity" offers to continue it.
    menu.show_menu(ctx)


# Commands reachable from any step of a joined member's conversation: a button's "cmd:<name>"
# payload or one of COMMAND_WORDS.
FALLBACKS: dict[str, Callable[[Ctx], None]] = {
    "menu": _menu,
    "help": menu.show_help,
    "cancel": _cancel,
    "cancel_confirmed": _cancel_confirmed,
    "keep": _keep,
    # The offer of photos sent before the report: answered, then the question is asked again.
    photos.ATTACH: lambda ctx: _then_where(photos.attach, ctx),
    photos.LEAVE: lambda ctx: _then_where(photos.leave, ctx),
    "report": report.start_or_offer_resume,
    report.RESUME: report.resume,
    report.RESTART: report.start,
    "my_reports": menu.show_my_reports,
    "team": deadline_chat.show_team,
    "link": menu.show_link_code,
    "erase": menu.ask_erase,
    "erase_confirmed": menu.erase,
    "privacy": menu.show_privacy,
    "cases": safeguarding.show_cases,
    "photos_faces": lambda ctx: report.answer_photo_faces(ctx, True),
    "photos_no_faces": lambda ctx: report.answer_photo_faces(ctx, False),
}
COMMANDS = FALLBACKS  # the earlier name
# What people type for each command, folded (no diacritics, lowercase).
COMMAND_WORDS: dict[str, str] = {
    "menu": "menu", "/menu": "menu", "trang chu": "menu", "/start": "menu",
    "tro giup": "help", "help": "help", "/help": "help", "huong dan": "help", "?": "help",
    "huy": "cancel", "cancel": "cancel", "/cancel": "cancel", "thoi": "cancel",
    "bao cao": "report", "/report": "report", "bao cao hoat dong": "report",
    "bao cao cua toi": "my_reports", "/my": "my_reports",
    "bao cao cua to": "team", "to cua toi": "team", "/team": "team",
    "lien ket": "link", "/link": "link",
    "bat dau": "menu", "start": "menu",
    "xoa du lieu": "erase", "xoa du lieu cua toi": "erase", "/erase": "erase",
    "delete my data": "erase",
    "quyen rieng tu": "privacy", "/privacy": "privacy", "privacy": "privacy",
    "truong hop": "cases", "/cases": "cases",
}


def _command(inbound: Inbound, text: str) -> str | None:
    if inbound.payload and inbound.payload.startswith(COMMAND_PREFIX):
        return inbound.payload.removeprefix(COMMAND_PREFIX)
    raw = inbound.text.strip().lower()
    # Abbreviations are written out first: "bc cua toi" is "bao cao cua toi".
    return (COMMAND_WORDS.get(text) or COMMAND_WORDS.get(raw)
            or COMMAND_WORDS.get(parsing.expand(text)) or parsing.command_for(text)
            or _menu_words("vi").get(text) or _menu_words("en").get(text))


@functools.cache
def _menu_words(locale: str) -> dict[str, str]:
    """The menu's own button labels, typed instead of pressed, and the command each runs."""
    buttons = (*menu.MENU_BUTTONS, menu.LEADER_BUTTON)
    return {fold(render(b.label, locale)): b.payload.removeprefix(COMMAND_PREFIX)
            for b in buttons if b.payload.startswith(COMMAND_PREFIX)}


# --- entry points --------------------------------------------------------------------------


def _photos_without_report(ctx: Ctx, inbound: Inbound, text: str) -> bool:
    if not inbound.photos:
        return False
    waiting = photos.keep_loose(ctx, inbound)
    # A quick report in the photos' caption starts at once and is offered them.
    if text and _quick_report(ctx, inbound, text):
        return True
    if waiting:
        photos.announce_loose(ctx)
    return True


def _quick_report(ctx: Ctx, inbound: Inbound, text: str) -> bool:
    quick = quick_report.read_quick(ctx, inbound.text)
    named = quick.activity_keyword is not None or bool(quick.activity_codes)
    # With no activity word, a message is still a report when it carries report-like parts;
    # what was understood is kept and the activity type is asked.
    parts = quick.understood()
    if not (parts >= 1 if named else parts >= 2 or (quick.report_words and parts >= 1)):
        return False
    quick_report.start_quick(ctx, quick)
    return True


def _not_understood(ctx: Ctx) -> None:
    """Nothing understood: say what a quick report looks like, with one example."""
    village = next(iter(members.villages(ctx.session)), None)
    ctx.say(_("Sorry, I did not understand."),
            _("To report an activity, press Report an activity, or write it in one message, "
              "for example:"),
            _("communication yesterday in village {village}, 30 people, 20 women",
              village=village.name if village else "Tà Lú 1"),
            buttons=menu.MENU_BUTTONS)


# When a joined member is in no conversation, the first of these that takes the message starts
# one; a message none takes is not understood.
ENTRY_POINTS: tuple[Callable[[Ctx, Inbound, str], bool], ...] = (
    _photos_without_report,
    _quick_report,
)


# --- gates ---------------------------------------------------------------------------------


def _edited(ctx: Ctx, inbound: Inbound, text: str) -> None:
    ctx.say(_("I cannot use an edited message. Please send the corrected answer as a new "
              "message."))
    _where_am_i(ctx)


def _disclosure(ctx: Ctx, inbound: Inbound, text: str) -> None:
    safeguarding.answer_disclosure(ctx, inbound)
    # The member carries on where they were; someone not yet in a conversation is not pushed
    # into one after telling of violence.
    if ctx.identity.consent == Consent.GIVEN and ctx.state.flow in FLOWS:
        _where_am_i(ctx)


def _consent(ctx: Ctx, inbound: Inbound, text: str) -> None:
    if inbound.start_param:
        ctx.draft["start_code"] = inbound.start_param[:32]
    if ctx.state.flow != onboarding.CONSENT.name:
        ctx.goto(onboarding.ASK)
        return
    # Every answer goes to the question itself: it alone says what is expected.
    onboarding.ASK.answer(ctx, inbound, text)


def _joining(ctx: Ctx, inbound: Inbound, text: str) -> None:
    if ctx.state.flow != onboarding.JOIN.name:
        ctx.goto(onboarding.METHOD)
        if inbound.start_param:
            onboarding.try_code(ctx, inbound.start_param)
        return
    command = _command(inbound, text)
    if command == "help":
        menu.show_help(ctx)
        _where_am_i(ctx)
        return
    if command is not None and command.startswith(MORE_COMMAND + ":"):
        _more(ctx, command)
        return
    _in_flow(ctx, inbound, text)


def _member(ctx: Ctx, inbound: Inbound, text: str) -> None:
    flow = FLOWS.get(ctx.state.flow)
    if inbound.photos and flow is not None and flow.on_photos is not None:
        flow.on_photos(ctx, inbound)
        if not (inbound.text or inbound.payload):
            return
    # "Không phải tôi" under a link announcement undoes that link, whatever the member is doing.
    if linking.handle(ctx, inbound):
        return
    # Campaign material: "Tài liệu", and the Đã nhận / Đã dùng ở thôn buttons under an item.
    if content.route(ctx, inbound, text):
        _back_to_question(ctx)
        return
    command = _command(inbound, text)
    # The team view's pages and a reminder's buttons carry an argument after the command.
    if deadline_chat.route(ctx, command, FALLBACKS):
        if command == "team" or (command or "").startswith("team:"):
            _back_to_question(ctx)
        return
    if command is not None and command.startswith(MORE_COMMAND + ":"):
        _more(ctx, command)
        return
    if command is not None:
        FALLBACKS.get(command, _stale)(ctx)
        if command in ASIDES:
            _back_to_question(ctx)
        return
    if flow is not None:
        if flow.on_return is not None and _came_back(ctx):
            flow.on_return(ctx)
            return
        _in_flow(ctx, inbound, text)
        return
    if not any(entry(ctx, inbound, text) for entry in ENTRY_POINTS):
        _not_understood(ctx)


@dataclass(frozen=True)
class Gate:
    """A row of GATES: while `holds` is true of a message, `route` takes it."""

    holds: Callable[[Ctx, Inbound], bool]
    route: Callable[[Ctx, Inbound, str], None]


# The first row that holds takes the message; the last always does.
GATES: tuple[Gate, ...] = (
    Gate(lambda ctx, inbound: inbound.edited, _edited),
    # A disclosure is answered before anything else, whatever step the member is at.
    Gate(safeguarding.is_disclosure, _disclosure),
    Gate(lambda ctx, inbound: ctx.identity.consent != Consent.GIVEN, _consent),
    Gate(lambda ctx, inbound: ctx.identity.member is None, _joining),
    Gate(lambda ctx, inbound: True, _member),
)


def handle(ctx: Ctx, inbound: Inbound) -> None:
    """Route one message through the gates: consent first, then joining, then the member's
    commands, flows and entry points."""
    text = typed(inbound)
    gate = next(gate for gate in GATES if gate.holds(ctx, inbound))
    gate.route(ctx, inbound, text)


# --- within a flow -------------------------------------------------------------------------


def _came_back(ctx: Ctx) -> bool:
    updated = ctx.state.updated_at
    away = timedelta(seconds=ctx.settings.resume_after_seconds)
    return updated is not None and ctx.now - updated > away


def _in_flow(ctx: Ctx, inbound: Inbound, text: str) -> None:
    flow = FLOWS[ctx.state.flow]
    step = flow.steps.get(ctx.state.step)
    if step is None:
        log.warning("unknown step %s.%s; starting over", ctx.state.flow, ctx.state.step)
        ctx.finish()
        menu.show_menu(ctx)
        return
    if inbound.payload and not step.owns(inbound.payload):
        ctx.say(STALE)
        step.prompt(ctx)
        return
    if not (text or inbound.payload or inbound.photos):
        ctx.say(_("I received an empty message or only symbols."))
        step.prompt(ctx)
        return
    if len(inbound.text) > MAX_ANSWER_CHARS and not step.long_text:
        ctx.say(_("That message is too long for this question."))
        step.prompt(ctx)
        return
    if inbound.photos and not step.takes_photos and flow.on_photos is None:
        ctx.say(_("I cannot use a photo here."))
        step.prompt(ctx)
        return
    ctx.draft.pop(PAGED_ANSWER, None)
    step.answer(ctx, _typed_button(ctx, step, inbound, text), text)
    if ctx.paged and (ctx.state.flow, ctx.state.step) == (flow.name, step.name):
        # A list an answer produced ("Several places match") is paged by answering again.
        ctx.draft[PAGED_ANSWER] = {"step": step.name, "text": inbound.text[:MAX_ANSWER_CHARS]}


def _typed_button(ctx: Ctx, step: Step, inbound: Inbound, text: str) -> Inbound:
    """Typing a button's own words ("Không có ghi chú") does what pressing it does."""
    if inbound.payload or not text or len(text) > 80:
        return inbound
    # The question is asked again on a scratch context to see its buttons: nothing is sent,
    # and a prompt that moves on or notes something in the draft changes only a copy.
    scratch = dataclasses.replace(ctx, replies=[], notices=[], state=copy.deepcopy(ctx.state))
    step.prompt(scratch)
    for reply in scratch.replies:
        for button in reply.buttons:
            label = fold(render(button.label, ctx.identity.locale))
            if label == text and step.owns(button.payload):
                return dataclasses.replace(inbound, payload=button.payload)
    return inbound


# Commands that show something beside the conversation and leave it where it was: after them
# the pending question is asked again, so the next typed answer goes to the question the
# member sees last, and the bot says which one that is.
ASIDES = frozenset({"menu", "help", "my_reports", "team", "link", "privacy", "cases",
                    "photos_faces", "photos_no_faces"})


def _back_to_question(ctx: Ctx) -> None:
    flow = FLOWS.get(ctx.state.flow)
    if flow is None or ctx.state.step not in flow.steps or not ctx.draft:
        return
    if flow is report.REPORT:
        ctx.say(_("Your report is not finished. The question waiting for your answer:"))
    flow.steps[ctx.state.step].prompt(ctx)


PAGED_ANSWER = "paged_answer"  # in a draft: the answer whose reply showed a page of buttons


def _more(ctx: Ctx, command: str) -> None:
    """"Xem thêm": the same list again, its next page. A list a question shows is shown by asking
    again; one an answer produced (several villages match) by giving that answer again, which
    only listed choices and changed nothing."""
    page = command.partition(":")[2]
    ctx.button_page = int(page) if page.isdigit() and len(page) < 4 else 1
    flow = FLOWS.get(ctx.state.flow)
    paged = ctx.draft.get(PAGED_ANSWER)
    if flow is not None and isinstance(paged, dict) and paged.get("step") == ctx.state.step \
            and ctx.state.step in flow.steps:
        again = Inbound(channel=ctx.identity.channel, external_id="", event_id="",
                        text=str(paged.get("text", "")))
        flow.steps[ctx.state.step].answer(ctx, again, typed(again))
        return
    _where_am_i(ctx)


def _stale(ctx: Ctx) -> None:
    ctx.say(STALE)
    _where_am_i(ctx)


def _where_am_i(ctx: Ctx) -> None:
    flow = FLOWS.get(ctx.state.flow)
    if flow and ctx.state.step in flow.steps:
        flow.steps[ctx.state.step].prompt(ctx)
    else:
        menu.show_menu(ctx)
