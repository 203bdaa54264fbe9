"""Nothing a member gave is lost without asking: cancel, erase, unusual totals, photos, and the
question a member answers after a menu. Every case goes through the web chat API and the worker,
the path a platform message takes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from chat_helpers import png_bytes
from sqlalchemy import func, select, update
from test_conversation import app, count, joined_by_code, reach_step, state_of, vi  # noqa: F401

from bot.app import config_of, db_of
from bot.config import load_config
from bot.dispatcher import Dispatcher, Incoming, IncomingPhoto
from storage.models import Media, Report, utcnow
from storage.retention import RetentionPolicy, prune


def media_files(app) -> list[Path]:  # noqa: F811
    root = config_of(app).media_path
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def report_row(app) -> Report | None:  # noqa: F811
    with db_of(app).sessions() as session:
        return session.scalar(select(Report))


# --- "huy" and "xoa du lieu" -----------------------------------------------------------------


@pytest.mark.parametrize("word", ["huy", "Hủy", "/cancel"])
def test_cancel_mid_report_asks_before_the_draft_goes(app, word):  # noqa: F811
    user = reach_step(app, "women")
    asked = user.text_of(user.send(word))
    assert vi("Cancel this report? What you entered will be deleted.") in asked
    assert "30" in asked  # the member sees what would be thrown away
    assert user.buttons() == [vi("Cancel the report"), vi("Keep it")]
    assert state_of(app, user).draft["total"] == 30
    # "Giữ lại": the draft stays and the question it stopped at comes back.
    kept = user.text_of(user.press(vi("Keep it")))
    assert vi("Of them, how many women and girls?") in kept
    user.send("10")
    assert state_of(app, user).draft["women"] == 10
    # Asked again and confirmed: now it goes.
    user.send(word)
    assert vi("Report cancelled.") in user.text_of(user.press(vi("Cancel the report")))
    state = state_of(app, user)
    assert (state.flow, state.draft) == ("", {})


def test_cancel_on_the_summary_asks_too(app):  # noqa: F811
    user = reach_step(app, "notes")
    user.press(vi("No notes"))
    user.press(vi("Cancel"))
    assert vi("Cancel this report? What you entered will be deleted.") in user.last_text()
    user.press(vi("Keep it"))
    assert vi("Please check your report:") in user.last_text()
    assert "BC-00001" in user.text_of(user.press(vi("Send")))


def test_cancel_with_nothing_in_progress_says_so(app):  # noqa: F811
    user = joined_by_code(app)
    assert vi("Nothing to cancel.") in user.text_of(user.send("huy"))


def test_erase_then_keep_leaves_the_draft_where_it_was(app):  # noqa: F811
    user = reach_step(app, "topic")
    asked = user.text_of(user.send("xoa du lieu"))
    assert vi("Erase my data") in user.buttons() and vi("Keep my data") in user.buttons()
    assert asked
    kept = user.text_of(user.press(vi("Keep my data")))
    assert vi("What was the topic? Choose one or type it.") in kept
    state = state_of(app, user)
    assert state.flow == "report" and state.draft["total"] == 30
    user.send("binh dang gioi")
    assert state_of(app, user).draft["topic"]["name"] == "Bình đẳng giới"


# --- 0 people, or more than a village activity holds ------------------------------------------


@pytest.mark.parametrize("total, why", [
    ("0", "No one took part?"),
    ("800", "{count} people is more than a village activity usually holds ({limit})."),
])
def test_an_unusual_total_is_asked_about_then_saved_as_given(app, total, why):  # noqa: F811
    user = reach_step(app, "total")
    asked = user.text_of(user.send(total))
    assert vi(why, count=int(total), limit=500) in asked
    assert vi("Are you sure? Participants: {count}", count=int(total)) in asked
    assert "Bạn chắc chứ?" in asked
    assert user.buttons() == [vi("Yes, {count} people", count=int(total)), vi("Type it again")]
    assert "total" not in state_of(app, user).draft  # nothing taken before the answer
    user.press(vi("Yes, {count} people", count=int(total)))
    assert vi("Of them, how many women and girls?") in user.last_text()
    for answer in ("0", "0", "0", "binh dang gioi"):
        user.send(answer)
    user.press(vi("Done"))
    user.press(vi("No notes"))
    # Confirmed once: the summary's Send saves without asking again.
    assert "BC-00001" in user.text_of(user.press(vi("Send")))
    assert report_row(app).total == int(total)


def test_type_it_again_takes_a_new_total(app):  # noqa: F811
    user = reach_step(app, "total")
    user.send("3000")
    user.press(vi("Type it again"))
    assert vi("How many people took part in total?") in user.last_text()
    user.send("30")
    assert state_of(app, user).draft["total"] == 30


def test_a_number_typed_at_are_you_sure_is_the_corrected_total(app):  # noqa: F811
    user = reach_step(app, "total")
    user.send("600")
    user.send("60")
    draft = state_of(app, user).draft
    assert draft["total"] == 60 and "unsure_total" not in draft
    assert vi("Of them, how many women and girls?") in user.last_text()


def test_a_usual_total_is_not_asked_about(app):  # noqa: F811
    user = reach_step(app, "total")
    assert vi("Of them, how many women and girls?") in user.text_of(user.send("500"))


def test_the_quick_reports_confirmation_asks_about_an_unusual_total(app):  # noqa: F811
    user = joined_by_code(app)
    user.send("truyen thong hom nay ta lu 1, 0 nguoi")
    for answer in ("0", "0", "0", "binh dang gioi"):
        user.send(answer)
    user.press(vi("Done"))
    user.press(vi("No notes"))
    asked = user.text_of(user.press(vi("Send")))
    assert vi("No one took part?") in asked and report_row(app) is None
    # "Nhập lại" from the summary: the new total, then the summary again.
    user.press(vi("Type it again"))
    user.send("25")
    assert vi("Please check your report:") in user.last_text()
    assert "BC-00001" in user.text_of(user.press(vi("Send")))
    assert report_row(app).total == 25


def test_the_bound_is_a_setting(tmp_path, monkeypatch):
    config = load_config({"MAX_PARTICIPANTS": "2000", "LOOSE_PHOTO_MINUTES": "0",
                          "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
                         instance_path=tmp_path)
    assert (config.max_participants, config.retention.loose_photo_minutes) == (2000, 0)
    assert load_config({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
                       instance_path=tmp_path).max_participants == 500
    from bot.config import ConfigError
    with pytest.raises(ConfigError, match="MAX_PARTICIPANTS"):
        load_config({"MAX_PARTICIPANTS": "lots", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
                    instance_path=tmp_path)


# --- photos ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"this is not a picture at all", b"\x89PNG\r\n\x1a\nbroken"])
def test_a_file_that_is_not_a_picture_leaves_nothing_behind(app, data):  # noqa: F811
    user = reach_step(app, "photos")
    answer = user.text_of(user.photos(data))
    assert vi("I could not read that file as a photo. Send a JPEG or PNG picture.") in answer
    assert count(app, Media) == 0 and media_files(app) == []


def test_a_photo_too_large_leaves_nothing_behind(app):  # noqa: F811
    user = reach_step(app, "photos")
    user.photos(png_bytes(user.max_photo() + 10))
    assert count(app, Media) == 0 and media_files(app) == []
    # Refused at the dispatcher too, where a platform hands over the bytes.
    dispatcher = Dispatcher(config_of(app), db_of(app))
    big = png_bytes(user.max_photo() + 10)
    with db_of(app).sessions() as session:
        from storage.models import Identity
        external_id = session.scalar(select(Identity.external_id))
    dispatcher.dispatch(Incoming(channel="webchat", external_id=external_id, event_id="big-1",
                                 photos=(IncomingPhoto(big, "image/png"),)))
    assert count(app, Media) == 0 and media_files(app) == []


def test_photos_sent_before_a_report_are_offered_to_it(app):  # noqa: F811
    user = joined_by_code(app)
    kept = user.text_of(user.photos(png_bytes(), png_bytes(seed=1)))
    assert vi("I keep {count} photo(s) for {minutes} minutes. Start a report to attach them; "
              "otherwise they are deleted.", count=2, minutes=30) in kept
    user.press(vi("Report an activity"))
    offer = vi("Attach the {count} photo(s) you just sent to this report?", count=2)
    assert offer == "Gắn 2 ảnh vừa gửi vào báo cáo này?"
    assert offer in user.text_of(user.seen[-2:])
    # The question of the report is the last thing shown: a typed answer goes to it.
    assert vi("What activity are you reporting?") in user.last_text()
    attached = user.text_of(user.press(vi("Attach the photos")))
    assert vi("{count} photo(s) attached to this report.", count=2) in attached
    assert vi("What activity are you reporting?") in user.last_text()
    assert len(state_of(app, user).draft["media"]) == 2
    for answer in ("truyen thong", "hom nay", "ta lu 1", "30", "10", "10", "0", "binh dang gioi"):
        user.send(answer)
    user.press(vi("Done"))
    user.press(vi("No notes"))
    user.press(vi("Send"))
    with db_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Media).where(
            Media.report_id.is_not(None))) == 2


def test_photos_sent_before_a_quick_report_are_offered_and_can_be_declined(app):  # noqa: F811
    user = joined_by_code(app)
    user.photos(png_bytes())
    user.send("truyen thong hom nay ta lu 1, 30 nguoi, 20 nu")
    assert vi("Attach the {count} photo(s) you just sent to this report?", count=1) in \
        user.text_of(user.seen[-3:])
    user.press(vi("Do not attach"))
    assert count(app, Media) == 0 and media_files(app) == []
    assert vi("How many are ethnic-minority people?") in user.last_text()


def test_photos_not_claimed_in_time_are_not_offered_and_are_deleted(app):  # noqa: F811
    user = joined_by_code(app)
    user.photos(png_bytes())
    assert count(app, Media) == 1
    with db_of(app).transaction() as session:
        from storage.models import ConversationState
        state = session.scalar(select(ConversationState))
        loose = dict(state.draft["loose_photos"])
        loose["at"] = (utcnow() - timedelta(minutes=31)).isoformat()
        session.execute(update(ConversationState).values(draft={"loose_photos": loose}))
    answer = user.text_of(user.press(vi("Report an activity")))
    assert "Gắn" not in answer and vi("What activity are you reporting?") in answer
    assert count(app, Media) == 0 and media_files(app) == []


def test_the_retention_job_deletes_expired_unattached_photos_only(app):  # noqa: F811
    member = reach_step(app, "photos")
    member.photos(png_bytes(seed=7))  # in a draft: kept however old
    in_draft = state_of(app, member).draft["media"]
    loner = joined_by_code(app)  # a second member, in a web chat of their own
    loner.photos(png_bytes(seed=8))  # sent before any report, never claimed
    assert count(app, Media) == 2
    config = config_of(app)
    with db_of(app).transaction() as session:
        session.execute(update(Media).values(created_at=utcnow() - timedelta(hours=2)))
        pruned = prune(session, RetentionPolicy(), config.media_path, utcnow())
    assert pruned.photos == 1
    with db_of(app).sessions() as session:
        left = session.scalars(select(Media.id)).all()
    assert left == in_draft and len(in_draft) == 1
    assert len(media_files(app)) == 1


def test_when_nothing_is_to_be_kept_photos_before_a_report_are_not_stored(
        config, started_db_url):
    from dataclasses import replace

    from bot.app import create_app
    from bot.startup import prepare_database
    config = replace(config, retention=RetentionPolicy(loose_photo_minutes=0))
    application = create_app(config)
    prepare_database(config, db_of(application))
    try:
        user = joined_by_code(application)
        answer = user.text_of(user.photos(png_bytes()))
        assert vi("To send photos, start a report first.") in answer
        assert count(application, Media) == 0 and media_files(application) == []
    finally:
        db_of(application).dispose()


# --- a menu or help mid-report ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["menu", "tro giup", "quyen rieng tu", "bao cao cua toi"])
def test_after_a_menu_mid_report_the_pending_question_is_asked_again(app, command):  # noqa: F811
    user = reach_step(app, "ethnic")
    shown = user.text_of(user.send(command))
    assert vi("Your report is not finished. The question waiting for your answer:") in shown
    # The last thing on screen is the question the next answer goes to.
    assert user.last_text().endswith(vi("How many are ethnic-minority people?"))
    user.send("7")
    assert state_of(app, user).draft["ethnic"] == 7


def test_a_menu_with_nothing_in_progress_is_just_the_menu(app):  # noqa: F811
    user = joined_by_code(app)
    shown = user.text_of(user.send("menu"))
    assert vi("Your report is not finished. The question waiting for your answer:") not in shown


def test_a_quick_report_in_a_photos_caption_starts_and_is_offered_them(app):  # noqa: F811
    import io
    import uuid

    user = joined_by_code(app)
    response = user.client.post("/chat/api/photos", data={
        "id": uuid.uuid4().hex, "text": "truyen thong hom nay ta lu 1, 30 nguoi, 20 nu",
        "photo": [(io.BytesIO(png_bytes(seed=3)), "p.png")]},
        content_type="multipart/form-data")
    assert response.status_code == 202
    answer = user.text_of(user._deliver_and_read())
    assert vi("Attach the {count} photo(s) you just sent to this report?", count=1) in answer
    assert vi("I understood:") in answer
    user.press(vi("Attach the photos"))
    draft = state_of(app, user).draft
    assert len(draft["media"]) == 1 and draft["total"] == 30
