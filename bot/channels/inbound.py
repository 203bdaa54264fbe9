"""What the platforms' inbound sides share: reading untrusted event fields, a /start command with
its parameter, the secret a webhook must echo, and the answer to a body that is of no use.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import Response, abort, current_app, jsonify, request

from bot.dispatcher import Dispatcher

log = logging.getLogger(__name__)

START = "/start"
# The invite or link code a /start carries (a Telegram deep link, a Messenger m.me ref): codes
# are short, so anything longer is cut rather than stored.
START_PARAM_LIMIT = 32


def text_of(value: Any) -> str:
    """A string from a JSON value that should be one, else "" (bodies are not trusted)."""
    return value if isinstance(value, str) else ""


def dict_of(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one when the field is missing or of the wrong type."""
    return value if isinstance(value, dict) else {}


def read_start(text: str) -> tuple[str, str | None]:
    """"/start CODE" as the command alone and its code; any other text as it is, with none."""
    if not text.startswith(START):
        return text, None
    parts = text.split(maxsplit=1)
    return START, parts[1].strip()[:START_PARAM_LIMIT] if len(parts) > 1 else None


def require_secret(enabled: bool, secret: str | None, header: str) -> None:
    """404 while the channel is off; 403 unless the request carries the secret the webhook was
    set with. Checked before the body is read."""
    if not enabled:
        abort(404)
    expected = (secret or "").encode()
    given = request.headers.get(header, "").encode()
    # compare_digest takes the same time wherever the strings differ.
    if not expected or not hmac.compare_digest(given, expected):
        abort(403)


def hand_over(body: dict[str, Any] | None, handle: Callable[[Dispatcher, Any], None], *,
              what: str) -> Response:
    """Hand a usable body to `handle`, or drop an unusable one (None) with a 200 all the same:
    the platform resends anything not answered 2xx, and the same body would fail again."""
    if body is None:
        log.warning("dropping a body that is not a %s", what)
        return jsonify(ok=False, error=f"not a {what}")
    handle(current_app.extensions["duan8.dispatcher"], body)
    return jsonify(ok=True)
