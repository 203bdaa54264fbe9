"""The console channel: the same dispatcher and outbox, buttons as numbered choices."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from chat_helpers import png_bytes

from bot.channels.console.chat import CHANNEL, ConsoleChat
from bot.dispatcher import Dispatcher, Incoming
from bot.startup import prepare_database
from messages_vi import _, render
from storage.db import Database


def vi(msgid: str) -> str:
    return render(_(msgid), "vi")


def test_console_conversation_to_a_saved_report(config, tmp_path):
    db = Database(config.database_url)
    prepare_database(config, db)
    out = io.StringIO()
    chat = ConsoleChat(Dispatcher(config, db), db, "tester", out)
    photo = tmp_path / "a.png"
    photo.write_bytes(png_bytes())
    lines = ["xin chao", "1",  # Agree
             "1",  # Choose my village
             "bac ai", "phuoc dai", "ta lu 1", "Mấu Thị Hiền", "1",  # member
             "1",  # Report an activity
             "doi thoai", "hom nay", "ta lu 1", "50", "30", "50", "0", "binh dang gioi",
             f"/photo {photo}", "xong", "khong", "gui"]
    chat.loop(io.StringIO("\n".join(lines) + "\n/quit\n"))
    text = out.getvalue()
    assert "[1] " + vi("Agree") in text
    assert "BC-00001" in text
    db.dispose()


def test_duan8_chat_runs_in_a_terminal(config, tmp_path, db_url):
    env = {"DATABASE_URL": db_url, "DUAN8_INSTANCE": str(tmp_path / "inst"),
           "DUAN8_ENV_FILE": str(tmp_path / "none.env"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "bot", "chat", "--user", "t1"],
                            input="chao\n1\n/quit\n", capture_output=True, text=True, env=env,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert vi("Do you agree?") in result.stdout
    assert vi("Thank you. Now let us find your team.") in result.stdout


def test_each_terminal_prints_only_its_own_members_replies(config):
    db = Database(config.database_url)
    prepare_database(config, db)
    mine, theirs = io.StringIO(), io.StringIO()
    me = ConsoleChat(Dispatcher(config, db), db, "me", mine)
    other = ConsoleChat(Dispatcher(config, db), db, "other", theirs)
    other.dispatcher.dispatch(Incoming(channel=CHANNEL, external_id="other", event_id="o1",
                                       text="xin chao"))
    me.send_line("xin chao")
    assert mine.getvalue().count(vi("Do you agree?")) == 1
    time.sleep(0.6)  # the other member's row, left by this terminal, comes due again
    other.deliver()
    assert theirs.getvalue().count(vi("Do you agree?")) == 1
    db.dispose()
