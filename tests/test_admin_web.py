"""The officers' web console over HTTP: sign-in, CSRF, throttling, area scoping, reviews."""

from __future__ import annotations

import functools
import re
from datetime import date

import app_fixtures
import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from bot.app import db_of
from messages_vi import _, render
from storage import people
from storage.members import ensure_village_team
from storage.models import (
    ActivityType,
    AdminUser,
    AuditLog,
    Identity,
    Media,
    Member,
    Outbox,
    Report,
    utcnow,
)
from storage.people import create_admin
from storage.reports import report_number
from storage.search import area_id_by_code

PASSWORD = "correct horse battery"
BAC_AI_VILLAGE = "nt.bac-ai.phuoc-dai.ta-lu-1"
THUAN_BAC_VILLAGE = "nt.thuan-bac.phuoc-khang.da-mai-tren"


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


# A real scrypt hash, computed once per password for the whole run, at a sixteenth of the
# product's work factor: scrypt costs a tenth of a second per hash and per sign-in by design,
# and the sign-ins of these modules' tests made most of their time. Signing in still checks the
# password against a real hash (its parameters travel in the hash); the product's own factor is
# what `duan8 admin create` stores, tested in test_cli.
TEST_HASH_METHOD = "scrypt:2048:8:1"


@functools.cache
def _hash_once(password: str) -> str:
    return generate_password_hash(password, method=TEST_HASH_METHOD)


@pytest.fixture
def app(started_app: Flask, monkeypatch: pytest.MonkeyPatch):
    """The module's app (conftest.module_app) on a database as after the first start, with one
    console account of each role."""
    monkeypatch.setattr(people, "generate_password_hash", _hash_once)
    application = started_app
    application.config["TESTING"] = True
    with db_of(application).transaction() as session:
        create_admin(session, "tinh", PASSWORD, role="province", area_code=None)
        create_admin(session, "bacai", PASSWORD, role="district", area_code="nt.bac-ai")
        create_admin(session, "thuanbac", PASSWORD, role="district", area_code="nt.thuan-bac")
        create_admin(session, "xem", PASSWORD, role="viewer", area_code=None)
        create_admin(session, "baove", PASSWORD, role="safeguarding", area_code="nt.bac-ai")
    return application


config = app_fixtures.config  # the app's own configuration


def add_report(app, village: str, *, total: int = 30, name: str = "Pinăng Thị Hoa",
               photo: bool = False) -> int:
    with db_of(app).transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session, village))
        member = Member(display_name=name, team_id=team.id, consent_at=utcnow())
        session.add(member)
        session.flush()
        session.add(Identity(channel="webchat", external_id=f"v{member.id}", member_id=member.id,
                             consent="given"))
        type_id = session.scalar(select(ActivityType.id).order_by(ActivityType.id))
        report = Report(number="tmp", member_id=member.id, team_id=team.id,
                        activity_type_id=type_id, activity_date=date(2026, 11, 20),
                        area_id=team.area_id, total=total, women=20, ethnic=10, children=5,
                        notes="ghi chú", channel="webchat")
        session.add(report)
        session.flush()
        report.number = report_number(report.id)
        if photo:
            session.add(Media(report_id=report.id, storage_key=f"ab/{report.id}.png",
                              content_type="image/png", size=10, sha256="x"))
        return report.id


def csrf(client, path: str) -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def signed_in(app, username: str):
    client = app.test_client()
    token = csrf(client, "/admin/login")
    response = client.post("/admin/login", data={"username": username, "password": PASSWORD,
                                                 "csrf_token": token})
    assert response.status_code == 302, response.text[:300]
    return client


def test_pages_need_a_signed_in_admin(app):
    client = app.test_client()
    for path in ("/admin/", "/admin/reports", "/admin/members", "/admin/cases", "/admin/audit"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login" in response.location


def test_sign_in_refuses_a_form_without_its_csrf_token(app):
    client = app.test_client()
    response = client.post("/admin/login", data={"username": "tinh", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_wrong_passwords_are_throttled_per_account(app):
    client = app.test_client()
    for _attempt in range(5):
        token = csrf(client, "/admin/login")
        assert client.post("/admin/login", data={"username": "tinh", "password": "nope",
                                                 "csrf_token": token}).status_code == 401
    token = csrf(client, "/admin/login")
    blocked = client.post("/admin/login", data={"username": "tinh", "password": PASSWORD,
                                                "csrf_token": token})
    assert blocked.status_code == 429
    assert vi("Too many failed attempts. Wait 15 minutes and try again.") in blocked.text


def test_pages_are_never_cached_and_not_framed(app):
    client = signed_in(app, "tinh")
    response = client.get("/admin/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert vi("Dashboard") in response.text


def test_a_district_officer_sees_only_their_district(app):
    own = add_report(app, BAC_AI_VILLAGE, photo=True)
    other = add_report(app, THUAN_BAC_VILLAGE, name="Katơr Thị Lan", photo=True)
    bacai = signed_in(app, "bacai")
    listing = bacai.get("/admin/reports").text
    assert report_number(own) in listing and report_number(other) not in listing
    assert bacai.get(f"/admin/reports/{own}").status_code == 200
    assert bacai.get(f"/admin/reports/{other}").status_code == 404
    assert bacai.get(f"/admin/photos/{other}").status_code == 404
    members = bacai.get("/admin/members").text
    assert "Pinăng Thị Hoa" in members and "Katơr Thị Lan" not in members
    # Typed without diacritics, the name is still found.
    assert "Pinăng Thị Hoa" in bacai.get("/admin/members?q=pinang thi").text
    province = signed_in(app, "tinh").get("/admin/reports").text
    assert report_number(own) in province and report_number(other) in province


def test_every_read_of_personal_data_is_audited(app):
    own = add_report(app, BAC_AI_VILLAGE)
    client = signed_in(app, "bacai")
    client.get("/admin/reports")
    client.get(f"/admin/reports/{own}")
    client.get("/admin/members")
    with db_of(app).sessions() as session:
        actions = set(session.scalars(select(AuditLog.action).where(
            AuditLog.actor == "admin:bacai")))
    assert {"report.list", "report.view", "member.list", "admin.login"} <= actions
    assert signed_in(app, "bacai").get("/admin/audit").status_code == 404
    assert "report.view" in signed_in(app, "tinh").get("/admin/audit").text


def test_verifying_and_returning_tell_the_member_in_chat(app):
    own = add_report(app, BAC_AI_VILLAGE)
    client = signed_in(app, "bacai")
    token = csrf(client, f"/admin/reports/{own}")
    assert client.post(f"/admin/reports/{own}/verify").status_code == 400  # no CSRF token
    assert client.post(f"/admin/reports/{own}/verify",
                       data={"csrf_token": token}).status_code == 302
    client.post(f"/admin/reports/{own}/return",
                data={"csrf_token": token, "reason": "Thiếu ảnh buổi sinh hoạt"})
    with db_of(app).sessions() as session:
        assert session.scalar(select(Report.status).where(Report.id == own)) == "returned"
        texts = [p["text"] for p in session.scalars(select(Outbox.payload).order_by(Outbox.id))]
    assert vi("Your report {number} was checked and confirmed. Thank you!",
              number=report_number(own)) in texts[0]
    assert "Thiếu ảnh buổi sinh hoạt" in texts[1]
    other = add_report(app, THUAN_BAC_VILLAGE)
    assert client.post(f"/admin/reports/{other}/verify",
                       data={"csrf_token": token}).status_code == 404
    viewer = signed_in(app, "xem")
    viewer_token = csrf(viewer, f"/admin/reports/{own}")
    assert viewer.post(f"/admin/reports/{own}/verify",
                       data={"csrf_token": viewer_token}).status_code == 403


def test_a_deactivated_admin_is_signed_out_at_once(app):
    client = signed_in(app, "bacai")
    assert client.get("/admin/reports").status_code == 200
    with db_of(app).transaction() as session:
        session.scalars(select(AdminUser).where(AdminUser.username == "bacai")).one().active = False
    assert client.get("/admin/reports").status_code == 302


def test_a_password_reset_ends_older_sessions(app):
    client = signed_in(app, "bacai")
    with db_of(app).transaction() as session:
        create_admin(session, "bacai", "another long password", role="district",
                     area_code="nt.bac-ai")
    assert client.get("/admin/reports").status_code == 302


def test_safeguarding_officers_see_cases_only(app):
    client = signed_in(app, "baove")
    assert client.get("/admin/reports").status_code == 404
    assert client.get("/admin/cases").status_code == 200
    assert signed_in(app, "bacai").get("/admin/cases").status_code == 404


def test_a_session_has_an_absolute_lifetime(app, monkeypatch):
    import time as real_time

    from bot.admin import auth

    client = signed_in(app, "tinh")
    start = real_time.time()
    monkeypatch.setattr(auth.time, "time", lambda: start + auth.SESSION_HOURS * 3600 + 1)
    assert client.get("/admin/").status_code == 302
    with db_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)) > 0


def test_a_disclosure_is_a_case_for_the_right_roles_only_and_never_a_report(app):
    from chat_helpers import WebChatUser

    from storage.members import create_invite

    with db_of(app).transaction() as session:
        team = ensure_village_team(session, area_id_by_code(session, BAC_AI_VILLAGE))
        code, _team = create_invite(session, team.code, role="member", days=30, max_uses=5,
                                    actor="test", now=utcnow())
    user = WebChatUser(app)
    user.send("xin chào")
    user.press(vi("Agree"))
    user.send(code)
    user.send("Pinăng Thị Hoa")
    user.send("co mot chi bi chong danh, can giup do")
    disclosure = "bi chong danh"
    with db_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 0
    for who, sees in (("tinh", True), ("baove", True), ("bacai", False), ("xem", False)):
        client = signed_in(app, who)
        cases_page = client.get("/admin/cases")
        assert (cases_page.status_code == 200 and disclosure in cases_page.text) == sees, who
        for path in ("/admin/", "/admin/reports", "/admin/members"):
            page = client.get(path)  # a safeguarding officer is sent to the cases instead
            assert page.status_code in (200, 302, 404) and disclosure not in page.text, (who, path)
    far = signed_in(app, "thuanbac")
    assert far.get("/admin/cases").status_code == 404


def test_officers_create_and_revoke_invites_for_their_own_teams_only(app):
    add_report(app, BAC_AI_VILLAGE)
    other_report = add_report(app, THUAN_BAC_VILLAGE)
    del other_report
    client = signed_in(app, "bacai")
    page = client.get("/admin/invites")
    assert "Tà Lú 1" in page.text and "Đá Mài Trên" not in page.text
    token = csrf(client, "/admin/invites")
    with db_of(app).sessions() as session:
        from storage.models import Team

        own = session.scalar(select(Team.code).where(Team.name.like("%Tà Lú 1")))
        other = session.scalar(select(Team.code).where(Team.name.like("%Đá Mài Trên")))
    made = client.post("/admin/invites", data={"csrf_token": token, "team": own,
                                               "role": "leader", "days": 7, "max_uses": 1})
    code = re.search(r"<strong>([A-Z0-9]{8})</strong>", made.text).group(1)
    assert client.post("/admin/invites", data={"csrf_token": token, "team": other,
                                               "role": "leader", "days": 7,
                                               "max_uses": 1}).status_code == 404
    from storage.models import InviteCode

    with db_of(app).sessions() as session:
        invite = session.scalar(select(InviteCode).where(InviteCode.code == code))
        assert invite.role == "leader" and invite.max_uses == 1
    far = signed_in(app, "thuanbac")
    far_token = csrf(far, "/admin/invites")
    assert far.post(f"/admin/invites/{invite.id}/revoke",
                    data={"csrf_token": far_token}).status_code == 404
    assert client.post(f"/admin/invites/{invite.id}/revoke",
                       data={"csrf_token": token}).status_code == 302
    with db_of(app).sessions() as session:
        assert session.scalar(select(InviteCode.revoked_at).where(
            InviteCode.code == code)) is not None


def _export(client, **fields):
    token = csrf(client, "/admin/export")
    return client.post("/admin/export", data={"csrf_token": token, **fields})


def test_officers_download_the_workbook_and_csv_of_their_own_area_only(app):
    import io

    from openpyxl import load_workbook

    bac_ai = add_report(app, BAC_AI_VILLAGE, total=31)
    add_report(app, THUAN_BAC_VILLAGE, total=47)
    with db_of(app).sessions() as session:
        thuan_bac_id = area_id_by_code(session, "nt.thuan-bac")
        bac_ai_id = area_id_by_code(session, "nt.bac-ai")
        number = session.get(Report, bac_ai).number

    province = signed_in(app, "tinh")
    book = _export(province, period="year", year="2026", fmt="xlsx")
    assert book.status_code == 200
    assert book.headers["Cache-Control"] == "no-store"
    assert "attachment" in book.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(book.data), read_only=True)
    reports = workbook[vi("Reports")]
    totals = sorted(row[8] for row in reports.iter_rows(min_row=2, values_only=True))
    assert totals == [31, 47]

    district = signed_in(app, "bacai")
    csv_text = _export(district, period="range", start="2026-11-01", end="2026-11-30",
                       fmt="csv").data.decode("utf-8-sig")
    assert number in csv_text and ",31," in csv_text and ",47," not in csv_text
    assert "Pinăng" not in csv_text and "ghi chú" not in csv_text  # no names, no notes
    # Their own district by id is fine; another district is not found, in any format.
    assert _export(district, period="year", year="2026", area=str(bac_ai_id),
                   fmt="csv").status_code == 200
    for fmt in ("csv", "xlsx"):
        assert _export(district, period="year", year="2026", area=str(thuan_bac_id),
                       fmt=fmt).status_code == 404
    assert _export(district, period="year", year="2026", area="999999999",
                   fmt="csv").status_code == 404

    with db_of(app).sessions() as session:
        actors = set(session.scalars(select(AuditLog.actor).where(
            AuditLog.action.like("%export%"))))
    assert {"admin:tinh", "admin:bacai"} <= actors


def test_export_refuses_bad_periods_forged_posts_and_safeguarding_officers(app):
    district = signed_in(app, "bacai")
    assert district.post("/admin/export", data={"period": "year", "year": "2026"}
                         ).status_code == 400
    for fields in ({"period": "range", "start": "2026-11-30", "end": "2026-11-01"},
                   {"period": "range", "start": "2020-01-01", "end": "2026-11-01"},
                   {"period": "range", "start": "30/11/2026", "end": "x"},
                   {"period": "year"}, {"period": "decade", "year": "2026"},
                   {"period": "year", "year": "2026", "fmt": "pdf"},
                   {"period": "year", "year": "2026", "area": "-3"}):
        response = _export(district, **fields)
        assert response.status_code == 422, fields
        assert vi("Export") in response.text
    safeguarding = signed_in(app, "baove")
    assert safeguarding.get("/admin/export").status_code == 404
