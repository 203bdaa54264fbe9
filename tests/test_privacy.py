"""Data protection: the consent ledger, the privacy view, erasure that erases, quiet logs."""

from __future__ import annotations

import logging

import app_fixtures
from chat_helpers import WebChatUser
from sqlalchemy import JSON, String, Text, func, select

from bot.app import db_of
from handlers.onboarding import CONSENT_NOTICE_VERSION
from messages_vi import _, render
from storage.members import create_invite, ensure_village_team
from storage.models import Base, Identity, Report, utcnow
from storage.models_safeguarding import ConsentRecord
from storage.privacy import ask_consent_again
from storage.search import area_id_by_code

NAME = "Pinăng Thị Hoa"
NOTE = "Buổi sinh hoạt ở nhà rông, bà con hỏi nhiều về hôn nhân cận huyết"
PHONE = "0912345678"


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


app, config = app_fixtures.app, app_fixtures.config  # the module-app fixtures


def joined(app) -> WebChatUser:
    with db_of(app).transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session,
                                                            "nt.bac-ai.phuoc-dai.ta-lu-1"))
        code, _team = create_invite(session, team.code, role="member", days=30, max_uses=5,
                                    actor="test", now=utcnow())
    user = WebChatUser(app)
    user.send("xin chào")
    user.press(vi("Agree"))
    user.send(code)
    user.send(NAME)
    return user


def report_with_notes(user: WebChatUser) -> None:
    user.press(vi("Report an activity"))
    for value in ("truyen thong", "hom nay", "ta lu 1", "30", "20", "10", "0", "tao hon"):
        user.send(value)
    user.press(vi("Done"))
    user.send(f"gọi {PHONE} nếu cần")  # refused: a phone number in notes
    user.send(NOTE)
    user.press(vi("Send"))


def every_text_value(app) -> str:
    """Every string and JSON value of every table, joined: what an auditor would search."""
    found: list[str] = []
    with db_of(app).sessions() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
            if not columns:
                continue
            for row in session.execute(select(*columns)):
                found.extend(str(value) for value in row if value is not None)
    return "\n".join(found)


def test_consent_is_on_record_with_the_notice_version_and_the_channel(app):
    user = joined(app)
    with db_of(app).sessions() as session:
        [record] = session.scalars(select(ConsentRecord)).all()
        assert (record.version, record.decision, record.channel) == (
            CONSENT_NOTICE_VERSION, "given", "webchat")
    shown = user.text_of(user.press(vi("Privacy")))
    assert NAME in shown and CONSENT_NOTICE_VERSION in shown and "webchat" in shown


def test_a_new_notice_version_asks_again_at_the_next_contact(app):
    user = joined(app)
    with db_of(app).transaction() as session:
        assert ask_consent_again(session, CONSENT_NOTICE_VERSION) == 0
        assert ask_consent_again(session, "2099-01") == 1
    assert vi("Do you agree?") in user.text_of(user.send("menu"))
    user.press(vi("Agree"))
    with db_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 2


def test_a_refusal_stores_nothing_but_the_answer(app):
    user = WebChatUser(app)
    user.send("xin chào")
    user.press(vi("Do not agree"))
    user.send("Tôi tên là Ka Xuyến")  # starts the consent question again; never stored
    assert "Xuyến" not in every_text_value(app)


def test_erasure_leaves_no_trace_and_the_figures_unchanged(app):
    user = joined(app)
    report_with_notes(user)
    with db_of(app).sessions() as session:
        totals = session.execute(select(func.sum(Report.total), func.sum(Report.women))).one()
    before = every_text_value(app)
    assert NAME in before and NOTE in before  # the refused number is never stored at all
    assert PHONE not in before
    user.send("xoa du lieu")
    answer = user.text_of(user.press(vi("Erase my data")))
    assert vi("Your data has been erased. Thank you for your work. If you write again, we will "
              "start from the beginning.") in answer
    after = every_text_value(app)
    for trace in (NAME, NOTE, PHONE, "Thị Hoa"):
        assert trace not in after, trace
    with db_of(app).sessions() as session:
        assert session.execute(select(func.sum(Report.total),
                                      func.sum(Report.women))).one() == totals
        assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 0
    # The same browser shows nothing of the old conversation.
    fresh = WebChatUser(app, client=user.client)
    fresh.after = 0
    history = fresh.text_of(fresh._deliver_and_read())
    assert NAME not in history and NOTE not in history and vi("Do you agree?") not in history


def test_logs_at_info_hold_no_message_text_name_or_number(app, caplog):
    caplog.set_level(logging.INFO)
    user = joined(app)
    report_with_notes(user)
    user.send("co mot chi bi chong danh, can giup do")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    for secret in (NAME, NOTE, PHONE, "chong danh", "Hoa"):
        assert secret not in logged, secret
    with db_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Identity)) == 1


def test_sign_out_gives_the_next_person_a_new_conversation(app):
    user = joined(app)
    assert user.client.post("/chat/api/signout", data="x").status_code == 415
    assert user.client.post("/chat/api/signout", json={}).status_code == 204
    nobody = user.client.get("/chat/api/messages?after=0").get_json()
    assert nobody["messages"] == []
    again = WebChatUser(app, client=user.client)
    assert vi("Do you agree?") in again.text_of(again.send("xin chào"))


def test_the_member_says_whether_photos_show_faces_and_silence_protects(app):
    from chat_helpers import png_bytes

    from storage.models import Media

    user = joined(app)
    user.press(vi("Report an activity"))
    for value in ("truyen thong", "hom nay", "ta lu 1", "30", "20", "10", "0", "tao hon"):
        user.send(value)
    user.photos(png_bytes(seed=4))
    user.press(vi("Done"))
    user.press(vi("No notes"))
    saved = user.text_of(user.press(vi("Send")))
    assert "BC-00001" in saved and vi("Menu") in user.buttons()
    with db_of(app).sessions() as session:
        assert session.scalar(select(Media.identifiable)) is True  # unanswered: protected
    user.press(vi("No faces"))
    with db_of(app).sessions() as session:
        assert session.scalar(select(Media.identifiable)) is False
    user.press(vi("Yes, faces can be seen"))
    with db_of(app).sessions() as session:
        assert session.scalar(select(Media.identifiable)) is True
