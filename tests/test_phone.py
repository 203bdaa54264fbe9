"""On a cheap phone: at most six buttons, short labels, a one-line consent re-ask, the leader's
view one short screen at a time, English on ?lang=en. Through the web chat API and the worker,
or the dispatcher a platform channel calls."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from chat_helpers import WebChatUser
from sqlalchemy import select
from test_conversation import app, joined_by_code, make_invite, reach_step, state_of, vi  # noqa: F401

from bot.app import config_of, db_of
from bot.dispatcher import Dispatcher, Incoming, render_reply
from handlers.flow import MAX_BUTTONS, page_buttons
from handlers.types import Button, Reply
from messages_vi import LABEL_LIMIT, short_labels
from storage.models import Identity, Member, Outbox
from storage.reports import NewReport, save_report

ACTIVITY_TYPES = 9  # in the shipped plan


def every_queued_message(app) -> list[dict]:  # noqa: F811
    with db_of(app).sessions() as session:
        return [row.payload for row in session.scalars(select(Outbox).order_by(Outbox.id))]


def test_no_message_anywhere_carries_more_than_six_buttons_or_a_long_label(app):  # noqa: F811
    user = reach_step(app, "notes")
    user.press(vi("No notes"))
    user.press(vi("Edit"))  # ten fields to choose from
    user.press(vi("Participants"))
    user.send("40")
    user.press(vi("Send"))
    queued = every_queued_message(app)
    assert queued and all(len(m.get("buttons", [])) <= MAX_BUTTONS for m in queued)
    labels = [b["label"] for m in queued for b in m.get("buttons", [])]
    assert labels and all(len(label) <= LABEL_LIMIT for label in labels)
    assert "Truyền thông trực…" in labels  # "Truyền thông trực tiếp tại cộng đồng", shortened


def test_a_long_list_is_paged_and_every_page_answers_the_question(app):  # noqa: F811
    user = joined_by_code(app)
    user.press(vi("Report an activity"))
    first = user.buttons()
    assert len(first) == MAX_BUTTONS and first[-1] == vi("More")
    user.press(vi("More"))
    assert vi("What activity are you reporting?") in user.last_text()
    second = user.buttons()
    assert second[-1] == vi("Back to the first choices")
    assert len(first) - 1 + len(second) - 1 == ACTIVITY_TYPES
    assert not set(first[:-1]) & set(second[:-1])
    # A choice on the second page answers the question.
    user.send(second[0], payload=next(
        b["payload"] for b in user.seen[-1]["buttons"] if b["label"] == second[0]))
    assert vi("On what date? (day/month/year)") in user.last_text()
    assert state_of(app, user).draft["type_name"].startswith(second[0].rstrip("…"))


def test_a_button_from_the_first_page_still_works_after_paging(app):  # noqa: F811
    user = joined_by_code(app)
    user.press(vi("Report an activity"))
    page_one = {b["label"]: b["payload"] for b in user.seen[-1]["buttons"]}
    user.press(vi("More"))
    label = next(iter(page_one))
    user.send(label, payload=page_one[label])  # pressed on the older message
    assert vi("On what date? (day/month/year)") in user.last_text()


def test_the_edit_list_is_paged_too(app):  # noqa: F811
    user = reach_step(app, "notes")
    user.press(vi("No notes"))
    user.press(vi("Edit"))
    assert len(user.buttons()) == MAX_BUTTONS
    user.press(vi("More"))
    user.press(vi("Notes"))
    assert vi("Any notes? (results, difficulties). Never write a victim's name, phone or ID "
              "number.") in user.last_text()


@pytest.mark.parametrize("count", [0, 1, 6, 7, 11, 12, 30])
def test_paging_shows_every_choice_once_and_never_more_than_six(count):
    buttons = [Button(f"b{i}", f"p:{i}") for i in range(count)]
    seen: list[str] = []
    page = 1
    for _ in range(count + 1):
        shown = page_buttons(buttons, page)
        assert len(shown) <= MAX_BUTTONS
        seen += [b.payload for b in shown if b.payload.startswith("p:")]
        more = [b.payload for b in shown if b.payload.startswith("cmd:more:")]
        if not more or more[0] == "cmd:more:1":
            break
        page = int(more[0].rsplit(":", 1)[1])
    assert seen == [b.payload for b in buttons]


def test_short_labels_stay_distinct_and_keep_short_ones():
    labels = ["Phòng chống bạo lực gia đình", "Phòng chống bạo lực học đường", "Có", "x" * 40]
    shortened = short_labels(labels)
    assert len(set(shortened)) == len(labels)
    assert shortened[2] == "Có" and all(len(s) <= LABEL_LIMIT for s in shortened[:2])
    reply = render_reply(Reply.of("?", buttons=[Button(label, str(i)) for i, label in
                                                enumerate(labels)]), "vi")
    assert [b["payload"] for b in reply["buttons"]] == ["0", "1", "2", "3"]


def test_an_answer_consent_does_not_understand_gets_one_line_and_two_buttons(app):  # noqa: F811
    user = WebChatUser(app)
    first = user.text_of(user.send("xin chao"))
    notice = vi("Hello! I am the assistant of the Project 8 community communication teams.")
    assert notice in first
    again = user.send("la gi vay")
    assert [m["text"] for m in again] == [vi("Please choose Agree or Do not agree.")]
    assert user.buttons() == [vi("Agree"), vi("Do not agree")]
    user.press(vi("Agree"))
    assert vi("Thank you. Now let us find your team.") in user.text_of(user.seen[-2:])


def test_lang_en_gives_english_replies_even_to_a_vietnamese_member(app):  # noqa: F811
    user = joined_by_code(app)  # joined on the Vietnamese page
    english = WebChatUser(app, client=user.client, lang="en")
    english.after = user.after
    answer = english.text_of(english.send("menu"))
    assert "What would you like to do?" in answer
    assert vi("What would you like to do?") not in answer
    assert "Report an activity" in english.buttons()
    # The Vietnamese page again: Vietnamese.
    assert vi("What would you like to do?") in user.text_of(user.send("menu"))


def test_lang_en_from_the_first_message(app):  # noqa: F811
    user = WebChatUser(app, lang="en")
    assert "Do you agree?" in user.text_of(user.send("hello"))
    user.send("what")
    assert user.last_text() == "Please choose Agree or Do not agree."


# --- the leader's team view -------------------------------------------------------------------


def _leader_view(app, now: datetime, page: str = "team") -> list[dict]:  # noqa: F811
    """Press the team view at a given moment, as a platform's message would reach it."""
    dispatcher = Dispatcher(config_of(app), db_of(app))
    with db_of(app).sessions() as session:
        before = session.scalar(select(Outbox.id).order_by(Outbox.id.desc()).limit(1)) or 0
    dispatcher.dispatch(Incoming(channel="webchat", external_id=LEADER, event_id=f"{page}{now}",
                                 payload=f"cmd:{page}", text="", locale="vi"), now=now)
    with db_of(app).sessions() as session:
        return [r.payload for r in session.scalars(select(Outbox).where(Outbox.id > before)
                                                   .order_by(Outbox.id))]


LEADER = "leader-visitor"


@pytest.fixture
def team(app):  # noqa: F811
    """A leader (web chat visitor LEADER) and eleven members, one of whom reported on 28/09."""
    dispatcher = Dispatcher(config_of(app), db_of(app))
    code = make_invite(app, role="leader")
    steps = ["xin chao", None, code, "Katơr Thị Mai"]
    for n, text in enumerate(steps):
        dispatcher.dispatch(Incoming(
            channel="webchat", external_id=LEADER, event_id=f"lead{n}",
            text=text or "", payload="consent.ask:yes" if text is None else None, locale="vi"))
    members = []
    for i in range(11):
        member_code = make_invite(app)
        for n, text in enumerate(["chao", None, member_code, f"Thành viên {i:02d}"]):
            dispatcher.dispatch(Incoming(
                channel="webchat", external_id=f"member-{i}", event_id=f"m{i}-{n}",
                text=text or "", payload="consent.ask:yes" if text is None else None,
                locale="vi"))
        members.append(f"member-{i}")
    with db_of(app).transaction() as session:
        identity = session.scalar(select(Identity).where(Identity.external_id == "member-3"))
        member = session.get(Member, identity.member_id)
        save_report(session, NewReport(
            identity_id=identity.id, member_id=member.id, team_id=member.team_id,
            channel="webchat", activity_type_id=1, activity_date=date(2026, 9, 28), total=30,
            women=10, ethnic=0, children=0, area_id=None, place_text="Tà Lú 1", topic_id=None,
            topic_text="", notes="", media=()))
    return members


def test_the_team_view_is_one_short_message_a_page_naming_its_period(app, team):  # noqa: F811
    early = datetime(2026, 10, 3, 3, 0, tzinfo=UTC)  # 3 October: the month has just begun
    (screen,) = _leader_view(app, early)
    text = screen["text"]
    assert "từ 01/09/2026 đến 03/10/2026" in text and "trang 1/2" in text.lower()
    assert "Thành viên 03: 1 báo cáo" in text
    assert len(text.splitlines()) <= 12
    assert [b["payload"] for b in screen["buttons"]] == ["cmd:team:2", "cmd:menu"]
    (second,) = _leader_view(app, early, "team:2")
    assert "trang 2/2" in second["text"].lower()
    assert [b["payload"] for b in second["buttons"]] == ["cmd:team:1", "cmd:menu"]
    # Later in the month: this month only, so September's report is not counted.
    (later,) = _leader_view(app, datetime(2026, 10, 20, 3, 0, tzinfo=UTC))
    assert "từ 01/10/2026 đến 20/10/2026" in later["text"]
    assert "1 báo cáo" not in later["text"]


def test_the_team_view_mid_report_asks_the_pending_question_again(app):  # noqa: F811
    leader_code = make_invite(app, role="leader")
    leader = WebChatUser(app)
    leader.send("chao")
    leader.press(vi("Agree"))
    leader.send(leader_code)
    leader.send("Katơr Thị Mai")
    leader.press(vi("Report an activity"))
    leader.send("truyen thong")
    shown = leader.text_of(leader.send("/team"))
    assert vi("Your report is not finished. The question waiting for your answer:") in shown
    assert leader.last_text().endswith(vi("On what date? (day/month/year)"))


def test_a_list_an_answer_produced_pages_too(app):  # noqa: F811
    user = reach_step(app, "place")
    user.send("suoi")  # more villages match than six buttons hold
    first = user.buttons()
    assert len(first) == MAX_BUTTONS and first[-1] == vi("More")
    user.press(vi("More"))
    second = user.buttons()
    assert second[-1] == vi("Back to the first choices")
    assert not set(first[:-1]) & set(second[:-1]) and all("Suối" in b for b in second[:-1])
    user.press(second[0])
    assert state_of(app, user).draft["place_name"].startswith("Suối")
    assert "paged_answer" not in state_of(app, user).draft
    assert vi("How many people took part in total?") in user.last_text()


def test_joining_by_place_pages_a_long_list_of_communes(app):  # noqa: F811
    user = WebChatUser(app)
    user.send("chao")
    user.press(vi("Agree"))
    user.press(vi("Choose my village"))
    user.press("Bác Ái")
    pages = [user.buttons()]
    while pages[-1][-1] == vi("More"):
        user.press(vi("More"))
        pages.append(user.buttons())
    assert len(pages) >= 2 and all(len(p) <= MAX_BUTTONS for p in pages)
    assert pages[-1][-1] == vi("Back to the first choices")
    communes = [label for p in pages for label in p[:-1]]
    assert len(communes) == len(set(communes)) and "Phước Đại" in communes
    user.press(pages[-1][0])  # a commune from the last page
    assert len(user.buttons()) <= MAX_BUTTONS and user.buttons()  # its villages
