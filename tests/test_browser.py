"""The web chat page in a real headless Chromium, against a real server and worker."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from bot.app import create_app, db_of
from bot.config import Config
from bot.dispatcher import Wakeup
from bot.serve import run_worker
from bot.startup import prepare_database
from messages_vi import _, render

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api") if CHROMIUM or os.environ.get(
    "DUAN8_REQUIRE_BROWSER") else None
pytestmark = [pytest.mark.skipif(
    not CHROMIUM and not os.environ.get("DUAN8_REQUIRE_BROWSER"),
    reason="no Chromium on this machine (CI installs it)",
), pytest.mark.heavy]


def vi(msgid: str) -> str:
    return render(_(msgid), "vi")


@pytest.fixture
def server(config: Config) -> Iterator[str]:
    wakeup = Wakeup()
    app = create_app(config, wakeup=wakeup)
    db = db_of(app)
    prepare_database(config, db)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(config, db, stop, wakeup), daemon=True)
    worker.start()
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    stop.set()
    worker.join(timeout=10)
    db.dispose()


class ChatPage:
    """The chat page as a member uses it: answering the newest bot message."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def button(self, label: str) -> Any:
        """A button on the newest bot message, as a member answers the question last asked:
        an older message's button of the same name ("More") stays clickable, and a reply's
        buttons may come a poll after its first message."""
        return self.page.locator(".msg.bot").last.locator(".buttons").get_by_role(
            "button", name=label, exact=True)

    def press(self, label: str) -> None:
        from playwright.sync_api import expect

        expect(self.button(label)).to_be_visible(timeout=15000)
        self.button(label).click()

    def say(self, text: str) -> None:
        """Type an answer and send it; returns once the bot has answered."""
        from playwright.sync_api import expect

        count = self.page.locator(".msg.bot").count()
        self.page.fill("#text", text)
        self.page.press("#text", "Enter")
        expect(self.page.locator(".msg.bot")).not_to_have_count(count, timeout=15000)


def test_a_newcomer_joins_and_reports_in_the_browser(server, tmp_path, browser):
    assert CHROMIUM, "DUAN8_REQUIRE_BROWSER is set but Chromium is missing"
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 400, "height": 800})
    page.goto(f"{server}/chat")
    expect(page.locator(".msg.bot").first).to_contain_text(vi("Do you agree?"),
                                                           timeout=15000)

    chat = ChatPage(page)
    button, press, say = chat.button, chat.press, chat.say

    press(vi("Agree"))
    press(vi("Choose my village"))
    expect(button("Bác Ái")).to_be_visible(timeout=15000)
    say("bac ai")
    say("phuoc dai")
    say("ta lu 1")
    say("Pinăng Thị Hoa")  # no role question: a newcomer is a member
    expect(button(vi("Report an activity"))).to_be_visible(timeout=15000)
    say("truyen thong hom nay ta lu 1, 30 nguoi, 20 nu, 10 dtts, 5 tre em")
    understood = page.locator(".msg.bot", has_text=vi("I understood:"))
    expect(understood).to_contain_text("Tà Lú 1", timeout=15000)
    press(vi("More"))  # the topic is on the second page of six buttons
    press("Bình đẳng giới")
    press(vi("Done"))
    press(vi("No notes"))
    press(vi("Send"))
    expect(page.locator(".msg.bot").last).to_contain_text("BC-00001", timeout=15000)
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)


def test_sign_out_on_a_shared_phone_leaves_nothing_for_the_next_person(server, browser):
    assert CHROMIUM, "DUAN8_REQUIRE_BROWSER is set but Chromium is missing"
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 360, "height": 640})
    page.goto(f"{server}/chat")
    expect(page.locator(".msg.bot").first).to_contain_text(vi("Do you agree?"),
                                                           timeout=15000)
    page.locator(".buttons").get_by_role("button", name=vi("Agree"), exact=True).click()
    expect(page.locator(".msg.bot", has_text=vi("Thank you. Now let us find your team.")
                        )).to_be_visible(timeout=15000)
    page.click("#signout")
    # The page starts again as a new visitor: the consent question, and nothing before it.
    page.wait_for_url("**/chat?lang=vi", timeout=15000)
    expect(page.locator(".msg.bot").first).to_contain_text(vi("Do you agree?"),
                                                           timeout=15000)
    expect(page.locator(".msg", has_text=vi("Thank you. Now let us find your team.")
                        )).to_have_count(0)


# The newest bot message's bottom and every one of its buttons lie between the header and the
# input row, none hidden under the composer or scrolled away.
NEWEST_IN_VIEW = """() => {
  const log = document.getElementById("log").getBoundingClientRect();
  const composer = document.getElementById("composer").getBoundingClientRect();
  const bots = document.querySelectorAll(".msg.bot");
  if (!bots.length) return false;
  const last = bots[bots.length - 1];
  const buttons = Array.from(last.querySelectorAll(".buttons button"));
  const floor = Math.min(log.bottom, composer.top) + 1;
  const box = last.getBoundingClientRect();
  return buttons.length > 0 && buttons.length <= 6 && box.bottom <= floor &&
    buttons.every(b => { const r = b.getBoundingClientRect();
                         return r.top >= log.top - 1 && r.bottom <= floor && r.height > 0; });
}"""


def test_on_a_small_phone_the_newest_question_and_its_buttons_are_in_view(server, browser):
    assert CHROMIUM, "DUAN8_REQUIRE_BROWSER is set but Chromium is missing"
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 360, "height": 640}, is_mobile=True,
                            has_touch=True)
    page.goto(f"{server}/chat")
    expect(page.locator(".msg.bot").first).to_contain_text(vi("Do you agree?"),
                                                           timeout=15000)

    chat = ChatPage(page)
    press, say = chat.press, chat.say

    press(vi("Agree"))
    page.wait_for_function(NEWEST_IN_VIEW, timeout=15000)
    press(vi("Choose my village"))
    for answer in ("bac ai", "phuoc dai", "ta lu 1", "Pinăng Thị Hoa"):
        say(answer)
    press(vi("Report an activity"))
    expect(page.locator(".msg.bot").last).to_contain_text(
        vi("What activity are you reporting?"), timeout=15000)
    # By now the log is several screens long: the question and its six buttons are shown.
    assert page.evaluate("document.getElementById('log').scrollHeight > 640")
    page.wait_for_function(NEWEST_IN_VIEW, timeout=15000)
    press(vi("More"))
    expect(page.locator(".msg.bot").last.locator(".buttons button")).to_contain_text(
        [vi("Back to the first choices")], timeout=15000)
    page.wait_for_function(NEWEST_IN_VIEW, timeout=15000)
    # The keyboard opening (a shorter viewport) keeps them in view too.
    page.click("#text")
    page.set_viewport_size({"width": 360, "height": 380})
    page.wait_for_function(NEWEST_IN_VIEW, timeout=15000)


def test_the_english_page_answers_in_english(server, browser):
    assert CHROMIUM, "DUAN8_REQUIRE_BROWSER is set but Chromium is missing"
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 360, "height": 640})
    page.goto(f"{server}/chat?lang=en")
    expect(page.locator(".msg.bot").first).to_contain_text("Do you agree?", timeout=15000)
    page.fill("#text", "what is this")
    page.press("#text", "Enter")
    expect(page.locator(".msg.bot").last).to_have_text(
        "Please choose Agree or Do not agree.AgreeDo not agree", timeout=15000)
