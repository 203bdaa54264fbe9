"""The console's dashboard, members, plan and campaign pages over HTTP, for every role, with
another area's data answered 404 by the query."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
import test_admin_web as web
from PIL import Image
from sqlalchemy import func, select, update
from test_admin_web import BAC_AI_VILLAGE, THUAN_BAC_VILLAGE, add_report, csrf, signed_in, vi

from bot.app import db_of
from bot.broadcaster import Broadcaster
from storage import broadcasts, reminders
from storage.completeness import PeriodDue
from storage.models import (
    Area,
    AuditLog,
    Identity,
    Indicator,
    IndicatorTarget,
    Media,
    Member,
    Outbox,
    Report,
    Team,
)
from storage.models_content import ContentItem, ContentVersion

app = web.app  # the same fixture: the console with one admin of each role
config = web.config  # and its configuration
ROLES = ("tinh", "bacai", "thuanbac", "xem", "baove")


def dated(app, village: str, when: date, **extra) -> int:
    report_id = add_report(app, village, **extra)
    with db_of(app).transaction() as session:
        session.execute(update(Report).where(Report.id == report_id)
                        .values(activity_date=when))
    return report_id


def member_of(app, report_id: int) -> int:
    with db_of(app).sessions() as session:
        return int(session.scalar(select(Report.member_id).where(Report.id == report_id)))


def area_id(app, code: str) -> int:
    with db_of(app).sessions() as session:
        return int(session.scalar(select(Area.id).where(Area.code == code)))


def actions_of(app, actor: str) -> list[str]:
    with db_of(app).sessions() as session:
        return list(session.scalars(select(AuditLog.action).where(AuditLog.actor == actor)
                                    .order_by(AuditLog.id)))


# --- dashboard -------------------------------------------------------------------------------


def test_progress_against_targets_per_area_for_each_role(app):
    dated(app, BAC_AI_VILLAGE, date(2025, 5, 1))
    dated(app, THUAN_BAC_VILLAGE, date(2025, 5, 2), name="Katơr Thị Lan")
    bac_ai, thuan_bac = area_id(app, "nt.bac-ai"), area_id(app, "nt.thuan-bac")
    with db_of(app).transaction() as session:
        indicator = session.scalar(select(Indicator).where(
            Indicator.code == "communication_teams"))
        session.add(IndicatorTarget(indicator_id=indicator.id, area_id=bac_ai, target=4))
        name = indicator.name
    period = "?from=2025-01-01&to=2025-12-31"
    province = signed_in(app, "tinh").get("/admin/" + period).text
    section = province.split('id="ind-communication_teams"')[1].split("</section>")[0]
    assert name in province and "Bác Ái" in section and "Thuận Bắc" in section
    # Bác Ái: 1 active team of 4 → 25 %; the province's target from the plan file is 77.
    assert "25 %" in section and ">77<" in section.replace(" ", "")
    district = signed_in(app, "bacai").get("/admin/" + period).text
    assert "Phước Đại" in district and "Thuận Bắc" not in district
    assert "Phước Kháng" not in district  # a commune of the other district
    viewer = signed_in(app, "xem").get("/admin/" + period)
    assert viewer.status_code == 200 and "Thuận Bắc" in viewer.text
    assert signed_in(app, "baove").get("/admin/").status_code == 302
    far = signed_in(app, "thuanbac").get("/admin/" + period).text
    assert "Bác Ái" not in far.split("<main>")[1]
    del thuan_bac


def test_completeness_per_team_for_each_deadlines_current_period(app, monkeypatch):
    from bot.admin import dashboard

    monkeypatch.setattr(dashboard, "_today", lambda: date(2025, 8, 1))
    dated(app, BAC_AI_VILLAGE, date(2025, 3, 1))
    dated(app, THUAN_BAC_VILLAGE, date(2024, 3, 1))  # last year: not this period
    page = signed_in(app, "tinh").get("/admin/").text
    annual = page.split("Báo cáo kết quả thực hiện Dự án 8 hàng năm")[1].split("</section>")[0]
    assert "10/09/2025" in annual and "2025" in annual
    assert "<strong>1/2</strong>" in annual
    rows = annual.split('<table class="teams">')[1]
    assert rows.index("Đá Mài Trên") < rows.index("Tà Lú 1")  # not reported first
    assert vi("not reported yet") in rows and vi("reported") in rows
    district = signed_in(app, "bacai").get("/admin/").text
    own = district.split("Báo cáo kết quả thực hiện Dự án 8 hàng năm")[1]
    assert "<strong>1/1</strong>" in own and "Đá Mài Trên" not in district


def png(side: int = 600) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side // 2), (163, 25, 91)).save(out, "PNG")
    return out.getvalue()


def test_latest_reports_show_thumbnails_only_to_who_may_see_the_photo(app, config):
    own = dated(app, BAC_AI_VILLAGE, date(2025, 5, 1), photo=True)
    other = dated(app, THUAN_BAC_VILLAGE, date(2025, 5, 1), photo=True)
    original = png()
    with db_of(app).sessions() as session:
        media = {r: session.scalar(select(Media.id).where(Media.report_id == r))
                 for r in (own, other)}
        for key in session.scalars(select(Media.storage_key)):
            (config.media_path / key).parent.mkdir(parents=True, exist_ok=True)
            (config.media_path / key).write_bytes(original)
    bacai = signed_in(app, "bacai")
    assert f"/admin/thumbs/{media[own]}" in bacai.get("/admin/").text
    thumb = bacai.get(f"/admin/thumbs/{media[own]}")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert thumb.data != original and max(Image.open(io.BytesIO(thumb.data)).size) <= 240
    assert thumb.headers["Cache-Control"] == "no-store"
    assert list((config.instance_path / "thumbs").rglob("*.jpg"))  # kept for the next time
    assert bacai.get(f"/admin/thumbs/{media[other]}").status_code == 404
    assert f"/admin/thumbs/{media[other]}" not in bacai.get("/admin/").text
    # A photo that may show a woman or child: not to a viewer, not even small.
    viewer = signed_in(app, "xem")
    assert viewer.get(f"/admin/thumbs/{media[own]}").status_code == 404
    assert "/admin/thumbs/" not in viewer.get("/admin/").text
    assert signed_in(app, "tinh").get(f"/admin/thumbs/{media[other]}").status_code == 200
    assert "photo.thumbnail" in actions_of(app, "admin:bacai")


# --- members ---------------------------------------------------------------------------------


def test_a_members_channels_and_whether_each_is_reachable(app):
    report = dated(app, BAC_AI_VILLAGE, date(2025, 5, 1))
    member = member_of(app, report)
    with db_of(app).transaction() as session:
        session.add(Identity(channel="zalo", external_id="z1", member_id=member,
                             consent="given", unreachable_reason="blocked the OA"))
        ident = session.scalar(select(Identity.id).where(Identity.channel == "webchat"))
        session.add(Outbox(identity_id=ident, channel="webchat", payload={"text": "x"},
                           status="failed", last_error="HTTP 500 from platform"))
    page = signed_in(app, "bacai").get(f"/admin/members/{member}")
    assert page.status_code == 200
    assert "webchat" in page.text and "zalo" in page.text
    assert "blocked the OA" in page.text and "HTTP 500 from platform" in page.text
    assert signed_in(app, "xem").get(f"/admin/members/{member}").status_code == 200
    assert signed_in(app, "thuanbac").get(f"/admin/members/{member}").status_code == 404
    assert signed_in(app, "baove").get(f"/admin/members/{member}").status_code == 404
    assert "member.view" in actions_of(app, "admin:bacai")


def test_officers_deactivate_members_of_their_area_who_then_get_no_broadcast_or_reminder(app):
    report = dated(app, BAC_AI_VILLAGE, date(2025, 5, 1))
    member = member_of(app, report)
    path = f"/admin/members/{member}/deactivate"
    far = signed_in(app, "thuanbac")
    assert far.post(path, data={"csrf_token": csrf(far, "/admin/members")}).status_code == 404
    viewer = signed_in(app, "xem")
    assert viewer.post(path, data={"csrf_token": csrf(viewer, "/admin/members")}
                       ).status_code == 403
    bacai = signed_in(app, "bacai")
    assert bacai.post(path).status_code == 400  # no CSRF token
    with db_of(app).sessions() as session:
        assert broadcasts.count_audience(session, broadcasts.Audience()).total == 1
    assert bacai.post(path, data={"csrf_token": csrf(bacai, f"/admin/members/{member}")}
                      ).status_code == 302
    assert "member.deactivate" in actions_of(app, "admin:bacai")
    assert vi("deactivated") in bacai.get("/admin/members").text
    due = PeriodDue(deadline_id=1, period="2099", start=date(2099, 1, 1), end=date(2099, 12, 31),
                    team_kind_ids=(), area_ids=())
    with db_of(app).sessions() as session:
        assert session.scalar(select(Member.deactivated_at).where(Member.id == member))
        assert broadcasts.count_audience(session, broadcasts.Audience()).total == 0
        assert [r for r in reminders.due_reminders(session, [due]) if r.member_id == member] == []
    token = csrf(bacai, f"/admin/members/{member}")
    assert bacai.post(f"/admin/members/{member}/activate",
                      data={"csrf_token": token}).status_code == 302
    with db_of(app).sessions() as session:
        assert broadcasts.count_audience(session, broadcasts.Audience()).total == 1
        assert [r for r in reminders.due_reminders(session, [due]) if r.member_id == member]


# --- the plan --------------------------------------------------------------------------------


def test_province_admins_enter_per_area_targets_others_read_their_own(app):
    bac_ai, thuan_bac = area_id(app, "nt.bac-ai"), area_id(app, "nt.thuan-bac")
    with db_of(app).sessions() as session:
        indicator = session.scalar(select(Indicator.id).where(
            Indicator.code == "communication_teams"))
    tinh = signed_in(app, "tinh")
    page = tinh.get("/admin/plan").text
    assert f'name="t-{indicator}-{bac_ai}"' in page
    assert "Báo cáo kết quả thực hiện Dự án 8 hàng năm" in page and "14, 3, 1" in page
    token = csrf(tinh, "/admin/plan")
    field = f"t-{indicator}-{bac_ai}"
    assert tinh.post("/admin/plan/targets", data={field: "40"}).status_code == 400  # no CSRF
    assert tinh.post("/admin/plan/targets", data={"csrf_token": token, field: "abc"}
                     ).status_code == 400
    assert tinh.post("/admin/plan/targets", data={"csrf_token": token, field: "40",
                                                  f"t-{indicator}-{thuan_bac}": "37"}
                     ).status_code == 302
    with db_of(app).sessions() as session:
        targets = dict(session.execute(select(IndicatorTarget.area_id, IndicatorTarget.target)
                                       .where(IndicatorTarget.indicator_id == indicator)).all())
        detail = session.scalars(select(AuditLog.detail).where(
            AuditLog.action == "plan.target")).all()
    assert targets[bac_ai] == 40 and targets[thuan_bac] == 37
    assert {"area_id": bac_ai, "old": None, "new": 40} in detail
    bacai = signed_in(app, "bacai")
    own = bacai.get("/admin/plan")
    assert own.status_code == 200 and ">40<" in own.text and "name=\"t-" not in own.text
    assert bacai.get(f"/admin/plan?area={thuan_bac}").status_code == 404
    assert bacai.post("/admin/plan/targets", data={"csrf_token": csrf(bacai, "/admin/plan"),
                                                   field: "1"}).status_code == 403
    assert signed_in(app, "xem").get("/admin/plan").status_code == 200
    assert signed_in(app, "baove").get("/admin/plan").status_code == 404
    # The dashboard's bar reads the entered target at once.
    assert ">40<" in bacai.get("/admin/?from=2025-01-01&to=2025-12-31").text.replace(" ", "")


# --- content and broadcasts ------------------------------------------------------------------


def new_item(client, title: str = "Phòng chống tảo hôn") -> int:
    token = csrf(client, "/admin/content/new")
    made = client.post("/admin/content/new", data={
        "csrf_token": token, "title": title, "text": "Tảo hôn gây hại cho trẻ em gái.",
        "topic": "harmful_customs", "tags": "tảo hôn, trẻ em"})
    assert made.status_code == 302, made.text[:500]
    return int(made.location.rstrip("/").rsplit("/", 1)[1])


def test_the_library_is_read_by_officers_and_written_by_the_province_in_versions(app):
    tinh = signed_in(app, "tinh")
    item = new_item(tinh)
    token = csrf(tinh, f"/admin/content/{item}/edit")
    assert tinh.post(f"/admin/content/{item}/edit", data={
        "csrf_token": token, "title": "Phòng chống tảo hôn (sửa lần hai)",
        "text": "Nội dung sửa lại."}).status_code == 302
    with db_of(app).sessions() as session:
        assert session.scalar(select(ContentItem.current_version)) == 2
        assert session.scalar(select(func.count()).select_from(ContentVersion)) == 2
    assert "sửa lần hai" in tinh.get(f"/admin/content/{item}").text
    old = tinh.get(f"/admin/content/{item}?version=1").text
    assert "Tảo hôn gây hại" in old and "sửa lần hai" not in old
    for who in ("bacai", "xem"):
        client = signed_in(app, who)
        assert "sửa lần hai" in client.get("/admin/content").text
        assert client.get("/admin/content/new").status_code == 403
    assert signed_in(app, "baove").get("/admin/content").status_code == 404
    assert tinh.post("/admin/content/new", data={"title": "x", "text": "y"}).status_code == 400
    assert "content.edit" in [a for a, in _audit(app)]


def _audit(app):
    with db_of(app).sessions() as session:
        return session.execute(select(AuditLog.action)).all()


def test_the_composer_counts_live_and_sends_to_the_audience_it_shows(app, config):
    dated(app, BAC_AI_VILLAGE, date(2025, 5, 1))
    dated(app, THUAN_BAC_VILLAGE, date(2025, 5, 1), name="Katơr Thị Lan")
    tinh = signed_in(app, "tinh")
    item = new_item(tinh)
    token = csrf(tinh, "/admin/broadcasts/new")
    assert tinh.post("/admin/broadcasts/count", data={"area": "nt.bac-ai"}).status_code == 400
    counted = tinh.post("/admin/broadcasts/count", data={"csrf_token": token,
                                                         "area": "nt.bac-ai"})
    assert counted.status_code == 200
    assert json.loads(counted.data) == {"total": 1, "by_channel": {"webchat": 1},
                                        "no_channel": 0}
    everyone = json.loads(tinh.post("/admin/broadcasts/count",
                                    data={"csrf_token": token}).data)
    assert everyone["total"] == 2
    wrong = tinh.post("/admin/broadcasts/count", data={"csrf_token": token, "area": "nt.xx"})
    assert wrong.status_code == 400 and "nt.xx" in json.loads(wrong.data)["error"]
    assert tinh.post("/admin/broadcasts/count", data={"csrf_token": token, "role": "boss"}
                     ).status_code == 400
    for who in ("bacai", "xem", "baove"):
        client = signed_in(app, who)
        for path in ("/admin/broadcasts", "/admin/broadcasts/new"):
            assert client.get(path).status_code == 404, (who, path)
    made = tinh.post("/admin/broadcasts/new", data={"csrf_token": token, "item": str(item),
                                                    "area": "nt.bac-ai", "role": "member"})
    assert made.status_code == 302
    bid = int(made.location.rstrip("/").rsplit("/", 1)[1])
    assert tinh.get(f"/admin/broadcasts/{bid}").status_code == 200
    assert signed_in(app, "bacai").get(f"/admin/broadcasts/{bid}/status").status_code == 404
    broadcaster = Broadcaster(config, db_of(app))
    while broadcaster.step():
        pass
    with db_of(app).transaction() as session:
        rows = list(session.scalars(select(Outbox).where(Outbox.broadcast_id == bid)))
        assert len(rows) == 1
        session.execute(update(Outbox).where(Outbox.broadcast_id == bid)
                        .values(status="sent"))
    status = json.loads(tinh.get(f"/admin/broadcasts/{bid}/status").data)
    assert status["percent"] == 100 and status["sent"] == 1 and status["state"] == "done"
    assert "broadcast.create" in actions_of(app, "admin:tinh")


def test_pause_resume_and_cancel_from_the_page(app):
    dated(app, BAC_AI_VILLAGE, date(2025, 5, 1))
    tinh = signed_in(app, "tinh")
    item = new_item(tinh)
    token = csrf(tinh, "/admin/broadcasts/new")
    made = tinh.post("/admin/broadcasts/new", data={"csrf_token": token, "item": str(item),
                                                    "send_at": "2099-01-01T08:00"})
    bid = int(made.location.rstrip("/").rsplit("/", 1)[1])
    assert tinh.post(f"/admin/broadcasts/{bid}/pause").status_code == 400  # no CSRF token
    for action, state in (("pause", "paused"), ("resume", "scheduled"), ("cancel", "cancelled")):
        assert tinh.post(f"/admin/broadcasts/{bid}/{action}", data={"csrf_token": token}
                         ).status_code == 302
        assert json.loads(tinh.get(f"/admin/broadcasts/{bid}/status").data)["state"] == state
    assert tinh.post(f"/admin/broadcasts/{bid}/resume", data={"csrf_token": token}
                     ).status_code == 409
    assert tinh.post("/admin/broadcasts/999/pause", data={"csrf_token": token}
                     ).status_code == 404
    actions = actions_of(app, "admin:tinh")
    assert {"broadcast.pause", "broadcast.resume", "broadcast.cancel"} <= set(actions)


@pytest.mark.parametrize("who", ROLES)
def test_every_new_page_answers_every_role(app, who):
    report = dated(app, BAC_AI_VILLAGE, date(2025, 5, 1))
    member = member_of(app, report)
    expected = {
        "/admin/plan": {"baove": 404},
        "/admin/content": {"baove": 404},
        "/admin/broadcasts": {"bacai": 404, "thuanbac": 404, "xem": 404, "baove": 404},
        f"/admin/members/{member}": {"thuanbac": 404, "baove": 404},
    }
    client = signed_in(app, who)
    for path, refused in expected.items():
        page = client.get(path)
        assert page.status_code == refused.get(who, 200), (who, path)
        if page.status_code == 200:
            assert page.headers["Cache-Control"] == "no-store"
    with db_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Team)) >= 1
