"""The dashboard: progress against the plan's targets, participants, completeness, latest
reports with their photos as small thumbnails.

Thumbnails are made with Pillow on first request, kept under the instance folder, and served
through the same area check as the photo itself: a reader who may not see a photo gets 404
for its thumbnail too, and nobody gets the original through this route.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from flask import abort, redirect, render_template, send_file, url_for
from flask_login import login_required
from PIL import Image, ImageOps

from bot.admin.common import audit, bp, config, me, writing
from bot.admin.pages import (
    _common,
    _date_arg,
    _sees_identifiable,
    _stored_photo,
    _today,
)
from storage import admin_dashboard, admin_views
from storage.admin_views import AdminRole, ReportFilters
from storage.progress import ReportPeriod, indicator_progress, phase_start, report_rollup

log = logging.getLogger(__name__)

THUMB_SIDE = 240
LATEST = 10


@bp.get("/")
@login_required
def dashboard() -> Any:
    if me().role == AdminRole.SAFEGUARDING:
        return redirect(url_for("admin.cases"))
    today = _today()
    since, until = admin_views.default_period(today)
    since = _date_arg("from") or since
    until = _date_arg("to") or until
    scope = me().scope
    with writing() as session:
        try:
            tree = admin_dashboard.scope_tree(session, scope)
        except LookupError:  # no plan loaded yet: nothing to measure against
            figures, progress, completeness = [], [], []
        else:
            # One pass over the period's reports feeds both the bars and the participants.
            period = ReportPeriod(since, until)
            rollup = report_rollup(session, period, phase_start(session))
            figures = admin_dashboard.participants(tree, rollup)
            progress = indicator_progress(session, period, area_code=tree[0].code,
                                          rollup=rollup)
            completeness = admin_dashboard.completeness(session, scope, tree, today)
        latest, _more = admin_views.list_reports(session, scope, ReportFilters(), page=0)
        latest = latest[:LATEST]
        photos = admin_dashboard.visible_photos(session, scope, [r.id for r in latest],
                                                sees_identifiable=_sees_identifiable())
        audit(session, "admin.dashboard")
    top = max([f.total for f in figures] + [1])
    # The reader's own area and the areas one level under it; deeper ones are on the export.
    progress_rows = [(p, [f for f in p.figures if f.area.depth <= 1]) for p in progress]
    return render_template("admin/dashboard.html", figures=figures, top=top, latest=latest,
                           photos=photos, progress=progress_rows, completeness=completeness,
                           since=since, until=until, **_common())


def _thumbnail(original: Path, cache: Path) -> Path:
    """A small JPEG of a photo, made once and kept; never the original itself."""
    if cache.is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(original) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((THUMB_SIDE, THUMB_SIDE))
    fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, "JPEG", quality=75)
        os.replace(tmp, cache)  # two requests at once both write whole files; one wins
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return cache


@bp.get("/thumbs/<int:media_id>")
@login_required
def thumbnail(media_id: int) -> Any:
    key, original, _content_type = _stored_photo(media_id, "photo.thumbnail")
    name = hashlib.sha256(key.encode()).hexdigest()
    cache = config().instance_path / "thumbs" / name[:2] / f"{name}.jpg"
    try:
        path = _thumbnail(original, cache)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # not a picture
        log.warning("no thumbnail for media %s: %s", media_id, exc)
        abort(404)
    return send_file(path, mimetype="image/jpeg", max_age=0)
