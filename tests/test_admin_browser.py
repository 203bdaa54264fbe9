"""The officers' console in a real headless Chromium: sign in, read, verify a report."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from bot.app import create_app, db_of
from bot.config import Config
from bot.startup import prepare_database
from messages_vi import _, render
from storage.models import Outbox, Report
from storage.people import create_admin

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    not CHROMIUM and not os.environ.get("DUAN8_REQUIRE_BROWSER"),
    reason="no Chromium on this machine (CI installs it)",
)
# Screenshots of each page are kept here for a person to look at after the run.
ARTIFACTS = Path(os.environ.get("DUAN8_ARTIFACTS", "test-artifacts"))


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


@pytest.fixture
def server(config: Config) -> Iterator[tuple[str, object]]:
    app = create_app(config)
    db = db_of(app)
    prepare_database(config, db)
    with db.transaction() as session:
        create_admin(session, "bacai", "correct horse battery", role="district",
                     area_code="nt.bac-ai")
    from test_admin_web import BAC_AI_VILLAGE, add_report

    add_report(app, BAC_AI_VILLAGE)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", app
    http.shutdown()
    db.dispose()


def test_an_officer_signs_in_reads_the_dashboard_and_verifies_a_report(server):
    assert CHROMIUM, "DUAN8_REQUIRE_BROWSER is set but Chromium is missing"
    from playwright.sync_api import expect, sync_playwright

    base, app = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"])
        for width, height, name in ((1280, 900, "pc"), (360, 740, "phone")):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{base}/admin/")
            page.fill("input[name=username]", "bacai")
            page.fill("input[name=password]", "correct horse battery")
            page.get_by_role("button", name=vi("Sign in")).click()
            expect(page.get_by_role("heading", name=vi("Dashboard"))).to_be_visible()
            expect(page.locator("table.bars")).to_contain_text("Phước Đại")
            page.screenshot(path=str(ARTIFACTS / f"admin-dashboard-{name}.png"), full_page=True)
            page.get_by_role("link", name=vi("Reports"), exact=True).click()
            page.screenshot(path=str(ARTIFACTS / f"admin-reports-{name}.png"), full_page=True)
            page.get_by_role("link", name="BC-00001").click()
            page.screenshot(path=str(ARTIFACTS / f"admin-report-{name}.png"), full_page=True)
            if name == "pc":
                page.get_by_role("button", name=vi("Verify")).click()
                expect(page.locator(".status-verified")).to_be_visible()
            page.close()
        browser.close()
    with db_of(app).sessions() as session:
        assert session.scalar(select(Report.status)) == "verified"
        assert session.scalar(select(Outbox.id)) is not None
