"""First contact: consent (Decree 13/2023/NĐ-CP), then joining a team by code or by place."""

from __future__ import annotations

import re

from handlers import deadline_chat, linking
from handlers.flow import Ctx, Flow, Step, typed
from handlers.menu import show_menu
from handlers.parsing import is_agreement
from handlers.types import Button, Inbound
from messages_vi import _
from storage import members, privacy
from storage.enums import Role

YES_WORDS = {"dong y", "co", "ok", "yes", "agree", "dongy", "dy", "co dong y", "toi dong y"}
NO_WORDS = {"khong dong y", "khong", "ko", "no", "khongdongy", "tu choi"}
LEADER_WORDS = {"to truong", "truong", "leader", "nhom truong", "totruong"}
MEMBER_WORDS = {"thanh vien", "member", "tv", "thanhvien"}


# --- consent -------------------------------------------------------------------------------


# The notice a member agrees to. Change its words → change the version, and run
# `duan8 consent reask` so everyone is asked again at their next message.
CONSENT_NOTICE_VERSION = "2026-12"
CONSENT_NOTICE = _(
    "To take your reports I keep your name, your team and what you report. The "
    "Women's Union of your commune, district and province sees them, only to follow "
    "the programme (Decree 13/2023/ND-CP on personal data). To erase them at any "
    "time, type \u201cxoa du lieu\u201d."
)


def consent_prompt(ctx: Ctx) -> None:
    ctx.say(
        _("Hello! I am the assistant of the Project 8 community communication teams."),
        CONSENT_NOTICE,
        _("Do you agree?"),
        buttons=_consent_buttons(),
    )


def _consent_buttons() -> list[Button]:
    return [ASK.button(_("Agree"), "yes"), ASK.button(_("Do not agree"), "no")]


def consent_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    value = ASK.value(inbound)
    if value == "yes" or (value is None and (text in YES_WORDS or is_agreement(text))):
        members.record_consent(ctx.session, ctx.identity.id, given=True, at=ctx.now)
        privacy.record_consent_decision(ctx.session, ctx.identity.id, given=True,
                                        version=CONSENT_NOTICE_VERSION,
                                        channel=ctx.identity.channel, at=ctx.now)
        ctx.say(_("Thank you. Now let us find your team."))
        code = ctx.draft.get("start_code")
        ctx.state.draft = {}
        ctx.goto(METHOD)
        if code:
            try_code(ctx, code)
        return
    if value == "no" or (value is None and text in NO_WORDS):
        members.record_consent(ctx.session, ctx.identity.id, given=False, at=ctx.now)
        privacy.record_consent_decision(ctx.session, ctx.identity.id, given=False,
                                        version=CONSENT_NOTICE_VERSION,
                                        channel=ctx.identity.channel, at=ctx.now)
        ctx.finish()
        ctx.say(
            _("Understood. Only your answer is noted; nothing else about you is stored."),
            _("If you change your mind, send any message and we can start again."),
        )
        return
    # The notice was just shown: one line and the two buttons, not the whole notice again.
    ctx.say(_("Please choose Agree or Do not agree."), buttons=_consent_buttons())


ASK = Step(consent_prompt, consent_answer, name="ask")
CONSENT = Flow("consent", (ASK,))


# --- joining -------------------------------------------------------------------------------


def method_prompt(ctx: Ctx) -> None:
    ctx.say(
        _("Do you have an invite code from the Women's Union? Type it here."),
        _("No code? Choose your district, commune and village instead."),
        buttons=[METHOD.button(_("Choose my village"), "browse")],
    )


def method_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    if METHOD.value(inbound) == "browse":
        ctx.goto(AREA)
        return
    if not text:
        ctx.say(_("Please type your invite code, or press Choose my village."))
        method_prompt(ctx)
        return
    try_code(ctx, inbound.text)


def try_code(ctx: Ctx, raw: str) -> None:
    """An invite code (letters) joins a team; a 6-digit code links to an existing member."""
    code = re.sub(r"[\s\-_.]", "", raw).upper()[:32]
    if linking.throttled(ctx):
        return
    if linking.is_link_code(code):
        member = members.use_link_code(ctx.session, code, ctx.identity.id, ctx.now)
        if member is None:
            linking.wrong(ctx, code)
            ctx.say(_("That link code is wrong or has expired. Ask for a new one."))
            method_prompt(ctx)
            return
        ctx.finish()
        ctx.refresh_identity()
        linking.announce(ctx, member.id)
        ctx.say(_("Linked. You are {name} of {team}.", name=member.name, team=member.team_name))
        show_menu(ctx)
        return
    if deadline_chat.try_officer_code(ctx, code):
        return
    invite = members.find_invite(ctx.session, code, ctx.now)
    if invite.status == "unknown":
        linking.wrong(ctx, code)
    if invite.status != "ok":
        reasons = {
            "unknown": _("I do not know the code {code}. Check it and type it again.", code=code),
            "expired": _("The code {code} has expired. Ask your commune for a new one.", code=code),
            "revoked": _("The code {code} is no longer valid. Ask your commune.", code=code),
            "used_up": _("The code {code} has been used too many times. Ask your commune.",
                         code=code),
        }
        ctx.say(reasons[invite.status])
        method_prompt(ctx)
        return
    ctx.draft.update(team_id=invite.team_id, role=invite.role, invite=code)
    ctx.say(_("Code accepted: {team}.", team=invite.team_name))
    ctx.goto(NAME)


def area_prompt(ctx: Ctx) -> None:
    parent = ctx.draft.get("area_id")
    choices = members.child_areas(ctx.session, parent)
    if parent is None and len(choices) == 1:
        # One province: start at its districts, nobody needs to pick the province.
        ctx.draft["area_id"] = choices[0].id
        choices = members.child_areas(ctx.session, choices[0].id)
    level = members.level_of_children(ctx.session, ctx.draft.get("area_id"))
    question = {
        "district": _("Which district? Choose or type its name."),
        "commune": _("Which commune? Choose or type its name."),
        "village": _("Which village? Choose or type its name."),
    }.get(level, _("Where is your team? Choose or type the name."))
    buttons = [AREA.button(c.name, str(c.id)) for c in choices[:12]]
    ctx.say(question, buttons=buttons)


def area_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    parent = ctx.draft.get("area_id")
    value = AREA.value(inbound)
    chosen = None
    if value and value.isdigit():
        chosen = members.child_area(ctx.session, parent, int(value))
    if chosen is None and text:
        hits = members.search_child_areas(ctx.session, parent, inbound.text)
        if hits and (len(hits) == 1 or hits[0].rank < hits[1].rank):
            chosen = hits[0]
        elif hits:
            ctx.say(_("Several places match. Which one?"),
                    buttons=[AREA.button(h.name, str(h.id)) for h in hits[:8]])
            return
    if chosen is None:
        ctx.say(_("I could not find \u201c{text}\u201d here.", text=inbound.text[:60] or "…"))
        area_prompt(ctx)
        return
    ctx.draft["area_id"] = chosen.id
    if members.child_areas(ctx.session, chosen.id):
        area_prompt(ctx)
        return
    ctx.goto(TEAM)


def team_prompt(ctx: Ctx) -> None:
    teams = members.teams_for_join(ctx.session, ctx.draft["area_id"])
    if len(teams) == 1:
        ctx.draft["team_id"] = teams[0].id
        ctx.say(_("Your team: {team}.", team=teams[0].name))
        ctx.goto(NAME)
        return
    ctx.say(_("Which team are you in?"),
            buttons=[TEAM.button(t.name, str(t.id)) for t in teams[:12]])


def team_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    teams = members.teams_for_join(ctx.session, ctx.draft["area_id"])
    value = TEAM.value(inbound)
    chosen = next((t for t in teams if str(t.id) == value), None)
    if chosen is None and text:
        wanted = typed(inbound).replace(" ", "")
        chosen = next((t for t in teams if wanted and wanted in members.folded(t.name)), None)
    if chosen is None:
        team_prompt(ctx)
        return
    ctx.draft["team_id"] = chosen.id
    ctx.goto(NAME)


def name_prompt(ctx: Ctx) -> None:
    ctx.say(_("What is your name? (the name your team knows you by)"))


def name_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    name = " ".join(inbound.text.split())[:80]
    if len(text) < 2 or not any(ch.isalpha() for ch in name):
        ctx.say(_("Please type your name in letters, for example: Pinăng Thị Hoa."))
        return
    ctx.draft["name"] = name
    # A role is granted (an invite made for it, an officer's grant), never chosen here.
    ctx.draft.setdefault("role", "member")
    complete_join(ctx)


def role_prompt(ctx: Ctx) -> None:
    ctx.say(_("Are you a team member or the team leader?"), buttons=[
        ROLE.button(_("Member"), Role.MEMBER),
        ROLE.button(_("Team leader"), Role.LEADER),
    ])


def role_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    value = ROLE.value(inbound)
    if value is None:
        squeezed = text.replace(" ", "")
        value = (Role.LEADER if text in LEADER_WORDS or squeezed in LEADER_WORDS
                 else Role.MEMBER if text in MEMBER_WORDS or squeezed in MEMBER_WORDS else None)
    if value not in set(Role):
        ctx.say(_("Please choose Member or Team leader."))
        role_prompt(ctx)
        return
    # Only conversations saved at this step before roles were granted get here: whatever the
    # answer, the role is "member"; a team leader is named by an invite or an officer.
    if value == "leader":
        ctx.say(_("Team leaders are named by the Women's Union: ask your commune officer for a "
                  "leader's invite. Meanwhile you join as a member."))
    ctx.draft["role"] = "member"
    complete_join(ctx)


def complete_join(ctx: Ctx) -> None:
    member = members.join_team(
        ctx.session, ctx.identity.id, team_id=ctx.draft["team_id"], name=ctx.draft["name"],
        role=ctx.draft["role"], invite=ctx.draft.get("invite"), at=ctx.now,
    )
    ctx.finish()
    ctx.refresh_identity()
    ctx.say(_("Welcome, {name}! You are now in {team}.", name=member.name, team=member.team_name))
    show_menu(ctx)


METHOD = Step(method_prompt, method_answer, name="method")
AREA = Step(area_prompt, area_answer, name="area")
TEAM = Step(team_prompt, team_answer, name="team")
NAME = Step(name_prompt, name_answer, name="name")
ROLE = Step(role_prompt, role_answer, name="role")
JOIN = Flow("join", (METHOD, AREA, TEAM, NAME, ROLE))
