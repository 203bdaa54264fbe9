"""The edge of every inbound request: bounded JSON, clean strings, ids that fit, no 5xx for data.

A platform resends whatever it did not see answered 2xx, for hours; a body we cannot use is
answered 200 and logged once in one line, never with its content (it may carry a member's
words). Only a database that cannot be reached answers 5xx, so the platform tries again later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from flask import jsonify
from flask.json.provider import DefaultJSONProvider
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

if TYPE_CHECKING:  # the dispatcher imports this module
    from bot.dispatcher import Incoming

from storage.values import ButtonPayload, MessagePayload

log = logging.getLogger(__name__)

MAX_DEPTH = 32  # no platform nests its events more than a handful of levels
EXTERNAL_ID_LIMIT = 128  # storage.models.Identity.external_id
EVENT_ID_LIMIT = 191  # storage.models.InboundEvent.event_id
TEXT_LIMIT = 5000
PAYLOAD_LIMIT = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

F = TypeVar("F", bound=Callable[..., Any])


class BadBody(ValueError):
    """A body that is not JSON we can use: too deep, or not JSON at all."""


def _check_depth(value: Any) -> None:
    """Walk a parsed value without recursion; too deep a nesting is refused."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise BadBody(f"JSON nested deeper than {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children
                         if isinstance(child, dict | list))


def safe_loads(raw: str | bytes, **kwargs: Any) -> Any:
    """json.loads, with deep nesting, bad UTF-8 and non-finite numbers all a BadBody."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, **kwargs)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise BadBody(type(exc).__name__) from None
    _check_depth(value)
    return _cleaned(value)


def _cleaned(value: Any) -> Any:
    """Every string of a parsed body (keys too) safe for any database: see clean_text.

    Recursion is bounded: the depth was checked first.
    """
    if isinstance(value, str):
        return clean_text(value, len(value))
    if isinstance(value, dict):
        return {_cleaned(k): _cleaned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's request.get_json through safe_loads: a bad body is a 400 (or None when silent)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return safe_loads(s, **kwargs)


def clean_text(value: str, limit: int) -> str:
    """Text fit for every database: lone surrogates become U+FFFD, NUL and controls go."""
    value = value[:limit]
    value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return _CONTROL.sub("", value)


def fit_id(value: str, limit: int) -> str:
    """An id that fits its column and any database; a longer or odd one becomes its digest."""
    cleaned = clean_text(value, len(value))
    if cleaned == value and 0 < len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest}"


def clean_incoming(incoming: Incoming) -> Incoming | None:
    """The typed message with every string made safe; None when it names no usable chat."""
    external = incoming.external_id
    if not external or len(external) > EXTERNAL_ID_LIMIT or clean_text(external, 200) != external:
        return None
    photos = tuple(
        replace(photo, source=clean_text(photo.source, 2000) if photo.source else photo.source,
                declared_type=clean_text(photo.declared_type, 100),
                size=photo.size if 0 <= photo.size < 2**62 else 0)
        for photo in incoming.photos)
    return replace(
        incoming,
        event_id=fit_id(incoming.event_id, EVENT_ID_LIMIT),
        text=clean_text(incoming.text or "", TEXT_LIMIT),
        payload=clean_text(incoming.payload, PAYLOAD_LIMIT) if incoming.payload else None,
        start_param=clean_text(incoming.start_param, 64) if incoming.start_param else None,
        locale=clean_text(incoming.locale, 16) if incoming.locale else None,
        ack=clean_text(incoming.ack, 200) if incoming.ack else None,
        photos=photos,
        oversize_photos=min(max(incoming.oversize_photos, 0), 100),
    )


def guarded(channel: str) -> Callable[[F], F]:
    """Answer 200 to a platform for a body that breaks its handling, and log it in one line."""

    def wrap(view: F) -> F:
        @wraps(view)
        def guarded_view(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except (HTTPException, OperationalError):
                raise  # our answer (403, 404, 413) stands; a database outage is retried
            except Exception as exc:
                log.warning("%s: dropped a request that could not be handled (%s)", channel,
                            type(exc).__name__)
                return jsonify(ok=True)

        return guarded_view  # type: ignore[return-value]

    return wrap


def _masked(number: str) -> str:
    """A number with all but its last two digits hidden: enough to find it, not to use it."""
    digits = sum(ch.isdigit() for ch in number)
    seen = 0
    out = []
    for ch in number:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 2 else "•")
        else:
            out.append(ch)
    return "".join(out)


def mask_echoes(payload: MessagePayload, said: str) -> MessagePayload:
    """A reply with every phone or ID number the member just sent hidden before it is queued.

    Replies may quote what was typed ("your notes contain 0912 345 678", "I could not find …");
    the outbox keeps what it sends, and a refused number must not be stored anywhere.
    """
    from handlers.parsing import find_sensitive  # the conversations' own definition

    numbers = sorted({match for _kind, match in find_sensitive(said[:TEXT_LIMIT])}, key=len,
                     reverse=True) if said else []
    if not numbers:
        return payload

    def hide(text: str) -> str:
        for number in numbers:
            text = text.replace(number, _masked(number))
        return text

    def hide_button(button: ButtonPayload) -> ButtonPayload:
        hidden: ButtonPayload = {**button, "label": hide(button["label"])}
        if "full" in button:
            hidden["full"] = hide(button["full"])
        return hidden

    result: MessagePayload = {**payload, "text": hide(payload["text"]),
                              "buttons": [hide_button(b) for b in payload["buttons"]]}
    return result
