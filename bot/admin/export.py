"""The province's workbook and the reports as CSV, from the web, for the reader's own area.

The same writers as `duan8 export` (bot/export_book.py). The area is checked in the query
(another district's code is a 404) and each download is written to the audit log with the
officer's name. A workbook is built in a temporary file, which is gone once sent; CSV is
streamed as it is read, so a large area never sits in memory.
"""

from __future__ import annotations

import tempfile
from datetime import date
from typing import Any

from flask import Response, abort, render_template, send_file, stream_with_context
from flask_login import login_required

from bot.admin.common import bp, config, database, me, reading
from bot.admin.forms import ExportForm, LogoutForm
from bot.export_book import ExportRequest, csv_chunks, write_xlsx
from storage import admin_views
from storage.models import utcnow
from storage.progress import ReportPeriod

# A range longer than this is refused: the workbook's sheets are built for a reporting year.
LONGEST_RANGE_DAYS = 3 * 366


def _readers_only() -> None:
    if not me().reads_reports:
        abort(404)


def _period(form: ExportForm) -> tuple[ReportPeriod, str] | None:
    """The period the form asks for, or None when it is not a valid one."""
    if form.period.data == "year":
        year = form.year.data
        if year is None:
            return None
        if form.update_window.data:
            return ReportPeriod.update_window(year, config().tz), f"{year} (update window)"
        return ReportPeriod.year(year), str(year)
    start, end = form.start.data, form.end.data
    if not isinstance(start, date) or not isinstance(end, date) or end < start:
        return None
    if (end - start).days > LONGEST_RANGE_DAYS:
        return None
    return ReportPeriod(start, end), f"{start.isoformat()}..{end.isoformat()}"


def _page(form: ExportForm, *, error: bool = False, status: int = 200) -> Any:
    with reading() as session:
        areas = admin_views.scope_choices(session, me().scope)
    today = utcnow().astimezone(config().tz).date()
    return render_template("admin/export.html", form=form, areas=areas, error=error,
                           years=list(range(today.year, today.year - 6, -1)),
                           me=me(), logout_form=LogoutForm()), status


@bp.get("/export")
@login_required
def export_page() -> Any:
    _readers_only()
    return _page(ExportForm())


@bp.post("/export")
@login_required
def export_download() -> Any:
    _readers_only()
    form = ExportForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _page(form, error=True, status=422)
    period = _period(form)
    if period is None:
        return _page(form, error=True, status=422)
    report_period, label = period
    with reading() as session:
        area_code = admin_views.area_code_in_scope(session, me().scope, form.area.data)
    if area_code is None:
        abort(404)
    fmt = str(form.fmt.data)
    request = ExportRequest(period=report_period, actor=f"admin:{me().username}",
                            area_code=area_code or None, fmt=fmt, label=label)
    name = f"duan8-{area_code or 'tinh'}-{label.replace('..', '_').replace(' ', '-')}"
    name = "".join(c for c in name if c.isalnum() or c in "-_.")[:80]
    if fmt == "csv":
        return _csv(request, f"{name}.csv")
    return _xlsx(request, f"{name}.xlsx")


def _xlsx(request: ExportRequest, filename: str) -> Any:
    # An unnamed temporary file: nothing is left on disk whatever happens to the request.
    # send_file closes it when the response is done, so no context manager here.
    sink = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        with database().transaction() as session:
            write_xlsx(session, request, sink)  # records the export in the audit log
    except BaseException:
        sink.close()
        raise
    sink.seek(0)
    return send_file(sink, as_attachment=True, download_name=filename, mimetype=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))


def _csv(request: ExportRequest, filename: str) -> Response:
    def body() -> Any:
        # The audit line is written with the last row: an interrupted download leaves none.
        with database().transaction() as session:
            yield from csv_chunks(session, request)

    response = Response(stream_with_context(body()), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
