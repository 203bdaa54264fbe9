"""The menu, help, "my reports" and linking another channel: always reachable, never a dead end."""

from __future__ import annotations

from handlers.flow import Ctx
from handlers.types import Button
from messages_vi import _, join_lines
from storage import members, reports

ERASE_CONFIRM = "cmd:erase_confirmed"

MENU_BUTTONS = (
    Button(_("Report an activity"), "cmd:report"),
    Button(_("My reports"), "cmd:my_reports"),
    Button(_("Link another app"), "cmd:link"),
    Button(_("Help"), "cmd:help"),
)


LEADER_BUTTON = Button(_("My team's reports"), "cmd:team")


def show_menu(ctx: Ctx) -> None:
    """The main choices a joined member has; a team leader also sees the team's reporting."""
    member = ctx.identity.member
    buttons = MENU_BUTTONS
    if member is not None and member.role == "leader":
        buttons = (MENU_BUTTONS[0], LEADER_BUTTON, *MENU_BUTTONS[1:])
    ctx.say(_("What would you like to do?"), buttons=buttons)


def show_team(ctx: Ctx) -> None:
    """For a team leader: who in the team reported this month, and who has not yet."""
    member = ctx.identity.member
    if member is None or member.role != "leader" or member.team_id is None:
        ctx.say(_("Only a team leader can see the team's reports."), buttons=MENU_BUTTONS)
        return
    since = ctx.today.replace(day=1)
    rows = reports.team_activity(ctx.session, member.id, since)
    lines = [
        _("{name}: {count} report(s), last on {date}", name=r.name, count=r.reports,
          date=r.last_date) if r.reports else _("{name}: no report yet", name=r.name)
        for r in rows
    ]
    ctx.say(_("{team} since {since}:", team=member.team_name, since=since), join_lines(lines),
            buttons=MENU_BUTTONS)


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
    """Erasure is final, so it is confirmed with a button first."""
    ctx.state.flow, ctx.state.step, ctx.state.draft = "", "", {}
    ctx.say(
        _("This erases your name, your link to your team and the photos you sent. Reports "
          "you sent stay only as anonymous numbers for the programme. This cannot be undone."),
        buttons=[Button(_("Erase my data"), ERASE_CONFIRM), Button(_("Keep my data"), "cmd:menu")],
    )


def erase(ctx: Ctx) -> None:
    """Do the erasure asked for with the confirmation button."""
    members.erase_member(ctx.session, ctx.identity.id, ctx.settings.media_dir, ctx.now)
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
