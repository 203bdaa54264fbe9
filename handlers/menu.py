"""The menu, help, "my reports" and linking another channel: always reachable, never a dead end."""

from __future__ import annotations

from handlers.flow import Ctx, command_button, command_payload
from handlers.types import Button
from messages_vi import Text, _, join_lines
from storage import members, privacy, reports
from storage.enums import Role

ERASE_CONFIRM = command_payload("erase_confirmed")

MENU_BUTTONS = (
    command_button(_("Report an activity"), "report"),
    command_button(_("My reports"), "my_reports"),
    command_button(_("Link another app"), "link"),
    command_button(_("Help"), "help"),
    command_button(_("Privacy"), "privacy"),
)


LEADER_BUTTON = command_button(_("My team's reports"), "team")


def show_menu(ctx: Ctx) -> None:
    """The main choices a joined member has; a team leader also sees the team's reporting."""
    member = ctx.identity.member
    buttons: tuple[Button, ...] = MENU_BUTTONS
    if member is not None and member.role == Role.LEADER:
        buttons = (MENU_BUTTONS[0], LEADER_BUTTON, *MENU_BUTTONS[1:])
    ctx.say(_("What would you like to do?"), buttons=buttons)


def show_help(ctx: Ctx) -> None:
    """Short help: what to type, with buttons so nobody has to remember words."""
    ctx.say(
        _("I help your team report activities to the Women's Union."),
        _("Press Report an activity and answer the questions. You can type without accents. "
          "Type Menu at any time to see the choices, or Cancel to stop."),
        _("Quick report: send everything in one message, e.g. "
          "\u201ctruyen thong hom qua thon Ta Lu 1, 30 nguoi, 20 nu\u201d."),
        buttons=MENU_BUTTONS,
    )


def show_my_reports(ctx: Ctx) -> None:
    """The member's latest reports with their numbers and status."""
    member = ctx.identity.member
    rows = reports.recent_reports(ctx.session, member.id, limit=5) if member else []
    if not rows:
        ctx.say(_("You have not sent any reports yet."), buttons=MENU_BUTTONS)
        return
    status = {"submitted": _("received"), "accepted": _("accepted"), "returned": _("returned")}
    lines = [
        _("{number} · {date} · {activity} · {people} people · {status}", number=r.number,
          date=r.activity_date, activity=r.activity_name, people=r.total,
          status=status.get(r.status, _("received")))
        for r in rows
    ]
    ctx.say(_("Your latest reports:"), join_lines(lines), buttons=MENU_BUTTONS)


def ask_erase(ctx: Ctx) -> None:
    """Erasure is final, so it is confirmed with a button first; "Giữ lại" leaves everything,
    a report in progress too, as it was."""
    ctx.say(
        _("This erases your name, your link to your team and the photos you sent. Reports "
          "you sent stay only as anonymous numbers for the programme. This cannot be undone."),
        buttons=[Button(_("Erase my data"), ERASE_CONFIRM),
                 command_button(_("Keep my data"), "keep")],
    )


def erase(ctx: Ctx) -> None:
    """Do the erasure asked for with the confirmation button."""
    privacy.erase(ctx.session, ctx.identity.id, ctx.settings.media_dir, ctx.now)
    ctx.finish()
    ctx.say(_("Your data has been erased. Thank you for your work. If you write again, we "
              "will start from the beginning."))


def show_link_code(ctx: Ctx) -> None:
    """A one-time code that joins another chat app to this same member."""
    member = ctx.identity.member
    if member is None:
        show_menu(ctx)
        return
    code = members.create_link_code(ctx.session, member.id, ctx.now)
    shown = "-".join(code[i:i + 4] for i in range(0, len(code), 4))
    ctx.say(
        _("Your link code is {code}. It works once, for 30 minutes.", code=shown),
        _("Open this bot in your other chat app (Zalo, Telegram, Messenger) and type the code "
          "when asked for an invite code."),
        _("Never give this code to anyone else: whoever types it sees and changes your data."),
    )


def show_privacy(ctx: Ctx) -> None:
    """"Quyền riêng tư": the notice the member agreed to, and what is stored about them."""
    from handlers.onboarding import CONSENT_NOTICE, CONSENT_NOTICE_VERSION

    held = privacy.stored_about(ctx.session, ctx.identity.id)
    lines: list[Text] = [
        _("Name: {name}", name=held.name or "—"),
        _("Team: {team}", team=held.team or "—"),
        _("Reports you sent: {count} (photos: {photos})", count=held.reports,
          photos=held.photos),
        _("Chat apps linked: {apps}", apps=", ".join(held.channels) or "—"),
    ]
    lines += [_("Consent {decision} on {date} ({channel}), notice version {version}",
                decision=_("given") if c.decision == "given" else _("refused"),
                date=c.at.astimezone(ctx.now.tzinfo).date() if ctx.now.tzinfo else c.at.date(),
                channel=c.channel, version=c.version) for c in held.consents]
    ctx.say(CONSENT_NOTICE, _("Notice version {version}.", version=CONSENT_NOTICE_VERSION))
    ctx.say(_("What we keep about you:"), join_lines(lines),
            _("To erase it, type \u201cxoa du lieu\u201d."), buttons=MENU_BUTTONS)
