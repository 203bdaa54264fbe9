"""Web chat: a small page and its JSON API, the channel that works with no platform token."""

from __future__ import annotations

import logging
import math
import re
import secrets
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    session,
    url_for,
)

from bot import web_guard
from bot.channels.port import ChannelPort, utcnow
from bot.dispatcher import Dispatcher, Incoming, IncomingPhoto
from messages_vi import _, normalise_locale, render

log = logging.getLogger(__name__)

CHANNEL = "webchat"
bp = Blueprint("webchat", __name__, url_prefix="/chat")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_TEXT = 5000
_AFTER = re.compile(r"[0-9]{1,18}")  # ids are 64-bit; more digits is not an id of ours
MAX_PHOTOS_PER_POST = 10

# Words of the page itself; the conversation's words come through the outbox.
PAGE_WORDS = {
    "title": _("Project 8 — report chat"),
    "placeholder": _("Type a message…"),
    "send": _("Send"),
    "photo": _("Photo"),
    "offline": _("No connection. Your message will be sent when the signal returns."),
    "start": _("Start"),
    "too_large": _("This photo is too large."),
    "signout": _("Sign out"),
    "signed_out": _("You have signed out. The next person on this phone starts a new chat."),
}


def _dispatcher() -> Dispatcher:
    return current_app.extensions["duan8.dispatcher"]


def _visitor() -> str:
    """A random id kept in the signed session cookie: the web chat's "platform user id"."""
    visitor = session.get("webchat_id")
    if not isinstance(visitor, str):
        visitor = secrets.token_urlsafe(18)
        session["webchat_id"] = visitor
    session.permanent = True  # the cookie lasts WEBCHAT_SESSION_DAYS from the last visit
    return visitor


def upload_limit(max_photo_bytes: int) -> int:
    """The largest photo form: every photo at its limit, and room for the form around them."""
    return max_photo_bytes * MAX_PHOTOS_PER_POST + 64 * 1024


def _event_id(client_id: str) -> str:
    """Client ids are chosen by the browser: one visitor's id never touches another's message."""
    return f"{_visitor()}:{client_id}"


def _accept(client_id: str, **message: Any) -> Any:
    """Dispatch one message of this visitor: 202, and whether it repeats one already taken."""
    outcome = _dispatcher().dispatch(Incoming(
        channel=CHANNEL, external_id=_visitor(), event_id=_event_id(client_id),
        locale=_locale(), locale_chosen=True,  # the page's language: what the member reads there
        origin=web_guard.client_address(request), **message,
    ))
    return jsonify(accepted=True, duplicate=outcome.duplicate), 202


def _too_fast(kind: str) -> Any | None:
    """A 429 with a Vietnamese sentence when this session or address sends too fast."""
    per_session, per_address = ((web_guard.MESSAGES_PER_SESSION, web_guard.MESSAGES_PER_ADDRESS)
                                if kind == "message" else
                                (web_guard.PHOTOS_PER_SESSION, web_guard.PHOTOS_PER_ADDRESS))
    wait = ChannelPort(current_app.extensions["duan8.db"]).hit_limits(
        [(per_session, _visitor()), (per_address, web_guard.client_address(request))], utcnow())
    if wait is None:
        return None
    seconds = max(1, math.ceil(wait.total_seconds()))
    message = render(_("You are sending too fast. Please wait {seconds} seconds, then send "
                       "again.", seconds=seconds), _locale())
    response = jsonify(error="too_many_requests", message=message, retry_after=seconds)
    response.status_code = 429
    response.headers["Retry-After"] = str(seconds)
    return response


def _locale() -> str:
    # Vietnamese unless asked otherwise: cheap phones often report English by default.
    return normalise_locale(request.args.get("lang"))


@bp.get("")
def page() -> Any:
    """The chat page: plain HTML, CSS and JS, light enough for a cheap phone on weak signal."""
    _visitor()
    locale = _locale()
    words = {key: render(text, locale) for key, text in PAGE_WORDS.items()}
    urls = {"messages": url_for("webchat.post_message"), "photos": url_for("webchat.post_photos"),
            "signout": url_for("webchat.sign_out")}
    return render_template("chat.html", words=words, locale=locale, urls=urls,
                           max_photo=current_app.extensions["duan8.config"].max_photo_bytes)


@bp.post("/api/messages")
def post_message() -> Any:
    """Accept a text or a button press; the client's message id makes a retry harmless."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400)
    client_id = str(body.get("id", ""))
    if not _CLIENT_ID.match(client_id):
        return jsonify(error="id must be 8-64 letters, digits, - or _"), 400
    text = body.get("text") or ""
    payload = body.get("payload")
    start = body.get("start")
    if not isinstance(text, str) or (payload is not None and not isinstance(payload, str)) \
            or (start is not None and not isinstance(start, str)):
        return jsonify(error="text, payload and start must be strings"), 400
    refused = _too_fast("message")
    if refused is not None:
        return refused
    return _accept(client_id, text=text[:MAX_TEXT], payload=payload[:200] if payload else None,
                   start_param=start[:64] or None if start else None)


@bp.post("/api/photos")
def post_photos() -> Any:
    """Accept one or several photos sent together; they join the same report."""
    client_id = request.form.get("id", "")
    if not _CLIENT_ID.match(client_id):
        return jsonify(error="id must be 8-64 letters, digits, - or _"), 400
    refused = _too_fast("photo")
    if refused is not None:
        return refused
    limit = current_app.extensions["duan8.config"].max_photo_bytes
    photos, oversize = [], 0
    for upload in request.files.getlist("photo")[:MAX_PHOTOS_PER_POST]:
        data = upload.stream.read(limit + 1)
        if len(data) > limit:
            oversize += 1
            continue
        photos.append(IncomingPhoto(data, upload.mimetype or ""))
    if not photos and not oversize:
        return jsonify(error="no photo in the form field 'photo'"), 400
    return _accept(client_id, photos=tuple(photos), oversize_photos=oversize,
                   text=request.form.get("text", "")[:MAX_TEXT])


@bp.get("/api/messages")
def get_messages() -> Any:
    """Replies delivered to this visitor after `after`, and whether more are on the way."""
    after = request.args.get("after", "0")
    if not _AFTER.fullmatch(after):
        return jsonify(error="after must be a message id (a whole number)"), 400
    after_id = int(after)
    rows, pending = ChannelPort(current_app.extensions["duan8.db"]).delivered(
        CHANNEL, _visitor(), after_id)
    return jsonify(pending=pending, messages=[
        {"id": row.id, "text": row.payload.get("text", ""),
         "buttons": row.payload.get("buttons", []),
         "at": (row.sent_at or utcnow()).isoformat()}
        for row in rows
    ])


@bp.post("/api/signout")
def sign_out() -> Any:
    """"Thoát" on a shared phone: forget this browser's visitor, so the next person starts a
    conversation of their own and sees none of this one. The member's data stays theirs: they
    come back through their own chat app or a link code.

    Only a JSON request is taken: a form posted from another site cannot sign anyone out.
    """
    if not request.is_json:
        abort(415)
    session.clear()
    return "", 204


def init_app(app: Flask) -> None:
    """Register the page and API on an app that already has its database and dispatcher."""
    app.register_blueprint(bp)
