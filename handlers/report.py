"""Reporting an activity: every answer saved as given, a summary to check, then a report number."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from handlers import parsing, photos, safeguarding, village_choice
from handlers.flow import STALE, Ctx, Flow, Step, command_button
from handlers.types import Button, Choice, Inbound
from messages_vi import Text, _, join_lines, render
from storage import members, privacy, reports
from storage.enums import PhotoError
from storage.search import NameMatch

COUNT_FIELDS = ("total", "women", "ethnic", "children")
DONE_WORDS = {"xong", "done", "het", "khong co anh", "khong", "ko", "bo qua", "skip", "khong co"}
SKIP_WORDS = {"bo qua", "skip", "khong", "khong co", "ko", "-"}
SURE_YES = {"co", "dung", "dung roi", "chac", "chac chan", "vang", "da", "u", "ok", "yes",
            "dong y", "luu", "gui"}
SURE_NO = {"khong", "ko", "sai", "nhap lai", "no", "sua"}
HERE_WORDS = {"tai thon", "thon minh", "o thon", "day", "tai day", "ok", "dung"}

DATE_ERRORS = {
    "empty": _("Please type the date, for example 05/03/2025, or choose Today."),
    "format": _("I did not understand that date. Type it as day/month/year, e.g. 05/03/2025."),
    "invalid": _("That date does not exist. Please check the day and month."),
    "future": _("That date is in the future. Report activities that have already happened."),
}
COUNT_ERRORS = {
    "empty": _("Please type a number, for example 30."),
    "not_number": _("Please type a whole number, for example 30."),
    "negative": _("The number cannot be negative."),
    "fraction": _("Please type a whole number of people, without decimals."),
    "ambiguous": _("Please type just one number."),
    "too_large": _("That number is too large for one activity. Please check it."),
}
COUNT_QUESTIONS = {
    "total": _("How many people took part in total?"),
    "women": _("Of them, how many women and girls?"),
    "ethnic": _("How many are ethnic-minority people?"),
    "children": _("How many children under 16?"),
}
FIELD_LABELS = {
    "type": _("Activity"),
    "date": _("Date"),
    "place": _("Place"),
    "total": _("Participants"),
    "women": _("Women and girls"),
    "ethnic": _("Ethnic minority"),
    "children": _("Children under 16"),
    "topic": _("Topic"),
    "photos": _("Photos"),
    "notes": _("Notes"),
}


PHOTO_FACES_QUESTION = _(
    "Do your photos show the face of a woman or child who could be recognised? Until you "
    "answer, only the officers of your area can see them.")
PHOTO_FACES_BUTTONS = (
    command_button(_("Yes, faces can be seen"), "photos_faces"),
    command_button(_("No faces"), "photos_no_faces"),
    command_button(_("Menu"), "menu"),
)


def answer_photo_faces(ctx: Ctx, identifiable: bool) -> None:
    """The answer to PHOTO_FACES_QUESTION, for the member's latest report with photos."""
    member = ctx.identity.member
    number = (privacy.set_photos_identifiable(ctx.session, member.id, identifiable)
              if member else None)
    if number is None:
        ctx.say(_("You have no report with photos."), buttons=[command_button(_("Menu"), "menu")])
        return
    ctx.say(_("Noted for report {number}. Photos with faces are shown only to the officers "
              "of your area.", number=number) if identifiable else
            _("Noted for report {number}.", number=number),
            buttons=[command_button(_("Menu"), "menu")])


def _next_step(ctx: Ctx, after: Step) -> None:
    """Go back to the summary when editing one field; otherwise to the first missing answer."""
    if ctx.draft.pop("editing", False):
        ctx.goto(CONFIRM)
        return
    order = list(REPORT.steps.values())
    for step in order[order.index(after) + 1 :]:
        if not answered(ctx, step):
            ctx.goto(step)
            return
    ctx.goto(CONFIRM)


def answered(ctx: Ctx, step: Step) -> bool:
    if step is PLACE:
        return "area_id" in ctx.draft or "place_text" in ctx.draft
    keys = {TYPE: "type_id", DATE: "date", TOPIC: "topic", PHOTOS: "photos_done", NOTES: "notes",
            **{count: count.name for count in COUNTS.values()}}
    return step in keys and keys[step] in ctx.draft


def start(ctx: Ctx) -> None:
    """Begin a new report from nothing."""
    loose = photos.take_loose(ctx)
    ctx.state.draft = {"media": []}
    ctx.state.flow = REPORT.name
    photos.offer(ctx, loose)
    ctx.goto(TYPE)


# --- steps ---------------------------------------------------------------------------------


def type_prompt(ctx: Ctx) -> None:
    choices = ctx.draft.get("type_choices") or []
    if choices:
        ctx.say(_("Your message names more than one activity. Which one was it?"), buttons=[
            TYPE.button(t.name, str(t.id)) for t in ctx.plan.activity_types if t.id in choices
        ])
        return
    ctx.say(_("What activity are you reporting?"), buttons=[
        TYPE.button(t.name, str(t.id)) for t in ctx.plan.activity_types
    ])


def type_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    value = TYPE.value(inbound)
    types = ctx.plan.activity_types
    chosen = next((t for t in types if str(t.id) == value), None)
    if chosen is None and text:
        chosen = next((t for t in types if text in t.keywords or text == typed_name(t.name)), None)
        chosen = chosen or next((t for t in types if any(k in text for k in t.keywords)), None)
    if chosen is None:
        ctx.say(_("Please choose one of the activities below."))
        type_prompt(ctx)
        return
    ctx.draft.update(type_id=chosen.id, type_name=chosen.name)
    ctx.draft.pop("type_choices", None)
    _next_step(ctx, TYPE)


def typed_name(name: str) -> str:
    return parsing.fold(name)


def date_prompt(ctx: Ctx) -> None:
    week = ctx.draft.get("date_week")
    if week:
        monday = date.fromisoformat(week)
        days = [monday + timedelta(days=n) for n in range(7)]
        ctx.say(_("Which day of the week from {start} to {end}?", start=days[0], end=days[-1]),
                buttons=[DATE.button(d.strftime("%d/%m"), d.isoformat()) for d in days
                         if d <= ctx.today])
        return
    yesterday = ctx.today - timedelta(days=1)
    ctx.say(_("On what date? (day/month/year)"), buttons=[
        DATE.button(_("Today"), ctx.today.isoformat()),
        DATE.button(_("Yesterday"), yesterday.isoformat()),
    ])


def date_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    value = DATE.value(inbound)
    raw = inbound.text
    if value:
        raw = date.fromisoformat(value).strftime("%d/%m/%Y")
    result = parsing.parse_date(raw, ctx.today, ctx.plan.phase_start)
    if result.error == "week" and result.week is not None:
        ctx.draft["date_week"] = result.week.isoformat()
        date_prompt(ctx)
        return
    if result.value is None:
        error = result.error or "format"
        ctx.say(DATE_ERRORS.get(error) or _(
            "That date is before the programme started on {start}.", start=ctx.plan.phase_start))
        date_prompt(ctx)
        return
    ctx.draft["date"] = result.value.isoformat()
    ctx.draft.pop("date_week", None)
    # The date is shown back at once, so a misreading is seen before the next answer.
    ctx.say(_("Date: {value}", value=result.value))
    _next_step(ctx, DATE)


def place_prompt(ctx: Ctx) -> None:
    choices = ctx.draft.get("place_choices") or []
    if choices:
        ctx.say(_("Villages in several communes have this name. Which one?"), buttons=[
            PLACE.button(members.place_label(ctx.session, i), str(i)) for i in choices[:8]
        ])
        return
    member = ctx.identity.member
    buttons: list[Button] = []
    home = members.team_home(ctx.session, member.team_id) if member and member.team_id else None
    if home:
        buttons.append(PLACE.button(home.name, str(home.id)))
    ctx.say(_("Where did it take place? Choose your village or type the village name."),
            buttons=buttons)


def place_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    value = PLACE.value(inbound)
    member = ctx.identity.member
    chosen: Choice | NameMatch | None = None
    hits: list[NameMatch] = []
    if value and value.isdigit():
        chosen = members.area_choice(ctx.session, int(value))
    elif text in HERE_WORDS and member and member.team_id:
        chosen = members.team_home(ctx.session, member.team_id)
    elif text:
        home = member.team_area_id if member else None
        exact = list(parsing.match_villages(inbound.text, members.villages(ctx.session)))
        if len(exact) > 1:
            own = village_choice.own_commune(ctx, exact, home)
            if own is None:
                ctx.draft["place_choices"] = exact
                place_prompt(ctx)
                return
            exact = [own]
        if exact:
            chosen = members.area_choice(ctx.session, exact[0])
        else:
            hits = members.search_places(ctx.session, parsing.arabic_numerals(inbound.text),
                                         near=home)
        top = [h for h in hits if h.rank == hits[0].rank] if hits else []
        ambiguous = len(top) > 1
        if ambiguous and len({h.name for h in top}) == 1:
            # Villages sharing a name: the one in the member's own commune, if there is one.
            own = village_choice.own_commune(ctx, [h.id for h in top], home)
            hits = [h for h in top if h.id == own] or hits
            ambiguous = own is None
        if ambiguous:
            ctx.say(_("Several places match. Which one?"), buttons=[
                PLACE.button(members.place_label(ctx.session, h.id), str(h.id))
                for h in hits[:8]
            ])
            return
        chosen = chosen or (hits[0] if hits else None)
    if chosen is None:
        ctx.say(_("I could not find \u201c{text}\u201d in the plan's villages. Check the name.",
                  text=inbound.text[:60] or "…"))
        place_prompt(ctx)
        return
    ctx.draft.update(area_id=chosen.id, place_name=chosen.name)
    ctx.draft.pop("place_choices", None)
    _next_step(ctx, PLACE)


def _count_prompt(name: str) -> Callable[[Ctx], None]:
    def prompt(ctx: Ctx) -> None:
        bounds = ctx.draft.get(f"{name}_range")
        if bounds:
            low, high = bounds
            ctx.say(_("{part}: you wrote {low}-{high}. Which number is right? Choose one or "
                      "type the exact number.", part=FIELD_LABELS[name], low=low, high=high),
                    buttons=[COUNTS[name].button(str(low), str(low)),
                             COUNTS[name].button(str(high), str(high))])
            return
        buttons = [COUNTS[name].button("0", "0")] if name != "total" else []
        ctx.say(COUNT_QUESTIONS[name], buttons=buttons)

    return prompt


def _participants_problem(draft: dict[str, object]) -> str | None:
    total = draft.get("total")
    if not isinstance(total, int):
        return None
    parts = {k: draft.get(k) for k in COUNT_FIELDS[1:]}
    return parsing.check_participants(
        total, *(v if isinstance(v, int) else None for v in parts.values())
    )


def _count_answer(name: str) -> Callable[[Ctx, Inbound, str], None]:
    def answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
        value = COUNTS[name].value(inbound)
        result = parsing.parse_count(value if value is not None else inbound.text)
        if result.error == "ambiguous" and len(result.choices) == 2:
            ctx.draft[f"{name}_range"] = list(result.choices)
            _count_prompt(name)(ctx)
            return
        if result.value is None:
            ctx.say(COUNT_ERRORS.get(result.error or "not_number", COUNT_ERRORS["not_number"]))
            _count_prompt(name)(ctx)
            return
        trial = {**ctx.draft, name: result.value}
        problem = _participants_problem(trial)
        if problem:
            part = problem.split(":", 1)[1]
            ctx.say(_("{part} ({count}) cannot be more than the total ({total}).",
                      part=FIELD_LABELS[part], count=trial[part], total=trial["total"]))
            if name == "total":
                ctx.say(_("Please type the total again."))
            _count_prompt(name)(ctx)
            return
        if name == "total" and _unusual_total(ctx, result.value):
            ctx.draft["unsure_total"] = result.value
            ctx.goto(SURE)
            return
        ctx.draft[name] = result.value
        ctx.draft.pop(f"{name}_range", None)
        # The count is shown back at once, so a misreading is seen before the next answer.
        ctx.say(_("{label}: {value}", label=FIELD_LABELS[name], value=result.value))
        _next_step(ctx, COUNTS[name])

    return answer


# --- "Bạn chắc chứ?": a total of 0, or more than a village activity holds -------------------


def _unusual_total(ctx: Ctx, total: int) -> bool:
    """0 people, or more than MAX_PARTICIPANTS, that the member has not already confirmed."""
    unusual = total == 0 or total > ctx.settings.max_participants
    return unusual and ctx.draft.get("sure_total") != total


def sure_prompt(ctx: Ctx) -> None:
    total = ctx.draft.get("unsure_total", ctx.draft.get("total", 0))
    why: Text = (_("No one took part?") if total == 0 else
                 _("{count} people is more than a village activity usually holds ({limit}).",
                   count=total, limit=ctx.settings.max_participants))
    ctx.say(why, _("Are you sure? Participants: {count}", count=total), buttons=[
        SURE.button(_("Yes, {count} people", count=total), "yes"),
        SURE.button(_("Type it again"), "no"),
    ])


def sure_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    value = SURE.value(inbound)
    if value is None and text and not inbound.payload:
        agreed = text in SURE_YES or parsing.is_agreement(inbound.text)
        value = "yes" if agreed else "no" if text in SURE_NO else None
        if value is None and parsing.parse_count(inbound.text).value is not None:
            # A new number is the corrected total: it goes through the total's own checks.
            ctx.draft.pop("unsure_total", None)
            ctx.state.step = COUNTS["total"].name
            COUNTS["total"].answer(ctx, inbound, text)
            return
    total = ctx.draft.get("unsure_total")
    if value == "yes" and isinstance(total, int):
        ctx.draft.pop("unsure_total", None)
        ctx.draft.update(total=total, sure_total=total)
        if ctx.draft.pop("send_after_sure", False):
            _send(ctx)
            return
        _next_step(ctx, COUNTS["total"])
    elif value == "no" or not isinstance(total, int):
        ctx.draft.pop("unsure_total", None)
        if ctx.draft.pop("send_after_sure", False):
            ctx.draft["editing"] = True
        ctx.goto(COUNTS["total"])
    else:
        ctx.say(_("Please press one of the buttons, or type the right number."))
        sure_prompt(ctx)


def topic_prompt(ctx: Ctx) -> None:
    ctx.say(_("What was the topic? Choose one or type it."), buttons=[
        TOPIC.button(t.name, str(t.id)) for t in ctx.plan.topics
    ])


def topic_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    value = TOPIC.value(inbound)
    chosen = next((t for t in ctx.plan.topics if str(t.id) == value), None)
    if chosen is None and len(text) >= 4:
        # "bao luc gia dinh" is the topic "Phòng chống bạo lực gia đình".
        chosen = next((t for t in ctx.plan.topics if text in typed_name(t.name)), None)
    if chosen is not None:
        ctx.draft["topic"] = {"id": chosen.id, "name": chosen.name}
    elif len(text) >= 3:
        ctx.draft["topic"] = {"id": None, "name": " ".join(inbound.text.split())[:200]}
    else:
        ctx.say(_("Please choose a topic or type a few words about it."))
        topic_prompt(ctx)
        return
    _next_step(ctx, TOPIC)


def photos_prompt(ctx: Ctx) -> None:
    count = len(ctx.draft.get("media", []))
    text: Text = (_("Send photos of the activity (you can send several). Press Done when finished.")
                  if count == 0 else _("{count} photo(s) received. Send more or press Done.",
                                       count=count))
    ctx.say(text, buttons=[PHOTOS.button(_("Done"), "done")])


def photos_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    if PHOTOS.value(inbound) == "done" or text in DONE_WORDS:
        ctx.draft["photos_done"] = True
        _next_step(ctx, PHOTOS)
        return
    if inbound.photos:
        return  # already stored by receive_photos; the step prompt was repeated there
    ctx.say(_("Here I need photos. Send a photo, or press Done if there are none."))
    photos_prompt(ctx)


def receive_photos(ctx: Ctx, inbound: Inbound) -> None:
    """Photos are kept whenever they arrive, so an album split over messages is one report."""
    media: list[int] = ctx.draft.setdefault("media", [])
    for photo in inbound.photos:
        if photo.error == PhotoError.TOO_LARGE:
            ctx.say(_("That photo is too large (more than {limit} MB). Send a smaller one.",
                      limit=ctx.settings.max_photo_bytes // (1024 * 1024)))
        elif photo.error or photo.media_id is None:
            ctx.say(_("I could not read that file as a photo. Send a JPEG or PNG picture."))
        elif len(media) >= ctx.settings.max_photos:
            ctx.say(_("A report can have at most {limit} photos.", limit=ctx.settings.max_photos))
            break
        elif photo.media_id not in media:
            media.append(photo.media_id)
    if ctx.state.step == PHOTOS.name:
        photos_prompt(ctx)
    elif any(p.media_id for p in inbound.photos):
        ctx.say(_("Photo kept with your report."))
        REPORT.steps[ctx.state.step].prompt(ctx)


def notes_prompt(ctx: Ctx) -> None:
    ctx.say(_("Any notes? (results, difficulties). Never write a victim's name, phone or ID "
              "number."), buttons=[NOTES.button(_("No notes"), "none")])


def notes_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    if NOTES.value(inbound) == "none" or text in SKIP_WORDS:
        ctx.draft["notes"] = ""
        _next_step(ctx, NOTES)
        return
    notes = inbound.text.strip()
    if not text:
        ctx.say(_("Please type your notes, or press No notes."))
        notes_prompt(ctx)
        return
    if len(notes) > ctx.settings.max_text:
        ctx.say(_("Notes are limited to {limit} characters; yours has {count}. Please shorten.",
                  limit=ctx.settings.max_text, count=len(notes)))
        return
    found = parsing.find_sensitive(notes)
    if found:
        kinds = {kind for kind, _match in found}
        ctx.say(_("Your notes contain what looks like {what}: {items}.",
                  what=_("a phone number") if kinds == {"phone"} else _("an ID number")
                  if kinds == {"id_number"} else _("phone or ID numbers"),
                  items=", ".join(m for _k, m in found)),
                _("To protect the people you help, please send the notes again without them."))
        return
    if safeguarding.names_a_victim(notes):
        # The name is never repeated back: it would sit in the outbox and the chat history.
        ctx.say(_("Your notes seem to name a person who was harmed. To protect them, please "
                  "describe what happened without anyone's name."))
        notes_prompt(ctx)
        return
    ctx.draft["notes"] = notes
    _next_step(ctx, NOTES)


def summary_text(ctx: Ctx) -> Text:
    d = ctx.draft
    lines: list[Text] = []
    lines.append(_("Activity: {value}", value=d.get("type_name", "—")))
    lines.append(_("Date: {value}", value=date.fromisoformat(d["date"]) if d.get("date") else "—"))
    lines.append(_("Place: {value}", value=d.get("place_name", "—")))
    lines.append(_("Participants: {total} (women and girls {women}, ethnic minority {ethnic}, "
                   "children under 16 {children})",
                   **{k: d.get(k, "—") for k in COUNT_FIELDS}))
    lines.append(_("Topic: {value}", value=(d.get("topic") or {}).get("name", "—")))
    lines.append(_("Photos: {value}", value=len(d.get("media", []))))
    if d.get("notes"):
        lines.append(_("Notes: {value}", value=d["notes"]))
    return join_lines(lines)


def new_report(ctx: Ctx) -> reports.NewReport:
    """The finished draft as the typed report storage keeps; the draft's keys stay here."""
    d = ctx.draft
    member = ctx.identity.member
    topic = d.get("topic") or {}
    return reports.NewReport(
        identity_id=ctx.identity.id,
        member_id=member.id if member else None,
        team_id=member.team_id if member else None,
        channel=ctx.identity.channel,
        activity_type_id=d["type_id"],
        activity_date=date.fromisoformat(d["date"]),
        total=d["total"],
        women=d.get("women", 0),
        ethnic=d.get("ethnic", 0),
        children=d.get("children", 0),
        area_id=d.get("area_id"),
        place_text=d.get("place_name", ""),
        topic_id=topic.get("id"),
        topic_text=topic.get("name", ""),
        notes=d.get("notes", ""),
        media=tuple(int(m) for m in d.get("media", [])),
    )


def confirm_prompt(ctx: Ctx) -> None:
    ctx.say(_("Please check your report:"), summary_text(ctx), buttons=[
        CONFIRM.button(_("Send"), "send"),
        CONFIRM.button(_("Edit"), "edit"),
        CONFIRM.button(_("Cancel"), "cancel"),
    ])


def confirm_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    value = CONFIRM.value(inbound)
    if value is None:
        value = {"gui": "send", "send": "send", "sua": "edit", "edit": "edit",
                 "huy": "cancel", "cancel": "cancel"}.get(text)
    if value is None and parsing.is_agreement(text):
        value = "send"
    if value == "send":
        total = ctx.draft.get("total")
        # A quick report's total was never asked on its own: it is checked here, before saving.
        if isinstance(total, int) and _unusual_total(ctx, total):
            ctx.draft.update(unsure_total=total, send_after_sure=True)
            ctx.goto(SURE)
            return
        _send(ctx)
    elif value == "edit":
        ctx.goto(EDIT)
    elif value == "cancel":
        ask_cancel(ctx)
    else:
        ctx.say(_("Please choose Send, Edit or Cancel."))
        confirm_prompt(ctx)


def _send(ctx: Ctx) -> None:
    had_photos = bool(ctx.draft.get("media"))
    number = reports.save_report(ctx.session, new_report(ctx))
    ctx.finish()
    if had_photos:
        ctx.say(_("Saved. Your report number is {number}. Thank you!", number=number),
                PHOTO_FACES_QUESTION, buttons=PHOTO_FACES_BUTTONS)
        return
    ctx.say(_("Saved. Your report number is {number}. Thank you!", number=number),
            buttons=[command_button(_("Menu"), "menu")])


def ask_cancel(ctx: Ctx) -> None:
    """"Hủy" with a report in progress: the draft goes only when the member says so."""
    ctx.say(_("Cancel this report? What you entered will be deleted."), summary_text(ctx),
            buttons=[command_button(_("Cancel the report"), "cancel_confirmed"),
                     command_button(_("Keep it"), "keep")])


def edit_prompt(ctx: Ctx) -> None:
    ctx.say(_("Which part do you want to change?"), buttons=[
        EDIT.button(label, field) for field, label in FIELD_LABELS.items()
    ])


def edit_answer(ctx: Ctx, inbound: Inbound, text: str) -> None:
    value = EDIT.value(inbound)
    if value is None:
        value = next((f for f, label in FIELD_LABELS.items()
                      if typed_name(render(label, ctx.identity.locale)) == text), None)
    if value not in REPORT.steps:
        ctx.say(STALE if inbound.payload else _("Please choose the part to change."))
        edit_prompt(ctx)
        return
    ctx.draft["editing"] = True
    step = REPORT.steps[value]
    if step is PHOTOS:
        ctx.draft.pop("photos_done", None)
    ctx.goto(step)


TYPE = Step(type_prompt, type_answer, name="type")
DATE = Step(date_prompt, date_answer, name="date")
PLACE = Step(place_prompt, place_answer, name="place")
COUNTS = {name: Step(_count_prompt(name), _count_answer(name), name=name) for name in COUNT_FIELDS}
TOPIC = Step(topic_prompt, topic_answer, name="topic")
PHOTOS = Step(photos_prompt, photos_answer, takes_photos=True, name="photos")
NOTES = Step(notes_prompt, notes_answer, long_text=True, name="notes")
CONFIRM = Step(confirm_prompt, confirm_answer, name="confirm")
EDIT = Step(edit_prompt, edit_answer, name="edit")
SURE = Step(sure_prompt, sure_answer, name="sure")


def offer_resume(ctx: Ctx) -> None:
    """Someone with a report in progress: continue it, or start again."""
    ctx.say(_("You have an unfinished report:"), summary_text(ctx),
            _("Continue it or start again?"),
            buttons=[command_button(_("Continue"), RESUME), command_button(_("Start again"),
                                                                          RESTART)])


def resume(ctx: Ctx) -> None:
    """The "Continue" of offer_resume: ask the question the report stopped at again."""
    if ctx.state.flow != REPORT.name:
        start(ctx)
        return
    ctx.say(_("Let us continue."))
    ctx.goto(REPORT.steps.get(ctx.state.step, TYPE))


def start_or_offer_resume(ctx: Ctx) -> None:
    """The "Report an activity" command: a report in progress is offered first."""
    if ctx.state.flow == REPORT.name and ctx.draft:
        offer_resume(ctx)
        return
    start(ctx)


RESUME = "resume"
RESTART = "restart"
REPORT = Flow("report", (TYPE, DATE, PLACE, *COUNTS.values(), TOPIC, PHOTOS, NOTES, CONFIRM, EDIT,
                         SURE),
              on_photos=receive_photos, on_return=offer_resume)
