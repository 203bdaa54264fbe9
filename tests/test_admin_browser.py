"""The officers' console in a real headless Chromium: sign in, read, verify a report."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
pytestmark = [pytest.mark.skipif(
    not CHROMIUM and not os.environ.get("DUAN8_REQUIRE_BROWSER"),
    reason="no Chromium on this machine (CI installs it)",
), pytest.mark.heavy]
# Screenshots of each page are kept here for a person to look at after the run.
ARTIFACTS = Path(os.environ.get("DUAN8_ARTIFACTS", "test-artifacts"))
PASSWORD = "correct horse battery"


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


@pytest.fixture
def server(config: Config) -> Iterator[tuple[str, object]]:
    app = create_app(config)
    db = db_of(app)
    prepare_database(config, db)
    with db.transaction() as session:
        create_admin(session, "bacai", PASSWORD, role="district",
                     area_code="nt.bac-ai")
    from test_admin_web import BAC_AI_VILLAGE, add_report

    add_report(app, BAC_AI_VILLAGE)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", app
    http.shutdown()
    db.dispose()


def signed_in(browser: Any, base: str, username: str, width: int, height: int) -> Any:
    """A new page at this size, signed in to the console through its form, on the dashboard."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{base}/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name=vi("Sign in")).click()
    expect(page.get_by_role("heading", name=vi("Dashboard"))).to_be_visible()
    return page


def test_an_officer_signs_in_reads_the_dashboard_and_verifies_a_report(server, browser):
    assert CHROMIUM, "DUAN8_REQUIRE_BROWSER is set but Chromium is missing"
    from playwright.sync_api import expect

    base, app = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width, height, name in ((1280, 900, "pc"), (360, 740, "phone")):
        page = signed_in(browser, base, "bacai", width, height)
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
    with db_of(app).sessions() as session:
        assert session.scalar(select(Report.status)) == "verified"
        assert session.scalar(select(Outbox.id)) is not None


TOKEN = "123456:TEST-token"


@pytest.fixture
def province_server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Any, Any]]:
    """The console and a worker that fans broadcasts out and sends them to a fake Telegram."""
    import asyncio

    from broadcast_helpers import TA_LU_1, add_members, team_in
    from channel_harness import channel_config
    from fakes.telegram_api import FakeTelegram

    from bot.broadcaster import Broadcaster
    from bot.channels.telegram.outbound import TelegramSender, make_bot
    from bot.channels.webchat.outbound import WebChatSender
    from bot.sender import OutboxSender

    with FakeTelegram(token=TOKEN) as fake:
        config = channel_config(db_url, tmp_path, TELEGRAM_BOT_TOKEN=TOKEN,
                                TELEGRAM_API_URL=fake.url, QUIET_HOURS="off")
        app = create_app(config)
        db = db_of(app)
        prepare_database(config, db)
        with db.transaction() as session:
            create_admin(session, "tinh", PASSWORD, role="province",
                         area_code=None)
        from test_admin_web import BAC_AI_VILLAGE, add_report

        add_report(app, BAC_AI_VILLAGE)
        add_members(db, team_in(db, TA_LU_1), 3, channel="telegram")
        stop = threading.Event()

        async def work() -> None:  # what `duan8 worker` does for broadcasts, in one loop
            bot = make_bot(config)
            await bot.initialize()
            try:
                sender = OutboxSender(db, [TelegramSender(bot), WebChatSender()])
                broadcaster = Broadcaster(config, db)
                while not stop.is_set():
                    broadcaster.step()
                    if await sender.deliver_once() == 0:
                        await asyncio.sleep(0.2)
            finally:
                await bot.shutdown()

        worker = threading.Thread(target=asyncio.run, args=(work(),), daemon=True)
        worker.start()
        http = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{http.server_port}", app, fake
        finally:
            http.shutdown()
            stop.set()
            worker.join(timeout=30)
            db.dispose()


def test_a_province_admin_composes_a_broadcast_and_watches_it_reach_everyone(province_server,
                                                                            browser):
    assert CHROMIUM, "DUAN8_REQUIRE_BROWSER is set but Chromium is missing"
    from playwright.sync_api import expect

    base, app, fake = province_server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)

    page = signed_in(browser, base, "tinh", 1280, 900)
    expect(page.locator("#ind-communication_teams")).to_contain_text("Bác Ái")
    shot(page, "dashboard-province")
    page.get_by_role("link", name=vi("Plan"), exact=True).click()
    expect(page.locator("table.targets")).to_be_visible()
    shot(page, "plan")
    page.get_by_role("link", name=vi("Members"), exact=True).click()
    page.get_by_role("link", name="Pinăng Thị Hoa").click()
    expect(page.locator("table.channels")).to_contain_text("webchat")
    shot(page, "member")

    page.get_by_role("link", name=vi("Content"), exact=True).click()
    page.get_by_role("link", name=vi("New item")).click()
    page.fill("input[name=title]", "Phòng chống bạo lực gia đình")
    page.fill("textarea[name=text]", "Gọi 111 khi cần giúp đỡ.")
    shot(page, "content-new")
    page.get_by_role("button", name=vi("Save")).click()
    expect(page.get_by_role("heading", name="Phòng chống bạo lực gia đình")).to_be_visible()
    shot(page, "content-item")
    page.get_by_role("link", name=vi("Send as a broadcast")).click()
    page.select_option("select[name=area]", ["nt.bac-ai"])
    page.select_option("select[name=role]", ["member"])
    # The live count: three members on Telegram, and the reporter on web chat.
    expect(page.locator("[data-count=total]")).to_have_text("4")
    expect(page.locator("[data-count=channels]")).to_contain_text("telegram: 3")
    shot(page, "broadcast-compose")
    page.get_by_role("button", name=vi("Send"), exact=True).click()
    expect(page.locator("[data-live=percent]")).to_have_text("100", timeout=30_000)
    expect(page.locator("[data-live=state_label]")).to_have_text(vi("done"))
    expect(page.locator("progress.broadcast")).to_have_attribute("value", "100")
    expect(page.locator("[data-live=sent]")).to_have_text("4")
    shot(page, "broadcast-progress")
    page.get_by_role("link", name=vi("Broadcasts"), exact=True).click()
    shot(page, "broadcasts")
    # Each of the three Telegram members got it once, from the fake platform's own record.
    assert len([t for t in fake.sent_texts() if "Gọi 111" in t]) == 3
    with db_of(app).sessions() as session:
        assert set(session.scalars(select(Outbox.status).where(
            Outbox.broadcast_id.is_not(None)))) == {"sent"}
