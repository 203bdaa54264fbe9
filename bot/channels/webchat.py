"""Web chat: a small page and its JSON API, the channel that works with no platform token."""

from __future__ import annotations

import logging
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

from bot.channels.port import ChannelPort, utcnow
from bot.dispatcher import Dispatcher, Incoming, IncomingPhoto
from messages_vi import _, normalise_locale, render

log = logging.getLogger(__name__)

CHANNEL = "webchat"
bp = Blueprint("webchat", __name__, url_prefix="/chat")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_TEXT = 5000
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
}


def _dispatcher() -> Dispatcher:
    return current_app.extensions["duan8.dispatcher"]


def _visitor() -> str:
    """A random id kept in the signed session cookie: the web chat's "platform user id"."""
    visitor = session.get("webchat_id")
    if not isinstance(visitor, str):
        visitor = secrets.token_urlsafe(18)
        session["webchat_id"] = visitor
        session.permanent = True
    return visitor


def _locale() -> str:
    # Vietnamese unless asked otherwise: cheap phones often report English by default.
    return normalise_locale(request.args.get("lang"))


@bp.get("")
def page() -> Any:
    """The chat page: plain HTML, CSS and JS, light enough for a cheap phone on weak signal."""
    _visitor()
    locale = _locale()
    words = {key: render(text, locale) for key, text in PAGE_WORDS.items()}
    urls = {"messages": url_for("webchat.post_message"), "photos": url_for("webchat.post_photos")}
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
    if not isinstance(text, str) or (payload is not None and not isinstance(payload, str)):
        return jsonify(error="text and payload must be strings"), 400
    outcome = _dispatcher().dispatch(Incoming(
        channel=CHANNEL, external_id=_visitor(), event_id=client_id, text=text[:MAX_TEXT],
        payload=payload[:200] if payload else None, locale=_locale(),
        start_param=(body.get("start") or None) if isinstance(body.get("start"), str) else None,
    ))
    return jsonify(accepted=True, duplicate=outcome.duplicate), 202


@bp.post("/api/photos")
def post_photos() -> Any:
    """Accept one or several photos sent together; they join the same report."""
    client_id = request.form.get("id", "")
    if not _CLIENT_ID.match(client_id):
        return jsonify(error="id must be 8-64 letters, digits, - or _"), 400
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
    outcome = _dispatcher().dispatch(Incoming(
        channel=CHANNEL, external_id=_visitor(), event_id=client_id, photos=tuple(photos),
        oversize_photos=oversize, text=request.form.get("text", "")[:MAX_TEXT],
        locale=_locale(),
    ))
    return jsonify(accepted=True, duplicate=outcome.duplicate), 202


@bp.get("/api/messages")
def get_messages() -> Any:
    """Replies delivered to this visitor after `after`, and whether more are on the way."""
    after = request.args.get("after", "0")
    after_id = int(after) if after.isdigit() else 0
    rows, pending = ChannelPort(current_app.extensions["duan8.db"]).delivered(
        CHANNEL, _visitor(), after_id)
    return jsonify(pending=pending, messages=[
        {"id": row.id, "text": row.payload.get("text", ""),
         "buttons": row.payload.get("buttons", []),
         "at": (row.sent_at or utcnow()).isoformat()}
        for row in rows
    ])


def init_app(app: Flask) -> None:
    """Register the page and API on an app that already has its database and dispatcher."""
    app.register_blueprint(bp)
