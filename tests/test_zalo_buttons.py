"""Zalo OA query buttons against the fake OA API on loopback.

A reply's buttons go under its numbered text as `oa.query.hide` buttons, a tap comes back as a
text carrying the payload, and buttons that do not fit Zalo's limits, or that Zalo refuses,
leave the numbered list to do the work alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fakes.zalo_api import CS_PATH
from sqlalchemy import select
from zalo_helpers import USER, Harness, payload, running, vi

from bot.channels.port import ChannelPort
from bot.channels.zalo_oa import inbound as zalo
from bot.channels.zalo_oa.buttons import PREFIX, tapped
from bot.channels.zalo_oa.media import compose
from storage import outbox
from storage.models import Identity, InboundEvent, utcnow


@pytest.fixture
def zh(started_db_url: str, tmp_path: Path) -> Iterator[Harness]:
    """The app against a fake OA API, on the database under test."""
    with running(started_db_url, tmp_path) as harness:
        yield harness


def _reply(zh, buttons: list[dict], user: str = USER) -> int:
    """A reply with these buttons to a consenting member who wrote a minute ago."""
    with zh.db.transaction() as session:
        identity = session.scalar(select(Identity).where(Identity.external_id == user))
        if identity is None:
            identity = Identity(channel="zalo", external_id=user, consent="given",
                                last_inbound_at=utcnow() - timedelta(minutes=1))
            session.add(identity)
            session.flush()
        return outbox.enqueue(session, identity.id, "zalo",
                              {"text": "Chọn một:", "buttons": buttons},
                              priority=outbox.PRIORITY_REPLY, now=utcnow())


def test_a_reply_with_buttons_carries_them_under_the_numbered_text(zh):
    first = zh.say("xin chao")
    message = zh.fake.sent(USER)[-1].params["message"]
    assert f"1. {vi('Agree')}" in message["text"] and f"2. {vi('Do not agree')}" in message["text"]
    assert message["quote_message_id"] == first["message"]["msg_id"]
    shown = zalo.shown_buttons(ChannelPort(zh.db), USER)  # typing "1" keeps working
    assert [c["label"] for c in shown] == [vi("Agree"), vi("Do not agree")]
    assert message["attachment"] == {"type": "template", "payload": {"buttons": [
        {"title": c["label"], "type": "oa.query.hide", "payload": PREFIX + c["payload"]}
        for c in shown]}}


def test_a_tapped_button_is_handled_as_its_payload(zh):
    zh.say("xin chao")
    tap = zh.event("user_send_text_query_button")
    # The recorded tap carries what the first button of the consent prompt was sent with.
    assert tap["message"]["text"] == zh.fake.sent_buttons(USER)[-1][0]["payload"]
    incoming = zalo.to_incoming(tap)
    assert incoming is not None and incoming.payload == "consent.ask:yes" and incoming.text == ""
    assert zh.post(tap).status_code == 200
    zh.send_all()
    with zh.db.sessions() as session:
        assert session.scalar(select(Identity.consent)) == "given"
        assert tap["message"]["msg_id"] in set(session.scalars(select(InboundEvent.event_id)))
    answer = zh.fake.sent(USER)[-1].params["message"]
    assert vi("Thank you. Now let us find your team.") in answer["text"]
    assert answer["quote_message_id"] == tap["message"]["msg_id"]


def test_only_our_own_prefix_makes_a_tap():
    assert tapped(f" {PREFIX}cmd:menu ") == "cmd:menu"
    assert tapped("xin chao") is None and tapped("1") is None
    assert tapped(PREFIX) is None
    assert tapped(PREFIX + "x" * 201) is None  # longer than any payload we send
    typed = payload("user_send_text")
    assert zalo.to_incoming(typed).text == "xin chao"


def test_buttons_beyond_zalos_limits_leave_the_numbered_list_alone(zh):
    five = [{"label": f"Lựa chọn {n}", "payload": f"pick:{n}"} for n in range(1, 6)]
    six = [*five, {"label": "Lựa chọn 6", "payload": "pick:6"}]
    # 21 characters: over ChatbotX's 20, the strictest reading of Zalo's title limit.
    long_title = [{"label": "Truyền thông sân khấu", "payload": "a"},
                  {"label": "ngắn", "payload": "b"}]
    long_payload = [{"label": "dài", "payload": "p" * 201}]
    for buttons in (five, six, long_title, long_payload):
        _reply(zh, buttons)
    zh.send_all()
    sent = zh.fake.sent(USER)
    assert len(sent) == 4
    assert [len(b) for b in zh.fake.sent_buttons(USER)] == [5, 0, 0, 0]
    assert "6. Lựa chọn 6" in sent[1].params["message"]["text"]
    assert "attachment" not in sent[1].params["message"]
    assert "1. Truyền thông sân khấu" in sent[2].params["message"]["text"]
    assert zh.fake.calls_to(CS_PATH) and all(c.answer.get("error") == 0
                                             for c in zh.fake.calls_to(CS_PATH))
    assert [c["payload"] for c in zalo.shown_buttons(ChannelPort(zh.db), USER)] == ["p" * 201]


def test_refused_buttons_still_deliver_the_numbered_text_with_its_quote(zh):
    zh.fake.fail_next(CS_PATH, "error", code=-201, message="Parameter is invalid")
    first = zh.say("xin chao")
    calls = zh.fake.calls_to(CS_PATH)
    assert len(calls) == 2 and "attachment" in calls[0].params["message"]
    retry = calls[1].params["message"]
    assert "attachment" not in retry and f"1. {vi('Agree')}" in retry["text"]
    assert retry["quote_message_id"] == first["message"]["msg_id"]
    zh.say("1")
    with zh.db.sessions() as session:
        assert session.scalar(select(Identity.consent)) == "given"


def test_photos_keep_to_the_numbered_list_and_number_buttons_still_get_a_button():
    buttons = [{"label": "Tiếp", "payload": "next"}]
    with_photo = compose({"text": "Tờ rơi", "media": [7], "buttons": buttons})
    assert all(part.buttons == () for part in with_photo.parts)
    assert with_photo.choices == [{"label": "Tiếp", "payload": "next"}]
    # A count question is answered by typing a number, so "0" is not numbered; tapping is safe.
    count = compose({"text": "Bao nhiêu?", "buttons": [{"label": "0", "payload": "n:0"}]})
    assert count.choices == []
    assert count.parts[-1].buttons == ({"title": "0", "type": "oa.query.hide",
                                        "payload": f"{PREFIX}n:0"},)
