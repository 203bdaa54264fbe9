"""Whole conversations through the web chat API, as a volunteer on a phone would have them."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import app_fixtures
import pytest
from chat_helpers import WebChatUser, png_bytes
from sqlalchemy import func, select

from bot.app import create_app, db_of
from bot.startup import prepare_database
from messages_vi import _, render
from storage.members import create_invite, ensure_village_team, revoke_invite
from storage.models import (
    ConversationState,
    Identity,
    InboundEvent,
    Media,
    Member,
    Outbox,
    Report,
    utcnow,
)
from storage.search import area_id_by_code


def vi(msgid: str, **params: object) -> str:
    """What a Vietnamese reader sees for a message."""
    return render(_(msgid, **params), "vi")


app, config = app_fixtures.app, app_fixtures.config  # the module-app fixtures


def count(app, model) -> int:
    with db_of(app).sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def make_invite(app, village: str = "nt.bac-ai.phuoc-dai.ta-lu-1", role: str = "member",
                days: int = 30) -> str:
    with db_of(app).transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session, village))
        code, _name = create_invite(session, team.code, role=role, days=days, max_uses=5,
                                    actor="test", now=utcnow())
    return code


def joined_by_code(app) -> WebChatUser:
    code = make_invite(app)
    user = WebChatUser(app)
    user.send("xin chào")
    user.press(vi("Agree"))
    # Lowercase, with spaces: what people actually type from a paper note.
    spaced = " ".join(code.lower()[i:i + 4] for i in (0, 4))
    assert vi("Code accepted: {team}.", team="x").split(":")[0] in user.text_of(user.send(spaced))
    user.send("Pinăng Thị Hoa")
    return user


def state_of(app, user: WebChatUser) -> ConversationState:
    with db_of(app).sessions() as session:
        return session.scalars(select(ConversationState)).all()[-1]


def test_consent_then_join_by_code_and_full_report(app):
    user = joined_by_code(app)
    assert vi("What would you like to do?") in user.last_text()
    user.press(vi("Report an activity"))
    assert vi("What activity are you reporting?") in user.last_text()
    user.send("sân khấu hóa")
    user.press(vi("Yesterday"))
    user.send("ta lu 2")  # another village than the team's, typed without diacritics
    user.send("khoảng 40")
    user.send("25 người")
    user.send("30")
    user.send("6")
    user.send("bao luc gia dinh")
    user.photos(png_bytes(), png_bytes(seed=1))
    user.photos(png_bytes(seed=2))  # sent a moment later: still the same report
    user.press(vi("Done"))
    user.send("Bà con tham gia sôi nổi")
    summary = user.last_text()
    assert "Tà Lú 2" in summary and "40" in summary and "Phòng chống bạo lực gia đình" in summary
    # Edit one field from the summary, come back to the summary.
    user.press(vi("Edit"))
    user.press(vi("Participants"))
    user.send("45")
    assert "45" in user.last_text() and vi("Please check your report:") in user.last_text()
    answer = user.text_of(user.press(vi("Send")))
    assert "BC-00001" in answer
    with db_of(app).sessions() as session:
        report = session.scalar(select(Report))
        assert (report.total, report.women, report.ethnic, report.children) == (45, 25, 30, 6)
        local_today = utcnow().astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date()
        assert report.activity_date == local_today - timedelta(days=1)
        assert report.place_text == "Tà Lú 2"
        assert report.notes == "Bà con tham gia sôi nổi"
        photos = session.scalars(select(Media).where(Media.report_id == report.id)).all()
        assert len(photos) == 3
    # The report shows in "my reports".
    assert "BC-00001" in user.text_of(user.press(vi("My reports")))


def test_join_by_choosing_places_typed_without_diacritics(app):
    user = WebChatUser(app)
    user.send("chao")
    user.press(vi("Agree"))
    user.press(vi("Choose my village"))
    assert "Bác Ái" in user.buttons()
    user.send("thuan bac")
    user.send("phuoc khang")
    assert "Đá Mài Trên" in user.buttons()
    user.send("da mai tren")
    assert vi("What is your name? (the name your team knows you by)") in user.last_text()
    user.send("Chamaléa Thị Lan")
    # No role question: a role is granted, never chosen, so a newcomer without an invite for
    # another role is a member.
    assert vi("What would you like to do?") in user.last_text()
    with db_of(app).sessions() as session:
        member = session.scalar(select(Member))
        assert member.role == "member" and member.display_name == "Chamaléa Thị Lan"


def test_small_typo_in_a_commune_name_still_matches(app):
    user = WebChatUser(app)
    user.send("chao")
    user.press(vi("Agree"))
    user.press(vi("Choose my village"))
    user.send("bac ai")
    user.send("phuoc daj")
    assert "Tà Lú 1" in user.buttons()


def test_refusing_consent_stores_nothing_but_the_refusal(app):
    user = WebChatUser(app)
    user.send("hello")
    user.press(vi("Do not agree"))
    refusal = vi("Understood. Only your answer is noted; nothing else about you is stored.")
    assert refusal in user.last_text()
    assert count(app, Member) == 0
    with db_of(app).sessions() as session:
        identity = session.scalar(select(Identity))
        assert identity.consent == "refused" and identity.member_id is None
        state = session.scalar(select(ConversationState))
        assert state.draft == {}
    # A photo sent before consent is not stored either.
    user.photos(png_bytes())
    assert count(app, Media) == 0


def reach_step(app, step: str) -> WebChatUser:
    user = joined_by_code(app)
    user.press(vi("Report an activity"))
    answers = {"type": "truyen thong", "date": "hom nay", "place": "ta lu 1", "total": "30",
               "women": "10", "ethnic": "10", "children": "0", "topic": "binh dang gioi"}
    for name, answer in answers.items():
        if name == step:
            return user
        user.send(answer)
    if step == "photos":
        return user
    user.press(vi("Done"))
    return user


BAD_INPUTS = [
    ("date", "31/2/2025", "That date does not exist. Please check the day and month."),
    ("date", "5/3/2099", "That date is in the future. Report activities that have already "
                         "happened."),
    ("date", "ngày mai gì đó", "I did not understand that date. Type it as day/month/year, "
                               "e.g. 05/03/2025."),
    ("women", "45", None),
    ("total", "-3", "The number cannot be negative."),
    ("total", "ba mươi", "Please type a whole number, for example 30."),
    ("place", "Hà Nội Mới", None),
    ("photos", "đây là ảnh", "Here I need photos. Send a photo, or press Done if there are "
                            "none."),
    ("type", "😀😀😀", "I received an empty message or only symbols."),
    ("total", "", None),
    ("topic", "x" * 5000, "That message is too long for this question."),
]


@pytest.mark.parametrize(("step", "text", "expected"), BAD_INPUTS)
def test_every_bad_input_gets_an_answer_and_keeps_the_draft(app, step, text, expected):
    user = reach_step(app, step)
    before = state_of(app, user)
    answer = user.text_of(user.send(text))
    after = state_of(app, user)
    assert answer.strip(), "never silence"
    if expected:
        assert vi(expected) in answer
    assert after.step == before.step == step
    assert after.draft == before.draft


def test_a_part_above_the_total_is_explained(app):
    user = reach_step(app, "women")
    answer = user.text_of(user.send("45"))
    assert "45" in answer and "30" in answer


def test_unknown_village_is_named_in_the_answer(app):
    user = reach_step(app, "place")
    assert "Hà Nội Mới" in user.text_of(user.send("Hà Nội Mới"))


def test_photo_too_large_is_refused_and_the_draft_kept(app):
    user = reach_step(app, "photos")
    before = state_of(app, user).draft
    answer = user.text_of(user.photos(png_bytes(size=user.max_photo() + 1000)))
    assert vi("That photo is too large (more than {limit} MB). Send a smaller one.",
              limit=user.max_photo() // (1024 * 1024)) in answer
    assert state_of(app, user).draft == before


def test_a_button_from_an_old_message_is_stale(app):
    user = reach_step(app, "date")
    old_type_button = next(m for m in user.seen if m["buttons"] and "truyen" not in m["text"]
                           and len(m["buttons"]) > 5)["buttons"][0]
    before = state_of(app, user)
    answer = user.text_of(user.send(old_type_button["label"], payload=old_type_button["payload"]))
    assert vi("That button belongs to an earlier message.") in answer
    assert state_of(app, user).draft == before.draft


def test_same_message_three_times_gives_one_answer_and_one_report(app):
    user = reach_step(app, "photos")
    user.press(vi("Done"))
    user.press(vi("No notes"))
    send_button = next(b for b in user.seen[-1]["buttons"] if b["label"] == vi("Send"))
    event = uuid.uuid4().hex
    answers = [user.send(vi("Send"), event_id=event, payload=send_button["payload"])
               for _ in range(3)]
    assert len(answers[0]) == 1 and answers[1] == [] and answers[2] == []
    assert count(app, Report) == 1
    with db_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundEvent)
                              .where(InboundEvent.event_id.endswith(f":{event}"))) == 1


def test_a_restart_mid_report_changes_nothing_for_the_member(app, config):
    user = reach_step(app, "women")
    db_of(app).dispose()
    second = create_app(config)
    prepare_database(config, db_of(second))
    again = WebChatUser(second, client=second.test_client())
    # Same browser (cookie) on the new instance.
    again.client = user.client
    again.client.application = second
    again.after = user.after
    answer = again.text_of(again.send("12"))
    assert vi("How many are ethnic-minority people?") in answer
    db_of(second).dispose()


def test_coming_back_hours_later_offers_continue_or_restart(app):
    user = reach_step(app, "total")
    with db_of(app).transaction() as session:
        for state in session.scalars(select(ConversationState)):
            state.updated_at = utcnow() - timedelta(hours=5)
    answer = user.text_of(user.send("30"))
    assert vi("You have an unfinished report:") in answer
    assert vi("Continue") in user.buttons() and vi("Start again") in user.buttons()
    user.press(vi("Continue"))
    assert vi("How many people took part in total?") in user.last_text()
    user.send("30")
    assert vi("Of them, how many women and girls?") in user.last_text()


def test_quick_report_fills_what_it_understood_and_asks_the_rest(app):
    user = joined_by_code(app)
    answer = user.text_of(user.send("truyen thong hom qua ta lu 1, 30 nguoi, 20 nu"))
    assert vi("I understood:") in answer
    assert "Tà Lú 1" in answer and "30" in answer and "20" in answer
    assert vi("How many are ethnic-minority people?") in user.last_text()


def test_notes_with_phone_or_id_numbers_are_refused(app):
    user = reach_step(app, "photos")
    user.press(vi("Done"))
    answer = user.text_of(user.send("Chị ấy số 0912 345 678, CCCD 012345678901"))
    # The answer points at the numbers without repeating them: the outbox keeps what it sends.
    assert "•••• ••• •78" in answer and "••••••••••01" in answer
    assert "345" not in answer and "012345678901" not in answer
    assert state_of(app, user).step == "notes"
    assert "notes" not in state_of(app, user).draft
    with db_of(app).sessions() as session:
        stored = " ".join(json.dumps(p, ensure_ascii=False)
                          for p in session.scalars(select(Outbox.payload)))
    assert "345 678" not in stored and "2345678901" not in stored


def test_invite_codes_expire_and_can_be_revoked(app):
    expired = make_invite(app, days=-1)
    revoked = make_invite(app)
    with db_of(app).transaction() as session:
        revoke_invite(session, revoked, actor="test", now=utcnow())
    user = WebChatUser(app)
    user.send("chao")
    user.press(vi("Agree"))
    assert vi("The code {code} has expired. Ask your commune for a new one.",
              code=expired) in user.text_of(user.send(expired))
    assert vi("The code {code} is no longer valid. Ask your commune.",
              code=revoked) in user.text_of(user.send(revoked))
    assert count(app, Member) == 0


def test_deep_link_start_code_joins_after_consent(app):
    code = make_invite(app)
    user = WebChatUser(app)
    user.send("/start", start=code)
    answer = user.text_of(user.press(vi("Agree")))
    assert "Tà Lú 1" in answer
    assert vi("What is your name? (the name your team knows you by)") in user.last_text()


def test_linking_a_second_channel_makes_one_member(app):
    user = joined_by_code(app)
    user.press(vi("Link another app"))
    code = re.search(r"\b[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}\b", user.last_text()).group()
    other = WebChatUser(app, client=app.test_client())  # another device, another identity
    other.send("xin chao")
    other.press(vi("Agree"))
    assert "Pinăng Thị Hoa" in other.text_of(other.send(code))
    assert count(app, Member) == 1
    with db_of(app).sessions() as session:
        members = {i.member_id for i in session.scalars(select(Identity))}
        assert len(members) == 1


def test_help_and_menu_are_always_available_and_keep_the_draft(app):
    user = reach_step(app, "women")
    draft = state_of(app, user).draft
    assert vi("What would you like to do?") in user.text_of(user.send("menu"))
    assert vi("I help your team report activities to the Women's Union.") in user.text_of(
        user.send("tro giup"))
    assert state_of(app, user).draft == draft
    user.press(vi("Report an activity"))
    assert vi("You have an unfinished report:") in user.last_text() or vi(
        "You have an unfinished report:") in user.text_of(user.seen[-3:])


def test_every_reply_is_delivered_and_none_left_pending(app):
    user = reach_step(app, "photos")
    assert user.seen
    with db_of(app).sessions() as session:
        statuses = set(session.scalars(select(Outbox.status)))
    assert statuses == {"sent"}


def test_a_member_can_erase_their_data(app, config):
    user = reach_step(app, "photos")
    user.photos(png_bytes(seed=9))
    user.press(vi("Done"))
    user.press(vi("No notes"))
    user.press(vi("Send"))
    stored = list((config.media_path).rglob("*.png"))
    assert len(stored) == 1
    from storage import settings

    with db_of(app).transaction() as session:
        external = session.scalar(select(Identity.external_id))
        settings.put(session, f"zalo_bot.buttons.{external}", '["x"]')  # a channel's chat memory
    user.send("xoa du lieu")
    with db_of(app).transaction() as session:  # campaign material held back meanwhile
        session.add(Outbox(identity_id=session.scalar(select(Identity.id)), channel="webchat",
                           payload={"text": "campaign material"}, status="outside_window"))
    answer = user.text_of(user.press(vi("Erase my data")))
    assert vi("While you were away:") not in answer and "campaign material" not in answer
    assert vi("Your data has been erased. Thank you for your work. If you write again, we will "
              "start from the beginning.") in answer
    assert list(config.media_path.rglob("*.png")) == []
    with db_of(app).sessions() as session:
        member = session.scalar(select(Member))
        assert member.display_name == "" and member.erased_at is not None
        report = session.scalar(select(Report))
        assert report.member_id is None and report.total == 30  # counts stay for the plan
        assert session.scalar(select(func.count()).select_from(Media)) == 0
        assert {i.member_id for i in session.scalars(select(Identity))} == {None}
        assert settings.get(session, f"zalo_bot.buttons.{external}") is None
        assert session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.status == "outside_window")) == 0
    # Writing again starts from consent, with nothing held from before.
    again = user.text_of(user.send("xin chao"))
    assert vi("Do you agree?") in again
    assert vi("While you were away:") not in again and "campaign material" not in again


def test_english_reader_gets_english_from_the_worker(app):
    client = app.test_client()
    user = WebChatUser(app, client=client)
    response = client.post("/chat/api/messages?lang=en", json={"id": uuid.uuid4().hex,
                                                              "text": "hello"})
    assert response.status_code == 202
    messages = user._deliver_and_read()
    assert "Do you agree?" in user.text_of(messages)
    assert vi("Do you agree?") != "Do you agree?"


def test_a_team_leader_sees_who_in_the_team_has_reported(app):
    member = reach_step(app, "photos")
    member.press(vi("Done"))
    member.press(vi("No notes"))
    member.press(vi("Send"))
    leader_code = make_invite(app, role="leader")
    leader = WebChatUser(app, client=app.test_client())
    leader.send("chao")
    leader.press(vi("Agree"))
    leader.send(leader_code)
    leader.send("Katơr Thị Mai")
    assert vi("My team's reports") in leader.buttons()
    answer = leader.text_of(leader.press(vi("My team's reports")))
    assert "Pinăng Thị Hoa: 1" in answer
    assert vi("{name}: no report yet", name="Katơr Thị Mai") in answer
    # A member does not get the leader's view.
    assert vi("Only a team leader can see the team's reports.") in member.text_of(
        member.send("/team"))
