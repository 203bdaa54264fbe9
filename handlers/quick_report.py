"""A report started from one message: what was read is kept, what is unsure is asked."""

from __future__ import annotations

from handlers import parsing, photos, report, village_choice
from handlers.flow import Ctx
from messages_vi import Text, _
from storage import members
from storage.values import Village


def quick_inputs(ctx: Ctx) -> tuple[dict[str, str], list[Village], dict[str, str]]:
    """What a quick report is read against: activity words and names, villages, topics."""
    keywords = {k: t.code for t in ctx.plan.activity_types for k in (*t.keywords, t.name)}
    topics = {t.code: t.name for t in ctx.plan.topics}
    return keywords, members.villages(ctx.session), topics


def read_quick(ctx: Ctx, text: str) -> parsing.QuickReport:
    """A message read as a quick report against the plan's words and places."""
    keywords, villages, topics = quick_inputs(ctx)
    return parsing.parse_quick_report(text, ctx.today, ctx.plan.phase_start, keywords,
                                      villages, topics)


def start_quick(ctx: Ctx, quick: parsing.QuickReport) -> None:
    """Begin a report from one message with several fields; ask only for what is missing.

    Nothing is guessed: a part that cannot be taken is said, with the reason, and a part with
    two readings (two activity types, a range, a village name two communes share) is asked.
    """
    draft: dict[str, object] = {"media": []}
    notes: list[Text] = []
    types = ctx.plan.activity_types
    choice = next((t for t in types if t.code == quick.activity_keyword), None)
    if choice:
        draft.update(type_id=choice.id, type_name=choice.name)
    elif quick.activity_codes:
        draft["type_choices"] = [t.id for t in types if t.code in quick.activity_codes]
    topic = next((t for t in ctx.plan.topics if t.code == quick.topic_code), None)
    if topic:
        draft["topic"] = {"id": topic.id, "name": topic.name}
    if quick.date:
        draft["date"] = quick.date.isoformat()
    elif quick.date_week:
        draft["date_week"] = quick.date_week.isoformat()
    elif quick.date_problem:
        reason, typed = quick.date_problem
        why: Text = report.DATE_ERRORS.get(reason) or report.DATE_ERRORS["format"]
        if reason == "too_early":
            why = _("That date is before the programme started on {start}.",
                    start=ctx.plan.phase_start)
        notes.append(_("The date \u201c{typed}\u201d was not taken: {reason}", typed=typed,
                       reason=why))
    for name in report.COUNT_FIELDS:
        value = getattr(quick, name)
        if value is not None:
            draft[name] = value
    for name, low, high in quick.ranges:
        draft[f"{name}_range"] = [low, high]
    for name, typed in quick.out_of_range:
        notes.append(_("{part} \u201c{typed}\u201d was not taken: it is more than {limit}, "
                       "which cannot be right for one activity.", part=report.FIELD_LABELS[name],
                       typed=typed, limit=parsing.REPORT_COUNT_MAX))
    total = draft.get("total")
    for name in report.COUNT_FIELDS[1:]:
        part = draft.get(name)
        if isinstance(total, int) and isinstance(part, int) and part > total:
            notes.append(_("{part} ({count}) was not taken: it cannot be more than the total "
                           "({total}).", part=report.FIELD_LABELS[name], count=part, total=total))
            draft.pop(name)
    _quick_place(ctx, quick, draft)
    loose = photos.take_loose(ctx)  # photos sent just before: offered to this report
    ctx.state.draft = draft
    ctx.state.flow = report.REPORT.name
    photos.offer(ctx, loose)
    ctx.say(_("I understood:"), report.summary_text(ctx), *notes)
    for step in report.REPORT.steps.values():
        if not report.answered(ctx, step):
            ctx.goto(step)
            return
    ctx.goto(report.CONFIRM)


def _quick_place(ctx: Ctx, quick: parsing.QuickReport, draft: dict[str, object]) -> None:
    """The village of a quick report, or the villages to choose from when it is not sure."""
    home = ctx.identity.member.team_area_id if ctx.identity.member else None
    ids: list[int] = list(quick.village_ids)
    if not ids and quick.place_text:
        ids = village_choice.best_hits(ctx, quick.place_text, home, closest=2)
    elif not ids and quick.leftovers:
        # Words left over may be a village typed without "thôn"; only a close match counts.
        ids = village_choice.best_hits(ctx, quick.leftovers, home, closest=1)
    chosen = village_choice.own_commune(ctx, ids, home)
    if chosen is not None:
        area = members.area_choice(ctx.session, chosen)
        if area is not None:
            draft.update(area_id=area.id, place_name=area.name)
    elif len(ids) > 1:
        draft["place_choices"] = ids
