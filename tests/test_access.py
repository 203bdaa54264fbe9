"""Doors into members' data: link and invite codes under limits, links announced and undone,
roles that are granted, never chosen."""

from __future__ import annotations

import json
import re
import secrets
from datetime import date

import app_fixtures
from chat_helpers import WebChatUser
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import create_app, db_of
from bot.cli import cli
from bot.cli_common import Env
from messages_vi import _, render
from storage import access, members, reports
from storage.members import INVITE_ALPHABET, LINK_LENGTH, create_invite, ensure_village_team
from storage.models import ConversationState, Identity, InviteCode, LinkCode, Member, Team, utcnow
from storage.search import area_id_by_code

TA_LU_1 = "nt.bac-ai.phuoc-dai.ta-lu-1"
CODE = re.compile(r"\b[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}\b")


def vi(msgid: str, **params: object) -> str:
    return render(_(msgid, **params), "vi")


TOO_MANY = vi("Too many wrong codes. To keep members' data safe, please wait {minutes} minutes "
              "and type the code again.", minutes=0).split("{")[0][:40]


app, config = app_fixtures.app, app_fixtures.config  # the module-app fixtures


def village(session) -> int:
    found = area_id_by_code(session, TA_LU_1)
    assert found is not None
    return found


def invite(app, role: str = "member", uses: int = 5) -> str:
    with db_of(app).transaction() as session:
        team = ensure_village_team(session, village(session))
        code, _name = create_invite(session, team.code, role=role, days=30, max_uses=uses,
                                    actor="test", now=utcnow())
    return code


def newcomer(app, address: str = "10.0.0.1") -> WebChatUser:
    """A fresh browser (its own session cookie) from an address, past the consent question."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    user = WebChatUser(app, client=client)
    user.send("xin chao")
    user.press(vi("Agree"))
    return user


def joined(app, name: str = "Pinăng Thị Hoa", role: str = "member",
           address: str = "10.0.0.9") -> WebChatUser:
    user = newcomer(app, address)
    user.send(invite(app, role))
    user.send(name)
    return user


def link_code(user: WebChatUser) -> str:
    user.press(vi("Link another app"))
    found = CODE.search(user.last_text())
    assert found is not None, user.last_text()
    return found.group()


def wrong_link_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(LINK_LENGTH))


def near(code: str, places: int) -> str:
    """The code with `places` characters changed."""
    chars = list(code.replace("-", ""))
    for index in range(places):
        chars[index] = next(c for c in INVITE_ALPHABET if c != chars[index])
    return "".join(chars)


# --- link codes ---------------------------------------------------------------------------------


def test_a_link_code_has_the_entropy_its_lifetime_needs(app):
    member = joined(app)
    codes = {link_code(member).replace("-", "") for _ in range(20)}
    assert len(codes) == 20
    assert all(len(c) == LINK_LENGTH and set(c) <= set(INVITE_ALPHABET) for c in codes)
    # 31^12 codes: a thousand guesses a second for the code's 30 minutes, against a thousand
    # live codes, find one with a chance far below one in a million.
    assert 1000 * 30 * 60 * 1000 / len(INVITE_ALPHABET) ** LINK_LENGTH < 1e-6


def test_guessing_link_codes_is_throttled_per_session_then_per_address(app):
    member = joined(app)
    code = link_code(member)
    guesser = newcomer(app, "198.51.100.7")
    for _try in range(access.WRONG_PER_IDENTITY.count):
        answer = guesser.text_of(guesser.send(wrong_link_code()))
        assert vi("That link code is wrong or has expired. Ask for a new one.") in answer
    # The limit is reached: even the right code is not looked at now.
    answer = guesser.text_of(guesser.send(code))
    assert TOO_MANY in answer
    with db_of(app).sessions() as session:
        assert session.scalar(select(Identity.member_id).where(
            Identity.external_id != "x").order_by(Identity.id.desc()).limit(1)) is None
    # New browser sessions from the same address share the address's limit.
    tries = access.WRONG_PER_IDENTITY.count
    while tries < access.WRONG_PER_ADDRESS.count:
        fresh = newcomer(app, "198.51.100.7")
        for _try in range(min(access.WRONG_PER_IDENTITY.count, access.WRONG_PER_ADDRESS.count
                           - tries)):
            fresh.send(wrong_link_code())
            tries += 1
    late = newcomer(app, "198.51.100.7")
    assert TOO_MANY in late.text_of(late.send(code))
    # The member, elsewhere, still links with their code.
    elsewhere = newcomer(app, "203.0.113.5")
    assert "Pinăng Thị Hoa" in elsewhere.text_of(elsewhere.send(code))


def test_a_code_dies_after_a_few_wrong_tries_near_it(app):
    member = joined(app)
    code = link_code(member)
    for index in range(access.NEAR.count):
        guesser = newcomer(app, f"192.0.2.{index + 1}")
        guesser.send(near(code, 1 + index % access.NEAR_DISTANCE))
    owner = newcomer(app, "203.0.113.5")
    answer = owner.text_of(owner.send(code))
    assert vi("That link code is wrong or has expired. Ask for a new one.") in answer
    # Far-off wrong codes do not kill it.
    fresh = link_code(member)
    for index in range(access.NEAR.count + 2):
        newcomer(app, f"192.0.2.{50 + index}").send(near(fresh, access.NEAR_DISTANCE + 2))
    assert "Pinăng Thị Hoa" in owner.text_of(owner.send(fresh))


def test_a_link_is_announced_on_the_existing_chat_and_can_be_undone(app):
    member = joined(app)
    code = link_code(member)
    before = len(member.seen)
    intruder = newcomer(app, "203.0.113.66")
    assert "Pinăng Thị Hoa" in intruder.text_of(intruder.send(code))
    member._deliver_and_read()
    notice = member.seen[before:]
    assert any(vi("Your account was just linked to a new chat on {channel}. If this was not "
                  "you, press Undo: that chat will no longer see or change your data.",
                  channel=vi("the web chat")) in m["text"] for m in notice)
    answer = member.text_of(member.press(vi("Undo")))
    assert vi("Undone: that chat is no longer linked to you. If someone else had your code, "
              "tell your commune officer.") in answer
    with db_of(app).sessions() as session:
        linked = session.scalars(select(Identity).where(Identity.member_id.is_not(None))).all()
        assert len(linked) == 1
    # The detached chat no longer reaches the member's reports.
    answer = intruder.text_of(intruder.send("bao cao cua toi"))
    assert vi("You have not sent any reports yet.") not in answer
    # The undone chat cannot undo the member's own chat in return.
    with db_of(app).sessions() as session:
        ids = [i.id for i in session.scalars(select(Identity).order_by(Identity.id))]
    with db_of(app).transaction() as session:
        assert not access.undo_link(session, ids[-1], ids[0], utcnow())


def test_a_later_link_cannot_undo_the_older_chat(app):
    member = joined(app)
    intruder = newcomer(app, "203.0.113.66")
    intruder.send(link_code(member))
    with db_of(app).sessions() as session:
        first, second = (i.id for i in session.scalars(
            select(Identity).where(Identity.member_id.is_not(None)).order_by(Identity.id)))
    with db_of(app).transaction() as session:
        assert not access.undo_link(session, second, first, utcnow())
        assert access.undo_link(session, first, second, utcnow())


def test_chatting_at_the_code_question_is_not_counted_as_guessing(app):
    user = newcomer(app, "198.51.100.40")
    for text in ["xin chao", "toi chua co ma", "Hoa o thon Ta Lu", "hello there!"] * 3:
        assert TOO_MANY not in user.text_of(user.send(text))
    assert "Tà Lú 1" in user.text_of(user.send(invite(app)))


# --- invite codes ---------------------------------------------------------------------------


def test_guessing_invite_codes_is_throttled_and_a_circled_invite_dies(app):
    code = invite(app)
    guesser = newcomer(app, "198.51.100.8")
    for _try in range(access.WRONG_PER_IDENTITY.count):
        answer = guesser.text_of(guesser.send(near(code, 3)))
        assert vi("Check it and type it again.") in answer or "{" not in answer
    assert TOO_MANY in guesser.text_of(guesser.send(code))
    for index in range(access.NEAR.count):
        newcomer(app, f"192.0.2.{100 + index}").send(near(code, 1))
    late = newcomer(app, "203.0.113.9")
    assert vi("The code {code} is no longer valid. Ask your commune.", code=code) in \
        late.text_of(late.send(code))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=INVITE_ALPHABET + "0O1IL ", min_size=6, max_size=14),
                min_size=access.WRONG_PER_IDENTITY.count + 1,
                max_size=access.WRONG_PER_IDENTITY.count + 3))
def test_no_sender_gets_more_wrong_codes_checked_than_the_limit(db, guesses):
    """Property: whatever codes one sender types, at most the limit are ever looked up."""
    now = utcnow()
    identity = 10_000 + secrets.randbelow(10**9)
    address = f"2001:db8:{secrets.randbelow(65536):x}::/64"
    checked = 0
    with db.transaction() as session:
        for guess in guesses:
            if access.wait_before_code(session, identity, address, now) is not None:
                continue
            checked += 1
            access.wrong_code(session, guess, identity, address, now)
    assert checked == access.WRONG_PER_IDENTITY.count


# --- roles ------------------------------------------------------------------------------------


def test_a_self_declared_leader_sees_no_ones_data(app):
    member = joined(app, "Katơr Thị Mai")
    member.press(vi("Report an activity"))
    member.send("menu")
    # An old conversation saved at the role question, answered "Tổ trưởng".
    user = newcomer(app, "198.51.100.30")
    user.press(vi("Choose my village"))
    user.send("bac ai")
    user.send("phuoc dai")
    user.send("ta lu 1")
    with db_of(app).transaction() as session:
        state = session.scalars(select(ConversationState).order_by(
            ConversationState.identity_id.desc())).first()
        assert state is not None
        state.flow, state.step = "join", "role"
        state.draft = {**state.draft, "name": "Self Leader"}
    answer = user.text_of(user.send("to truong"))
    assert vi("Team leaders are named by the Women's Union: ask your commune officer for a "
              "leader's invite. Meanwhile you join as a member.") in answer
    assert vi("My team's reports") not in user.buttons()
    answer = user.text_of(user.send("bao cao cua to"))
    assert vi("Only a team leader can see the team's reports.") in answer
    assert "Katơr" not in answer
    with db_of(app).sessions() as session:
        roles = {name: role for name, role in session.execute(
            select(Member.display_name, Member.role))}
        assert roles["Self Leader"] == "member"
        self_id = session.scalar(select(Member.id).where(Member.display_name == "Self Leader"))
        assert self_id is not None
        # The query itself refuses: even a caller that believed the role sees nobody.
        assert reports.team_activity(session, self_id, date(2020, 1, 1)) == []


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(role=st.text(max_size=20), invite_role=st.sampled_from([None, "member"]))
def test_no_join_without_a_leaders_invite_makes_a_leader(db, plan_db, role, invite_role):
    now = utcnow()
    with db.transaction() as session:
        team = ensure_village_team(session, village(session))
        code = create_invite(session, team.code, role=invite_role, days=1, max_uses=1000,
                             actor="t", now=now)[0] if invite_role else None
        ident = Identity(channel="webchat", external_id=secrets.token_hex(8), consent="given")
        session.add(ident)
        session.flush()
        joined_member = members.join_team(session, ident.id, team_id=team.id, name="X",
                                          role=role or "leader", invite=code, at=now)
        assert session.get(Member, joined_member.id).role == "member"
        assert reports.team_activity(session, joined_member.id, date(2020, 1, 1)) == []


def cli_env(config) -> Env:
    env = Env()
    env._config = config
    return env


def test_leadership_comes_from_a_leaders_invite_or_an_officers_grant(app, config):
    leader = joined(app, "Katơr Thị Mai", role="leader")
    assert vi("My team's reports") in leader.buttons()
    member = joined(app, "Pinăng Thị Hoa", address="10.0.0.10")
    with db_of(app).sessions() as session:
        member_id, team_code = session.execute(
            select(Member.id, Team.code).join(Team, Team.id == Member.team_id)
            .where(Member.display_name == "Pinăng Thị Hoa")).one()
    runner = CliRunner()
    granted = runner.invoke(cli, ["member", "grant-leader", str(member_id), "--by",
                                  "xa-phuoc-dai"], obj=cli_env(config))
    assert granted.exit_code == 0, granted.output
    assert granted.output.split("\t")[-1].strip() == "leader"
    listing = runner.invoke(cli, ["team", "members", "--team", team_code, "--json"],
                            obj=cli_env(config))
    assert listing.exit_code == 0, listing.output
    rows = {r["name"]: r for r in json.loads(listing.output)}
    assert rows["Pinăng Thị Hoa"]["role"] == "leader"
    assert rows["Pinăng Thị Hoa"]["granted_by"] == "granted by officer:xa-phuoc-dai"
    assert rows["Katơr Thị Mai"]["granted_by"].startswith("invite ")
    assert rows["Pinăng Thị Hoa"]["channels"] == ["webchat"]
    assert "Katơr Thị Mai" in member.text_of(member.send("bao cao cua to"))
    revoked = runner.invoke(cli, ["member", "revoke-leader", str(member_id), "--by", "xa"],
                            obj=cli_env(config))
    assert revoked.exit_code == 0, revoked.output
    assert vi("Only a team leader can see the team's reports.") in member.text_of(
        member.send("bao cao cua to"))


def test_a_leaders_invite_is_single_use_by_default(app, config):
    with db_of(app).transaction() as session:
        team = ensure_village_team(session, village(session))
        team_code = team.code
    result = CliRunner().invoke(cli, ["invite", "create", "--team", team_code, "--role",
                                      "leader"], obj=cli_env(config))
    assert result.exit_code == 0, result.output
    with db_of(app).sessions() as session:
        assert session.scalar(select(InviteCode.max_uses).where(InviteCode.role == "leader")) \
            == 1


def test_limits_live_in_the_database_shared_by_every_web_worker(app):
    member = joined(app)
    code = link_code(member)
    second = create_app(app.extensions["duan8.config"])  # another worker, same database
    tries = 0
    while tries < access.WRONG_PER_ADDRESS.count:
        guesser = newcomer(app if tries % 10 else second, "198.51.100.77")
        for _try in range(access.WRONG_PER_IDENTITY.count):
            guesser.send(wrong_link_code())
            tries += 1
    late = newcomer(second, "198.51.100.77")
    assert TOO_MANY in late.text_of(late.send(code))
    with db_of(app).sessions() as session:
        assert session.scalar(select(LinkCode.used_at).where(
            LinkCode.code == code.replace("-", ""))) is None
    db_of(second).dispose()
