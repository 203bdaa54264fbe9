"""The conversation table: entry points, flows and fallbacks, and the one function that routes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from handlers import deadline_chat, menu, onboarding, parsing, report
from handlers.flow import STALE, Ctx, Flow, typed
from handlers.types import Button, Inbound
from messages_vi import _

log = logging.getLogger(__name__)

FLOWS: dict[str, Flow] = {f.name: f for f in (onboarding.CONSENT, onboarding.JOIN, report.REPORT)}


def _cancel(ctx: Ctx) -> None:
    had_draft = ctx.state.flow == report.REPORT.name
    ctx.finish()
    ctx.say(_("Cancelled.") if had_draft else _("Nothing to cancel."), buttons=menu.MENU_BUTTONS)


def _report(ctx: Ctx) -> None:
    if ctx.state.flow == report.REPORT.name and ctx.draft:
        _offer_resume(ctx)
        return
    report.start(ctx)


def _menu(ctx: Ctx) -> None:
    # The report draft stays where it is; "Report an activity" offers to continue it.
    menu.show_menu(ctx)


# Global entry points and fallbacks, reachable from any step of a joined member's conversation.
COMMANDS: dict[str, Callable[[Ctx], None]] = {
    "menu": _menu,
    "help": menu.show_help,
    "cancel": _cancel,
    "report": _report,
    "my_reports": menu.show_my_reports,
    "team": menu.show_team,
    "link": menu.show_link_code,
    "erase": menu.ask_erase,
    "erase_confirmed": menu.erase,
}
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
}
RESUME = "cmd:resume"
RESTART = "cmd:restart"


def _command(inbound: Inbound, text: str) -> str | None:
    if inbound.payload and inbound.payload.startswith("cmd:"):
        return inbound.payload[4:]
    raw = inbound.text.strip().lower()
    return COMMAND_WORDS.get(text) or COMMAND_WORDS.get(raw)


def _offer_resume(ctx: Ctx) -> None:
    ctx.say(_("You have an unfinished report:"), report.summary_text(ctx),
            _("Continue it or start again?"),
            buttons=[Button(_("Continue"), RESUME), Button(_("Start again"), RESTART)])


def handle(ctx: Ctx, inbound: Inbound) -> None:
    """Route one message: consent first, then joining, then commands, flows or a quick report."""
    text = typed(inbound)
    identity = ctx.identity

    if inbound.edited:
        ctx.say(_("I cannot use an edited message. Please send the corrected answer as a new "
                  "message."))
        _where_am_i(ctx)
        return

    if identity.consent != "given":
        if inbound.start_param:
            ctx.draft["start_code"] = inbound.start_param[:32]
        if ctx.state.flow != onboarding.CONSENT.name:
            ctx.state.flow, ctx.state.step = onboarding.CONSENT.name, "ask"
            onboarding.consent_prompt(ctx)
            return
        onboarding.consent_answer(ctx, inbound, text)
        return

    if identity.member is None:
        if ctx.state.flow != onboarding.JOIN.name:
            ctx.goto(onboarding.JOIN, "method")
            if inbound.start_param:
                onboarding.try_code(ctx, inbound.start_param)
            return
        if _command(inbound, text) == "help":
            menu.show_help(ctx)
            onboarding.JOIN.steps[ctx.state.step].prompt(ctx)
            return
        _in_flow(ctx, inbound, text)
        return

    if inbound.photos and ctx.state.flow == report.REPORT.name:
        report.receive_photos(ctx, inbound)
        if not (inbound.text or inbound.payload):
            return

    command = _command(inbound, text)
    if command in (RESUME[4:], RESTART[4:]):
        if ctx.state.flow == report.REPORT.name and command == "resume":
            ctx.say(_("Let us continue."))
            ctx.goto(report.REPORT, ctx.state.step if ctx.state.step in report.REPORT.steps
                     else "type")
        else:
            report.start(ctx)
        return
    if deadline_chat.route(ctx, command, COMMANDS):
        return
    if command in COMMANDS:
        COMMANDS[command](ctx)
        return
    if command is not None:
        ctx.say(STALE)
        _where_am_i(ctx)
        return

    if ctx.state.flow in FLOWS:
        stale_after = timedelta(seconds=ctx.settings.resume_after_seconds)
        updated = ctx.state.updated_at
        if ctx.state.flow == report.REPORT.name and updated and ctx.now - updated > stale_after:
            _offer_resume(ctx)
            return
        _in_flow(ctx, inbound, text)
        return

    if inbound.photos:
        ctx.say(_("To send photos, start a report first."), buttons=menu.MENU_BUTTONS)
        return
    quick = parsing.parse_quick_report(
        inbound.text, ctx.today, ctx.plan.phase_start,
        {k: t.code for t in ctx.plan.activity_types for k in t.keywords},
    )
    if quick.activity_keyword and _filled(quick) >= 2:
        report.start_quick(ctx, quick)
        return
    _unexpected(ctx, inbound)


def _filled(quick: parsing.QuickReport) -> int:
    fields = (quick.date, quick.place_text, quick.total, quick.women, quick.ethnic, quick.children)
    return sum(value is not None for value in fields)


def _in_flow(ctx: Ctx, inbound: Inbound, text: str) -> None:
    flow = FLOWS[ctx.state.flow]
    step = flow.steps.get(ctx.state.step)
    if step is None:
        log.warning("unknown step %s.%s; starting over", ctx.state.flow, ctx.state.step)
        ctx.finish()
        menu.show_menu(ctx)
        return
    prefix = f"{flow.name}.{ctx.state.step}:"
    if inbound.payload and not inbound.payload.startswith(prefix):
        ctx.say(STALE)
        step.prompt(ctx)
        return
    if not (text or inbound.payload or inbound.photos):
        ctx.say(_("I received an empty message or only symbols."))
        step.prompt(ctx)
        return
    if len(inbound.text) > 2000 and ctx.state.step != "notes":
        ctx.say(_("That message is too long for this question."))
        step.prompt(ctx)
        return
    if inbound.photos and not step.takes_photos and ctx.state.flow != report.REPORT.name:
        ctx.say(_("I cannot use a photo here."))
        step.prompt(ctx)
        return
    step.answer(ctx, inbound, text)


def _where_am_i(ctx: Ctx) -> None:
    flow = FLOWS.get(ctx.state.flow)
    if flow and ctx.state.step in flow.steps:
        flow.steps[ctx.state.step].prompt(ctx)
    else:
        menu.show_menu(ctx)


def _unexpected(ctx: Ctx, inbound: Inbound) -> None:
    ctx.say(_("Sorry, I did not understand."), buttons=menu.MENU_BUTTONS)
