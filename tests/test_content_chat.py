"""Campaign material in the chat: the item arrives with its buttons, and "Tài liệu" browses."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select
from test_conversation import app, config, joined_by_code, vi  # noqa: F401  (the fixtures)

from bot.app import db_of
from bot.broadcaster import Broadcaster
from bot.config import Config
from bot.quiet_hours import QuietHours
from storage import broadcasts
from storage import content as library
from storage.broadcasts import Audience
from storage.models import Report


def add(app, title: str, topic: str | None, village: bool = True) -> int:  # noqa: F811
    with db_of(app).transaction() as session:
        return library.add_item(session, title=title, text=f"Nội dung {title}.",
                                topic_code=topic, use_in_village=village)


def test_a_broadcast_arrives_and_its_buttons_count(app, config: Config):  # noqa: F811
    user = joined_by_code(app)
    item = add(app, "Chấm dứt tảo hôn", "harmful_customs")
    db = db_of(app)
    with db.transaction() as session:
        bid = broadcasts.create_broadcast(session, item, Audience(areas=("nt.bac-ai",)))
    # Not a test of quiet hours: outside them, whatever the time of day the suite runs.
    awake = dataclasses.replace(config, quiet_hours=QuietHours.parse("off"))
    assert Broadcaster(awake, db).step()
    arrived = user.text_of(user.send("menu") + user._deliver_and_read())
    assert "Chấm dứt tảo hôn" in arrived and "Nội dung Chấm dứt tảo hôn." in arrived
    (message,) = [m for m in user.seen if "Chấm dứt tảo hôn" in m["text"]]
    assert [b["label"] for b in message["buttons"]] == [vi("Received"), vi("Used in my village")]
    assert vi("Thank you, noted that you received it.") in user.text_of(
        user.press(vi("Received")))
    assert vi("You already told us you received it.") in user.text_of(
        user.press(vi("Received")))
    assert vi("How many people did it reach? Type a number.") in user.text_of(
        user.press(vi("Used in my village")))
    assert vi("Please type a number of people from 1 to {limit}.", limit=100_000) in \
        user.text_of(user.send("0"))
    assert vi("Thank you! Noted: used in the village, {people} people reached.",
              people=25) in user.text_of(user.send("25 nguoi"))
    with db.sessions() as session:
        status = broadcasts.broadcast_status(session, bid)
        report = session.scalars(select(Report)).one()
    assert (status.acknowledged, status.used, status.people_reached) == (1, 1, 25)
    assert report.total == 25 and "Chấm dứt tảo hôn" in report.notes


def test_a_number_after_the_question_was_dropped_is_not_taken_as_people(app):  # noqa: F811
    user = joined_by_code(app)
    add(app, "Bình đẳng giới", "gender_equality")
    user.send("tai lieu")
    user.press("Bình đẳng giới")
    user.press(vi("Used in my village"))
    user.send("menu")
    assert vi("Thank you! Noted: used in the village, {people} people reached.",
              people=3) not in user.text_of(user.send("3"))


@pytest.mark.parametrize("typed", ["Tài liệu", "tai lieu", "TAI LIEU"])
def test_tai_lieu_browses_by_topic_and_sends_an_item_again(app, typed):  # noqa: F811
    user = joined_by_code(app)
    assert vi("The library has no material yet.") in user.text_of(user.send(typed))
    add(app, "Phòng chống mua bán người", "trafficking")
    for n in range(6):
        add(app, f"Bình đẳng {n}", "gender_equality", village=False)
    shelves = user.send(typed)
    assert vi("Campaign material. Choose a topic:") in user.text_of(shelves)
    topics = user.buttons()
    assert "Xóa bỏ định kiến và khuôn mẫu giới" not in topics  # no items there
    assert len(topics) == 2
    equality = next(t for t in topics if "bình đẳng giới" in t.lower())
    listed = user.press(equality)
    assert vi("Choose the material you want:") in user.text_of(listed)
    assert user.buttons()[-1] == vi("More") and len(user.buttons()) == 5
    user.press(vi("More"))
    assert user.buttons() == ["Bình đẳng 1", "Bình đẳng 0"]
    again = user.text_of(user.press("Bình đẳng 0"))
    assert "Nội dung Bình đẳng 0." in again
    assert user.buttons() == [vi("Received")]  # not meant for the village: no second button


def test_many_topics_are_shown_four_at_a_time_and_a_report_in_progress_is_asked_again(
        app):  # noqa: F811
    from test_conversation import reach_step

    topics = ["gender_stereotypes", "harmful_customs", "domestic_violence", "trafficking",
              "sexual_abuse", "unsafe_migration"]
    for n, topic in enumerate(topics):
        add(app, f"Tài liệu {n}", topic)
    user = reach_step(app, "total")
    user.send("tai lieu")
    first = user.buttons()
    assert len(first) == 5 and first[-1] == vi("More")
    # The report waiting is named again, below the library.
    assert user.last_text().endswith(vi("How many people took part in total?"))
    user.press(vi("More"))
    second = [m for m in user.seen if m["buttons"] and vi("Back to the first choices") in
              [b["label"] for b in m["buttons"]]][-1]
    shown = [b["label"] for b in second["buttons"]][:-1]
    assert len(shown) == 2 and not set(shown) & set(first)
    user.send("30")
    assert vi("Of them, how many women and girls?") in user.last_text()
