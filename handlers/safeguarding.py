"""Disclosures: a message that reads as violence, abuse, trafficking or a child at risk.

Wherever it comes (a note, any step, outside a flow), the member is answered at once with the
hotlines, a case goes to the area's safeguarding officers, and the conversation carries on where
it was. The member is never asked who the victim is. Before consent nothing is stored: the
hotlines are given all the same.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from handlers.flow import Ctx
from handlers.types import Inbound, Reply
from messages_vi import Text, _
from storage import safeguarding as store
from storage.textfold import fold_words

log = logging.getLogger(__name__)

PHRASES_FILE = Path(__file__).resolve().parent / "data" / "disclosure_phrases.txt"
NATIONAL_CHILD_LINE = "111"
SCAN_CHARS = 2000  # a disclosure is in the first lines; very long texts are cut, never skipped


@dataclass(frozen=True)
class PhraseList:
    alone: tuple[tuple[str, str], ...]  # (folded phrase, category)
    with_signal: tuple[tuple[str, str], ...]
    signals: tuple[str, ...]


@cache
def shipped_phrases() -> PhraseList:
    """The shipped list, read once per process."""
    alone: list[tuple[str, str]] = []
    with_signal: list[tuple[str, str]] = []
    signals: list[str] = []
    for number, raw in enumerate(PHRASES_FILE.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        category, sep, phrase = line.partition(":")
        phrase = phrase.strip()
        if not sep or not phrase:
            raise ValueError(f"{PHRASES_FILE.name}: line {number} is not 'category: phrase'")
        needs_signal = phrase.endswith("+")
        folded = fold_words(phrase.rstrip("+"))
        if category.strip() == "signal":
            signals.append(folded)
        elif needs_signal:
            with_signal.append((folded, category.strip()))
        else:
            alone.append((folded, category.strip()))
    return PhraseList(tuple(alone), tuple(with_signal), tuple(signals))


@cache
def _pattern(phrase: str) -> re.Pattern[str]:
    # Whole words only: "cuu" (help) must not fire inside "nghien cuu" (research).
    return re.compile(rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z0-9])")


def _has(folded: str, phrase: str) -> bool:
    return phrase in folded and _pattern(phrase).search(folded) is not None


# Campaign words: "phòng chống bạo lực gia đình" is a topic, not a disclosure.
_TOPIC_CONTEXT = ("phong chong", "phong ngua", "tuyen truyen", "truyen thong", "chu de")


def classify(text: str, added: tuple[tuple[str, str], ...] = ()) -> str | None:
    """The category of a disclosure in `text`, or None. Pure: the phrase lists are data."""
    folded = fold_words(text[:SCAN_CHARS])
    if not folded:
        return None
    phrases = shipped_phrases()
    for phrase, category in (*phrases.alone, *added):
        if _has(folded, phrase):
            return category
    for phrase, category in phrases.with_signal:
        if not _has(folded, phrase):
            continue
        # The phrase as a campaign topic ("truyen thong phong chong bao luc gia dinh") is
        # not a disclosure unless someone is named as suffering it ("dang bi", "mot chi").
        rest = folded.replace(phrase, " ")
        topical = any(_has(folded, f"{ctx} {phrase}") for ctx in _TOPIC_CONTEXT)
        signals = [s for s in phrases.signals if _has(rest, s)]
        if signals and not (topical and signals == ["bi"]):
            return category
    return None


def hotline_reply(trusted: str | None) -> Reply:
    lines: list[Text | str] = [
        _("Thank you for telling us. If someone is in danger now, call the police on 113."),
        _("Child protection hotline (free, 24 hours): {number}.", number=NATIONAL_CHILD_LINE),
    ]
    if trusted:
        lines.append(_("Trusted address near you: {name}.", name=trusted))
    lines.append(_("A trained officer will contact you. You do not need to tell us the "
                   "person's name."))
    return Reply.of(*lines)


def _category(ctx: Ctx, inbound: Inbound) -> str | None:
    # Button presses are never disclosures; only what the member typed is read.
    if inbound.payload or not inbound.text.strip():
        return None
    return classify(inbound.text, store.added_phrases(ctx.session))


def is_disclosure(ctx: Ctx, inbound: Inbound) -> bool:
    """Whether a message reads as a disclosure (the router's gate)."""
    return _category(ctx, inbound) is not None


def answer_disclosure(ctx: Ctx, inbound: Inbound) -> None:
    """Answer with the hotlines at once and, after consent, open a case for the officers."""
    category = _category(ctx, inbound)
    if category is None:
        return
    member = ctx.identity.member
    area_id = member.team_area_id if member else None
    ctx.replies.append(hotline_reply(store.trusted_address_near(ctx.session, area_id)))
    if ctx.identity.consent != "given":
        # Consent gates storage: the hotlines are given, nothing is kept.
        log.info("disclosure answered before consent; nothing stored")
        return
    case = store.open_case(
        ctx.session, identity_id=ctx.identity.id, member_id=member.id if member else None,
        team_id=member.team_id if member else None, channel=inbound.channel,
        category=category, text=inbound.text, now=ctx.now)
    log.info("safeguarding case %s opened (%s), %d officer(s) told", case.number, category,
             len(case.officers))
    for officer in case.officers:
        ctx.tell(officer.identity_id, officer.channel, officer.locale, Reply.of(
            _("New safeguarding case {number} from {place}. Please contact the member within "
              "24 hours.", number=case.number, place=case.team_name or case.area_name or "—"),
            _("Type \u201ctruong hop\u201d to read the open cases.")))


def show_cases(ctx: Ctx) -> None:
    """For a safeguarding officer in chat: the open cases of their area, newest first.

    Whether the reader may see a case is decided in the query, by their granted areas; anyone
    else gets the same short answer as an officer with no case.
    """
    member = ctx.identity.member
    reader = store.Reader(officer_member_id=member.id if member else None)
    rows = store.cases_visible_to(ctx.session, reader, status=store.CaseStatus.OPEN, limit=5)
    if not rows:
        ctx.say(_("There is no open safeguarding case for you."))
        return
    for row in rows:
        ctx.say(_("Case {number} ({date}), {place}, from {name}:", number=row.number,
                  date=row.created_at.astimezone(ctx.now.tzinfo).date() if ctx.now.tzinfo
                  else row.created_at.date(), place=row.team or row.area or "—",
                  name=row.member_name or "—"),
                row.text[:600])


# --- names in notes ---------------------------------------------------------------------------

# Common Vietnamese family names and the ethnic minorities' of the province (Raglai, Chăm,
# K'Ho), folded; a name typed without capitals is still recognised after a victim word.
SURNAMES = frozenset([
    "nguyen", "tran", "le", "pham", "hoang", "huynh", "phan", "vu", "vo", "dang", "bui", "do",
    "ho", "ngo", "duong", "ly", "dinh", "mai", "trinh", "truong", "lam", "cao", "chau", "ha",
    "kieu", "luu", "ta", "thai", "tang", "quach", "mau", "chamale", "kator", "pinang", "mang",
    "bo", "lu", "ma",
])
# Words that put the person after them in a victim's place.
VICTIM_WORDS = ("nan nhan", "bi hai", "nguoi bi", "chau bi", "em bi", "chi bi", "be bi",
                "ba bi", "co bi")
KIN_WORDS = frozenset(["chi", "em", "chau", "be", "ba", "co", "ban", "me", "con", "nhan"])
_PLACE_WORDS = frozenset(["thon", "xa", "huyen", "tinh", "lang", "ban", "xom", "to", "hoi",
                          "truong", "nha", "cho", "tai", "o"])
_WORD = re.compile(r"\w+")


def names_a_victim(text: str) -> bool:
    """Whether a note appears to name a person in a victim's role.

    A victim's role: a disclosure phrase or a victim word in the note. A name: two or more
    capitalised words not after a place word, a kin word followed by a capitalised word, or,
    typed in lower case, a family name after a victim or kin word or before "thi"/"van".
    Erring towards asking again is cheap: the member only rewrites the note without names.
    """
    text = text[:SCAN_CHARS]
    folded = fold_words(text)
    if not folded:
        return False
    if classify(text) is None and not any(_has(folded, w) for w in VICTIM_WORDS):
        return False
    words = _WORD.findall(text)
    keys = [fold_words(w) for w in words]
    capital = [(w[:1].isupper() and not w.isupper()) or (len(w) == 1 and w.isupper())
               for w in words]
    for i, key in enumerate(keys):
        before = keys[i - 1] if i else ""
        # Two capitalised words in a row, the first not a place's ("thon Ta Lu").
        if (capital[i] and i + 1 < len(words) and capital[i + 1] and before not in _PLACE_WORDS
                and key not in _PLACE_WORDS and not (i == 0 and key in KIN_WORDS)):
            return True
        if key in KIN_WORDS and i + 1 < len(words) and capital[i + 1]:
            return True
        if key in SURNAMES and i + 1 < len(keys) and (
                keys[i + 1] in {"thi", "van"} or before in KIN_WORDS or before == "hai"):
            return True
    return False
