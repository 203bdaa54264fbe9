"""Buttons as numbered choices: Zalo Bot has no inline buttons, and on Zalo OA a typed number
works next to the query buttons, whether or not a member's client shows them.

The choices a chat was shown are remembered through the channel port (one value per chat, see
ButtonMemory), so a member typing just "1" presses the first button, as the console channel does
in memory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.channels.port import ChannelPort, Choice, Database

CHOICE = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")
SETTING_KEY_LIMIT = 128  # storage.models.Setting.key


def settings_key(prefix: str, name: str) -> str:
    """A settings key; a name too long for the column is replaced by its digest."""
    key = f"{prefix}{name}"
    if len(key) <= SETTING_KEY_LIMIT:
        return key
    return f"{prefix}sha256:{hashlib.sha256(name.encode()).hexdigest()[:48]}"


def pressed(text: str, choices: Sequence[Mapping[str, str]]) -> Mapping[str, str] | None:
    """The choice a member made by typing its number ("1", "2." or "3)"), if any."""
    match = CHOICE.match(text)
    if match is None:
        return None
    number = int(match.group(1))
    return choices[number - 1] if 1 <= number <= len(choices) else None


def numeric(label: str) -> bool:
    """A button labelled with a number ("0") answers a question that takes numbers."""
    return label.strip().isdigit()


def with_choices(text: str, buttons: list[Any]) -> tuple[str, list[dict[str, str]]]:
    """The text with its buttons as a numbered list, and the choices a typed number presses.

    A question that takes numbers (a count with a "0" shortcut) gets no numbering: there a
    typed "1" means one person, never the first button.
    """
    # A list in the text has room for a label's every word (`full`, when the button's is cut).
    labelled = [{"label": str(b.get("full") or b.get("label") or ""),
                 "payload": str(b.get("payload") or "")}
                for b in buttons if isinstance(b, dict)]
    if not labelled:
        return text, []
    if any(numeric(b["label"]) for b in labelled):
        lines = [f"• {b['label']}" for b in labelled if not numeric(b["label"])]
        choices: list[dict[str, str]] = []
    else:
        lines = [f"{n}. {b['label']}" for n, b in enumerate(labelled, start=1)]
        choices = labelled
    if not lines:
        return text, choices
    listing = "\n".join(lines)
    return (f"{text.rstrip()}\n\n{listing}" if text.strip() else listing), choices


class ButtonMemory:
    """The numbered choices each chat of one channel saw last, one settings value per chat."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # e.g. "zalo.buttons.": the chat id follows

    def remember(self, port: ChannelPort, chat: str, choices: list[Choice]) -> None:
        """Store the numbered choices this chat was just shown (an empty list forgets)."""
        port.remember_choices(settings_key(self.prefix, chat), choices)

    def shown(self, port: ChannelPort, chat: str) -> list[Choice]:
        """The numbered choices this chat saw last."""
        return port.shown_choices(settings_key(self.prefix, chat))

    def typed(self, db: Database, chat: str | None, text: Any) -> list[Choice]:
        """The shown choices when a member typed nothing but a number; the database is read
        only then."""
        if chat is None or not isinstance(text, str) or CHOICE.match(text) is None:
            return []
        return self.shown(ChannelPort(db), chat)
