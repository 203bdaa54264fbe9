"""The province's report as a workbook (indicators by area, completeness, the reports) or as
CSV (the reports), written as rows arrive so memory stays flat at any number of reports.

The command line (`duan8 export`) and the admin web call the same functions. The web must
refuse an area outside the officer's own before calling them (a 404, as for its pages); here
any area is allowed, as for every command-line user.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy.orm import Session

from messages_vi import Text, _, render
from storage.export import (
    ExportReport,
    count_reports,
    export_reports,
    record_export,
    teams_reporting_per_deadline_period,
)
from storage.progress import AreaNode, ReportPeriod, area_subtree, indicator_progress

# Whole numbers with "." between thousands whatever the reader's Excel locale (the literal
# dots are in the format itself); below 1.000 a plain number.
THOUSANDS = '[>=1000000]#"."###"."##0;[>=1000]#"."##0;0'
DATE_FORMAT = "DD/MM/YYYY"
PERCENT = "0%"
LOCALE = "vi"
# Excel's last row is 1.048.576: more reports continue on "Báo cáo (2)" and so on.
SHEET_ROWS = 1_048_575

REPORT_COLUMNS: list[tuple[Text, float]] = [
    (_("Report number"), 12), (_("Activity date"), 12), (_("District"), 14),
    (_("Commune"), 14), (_("Village"), 16), (_("Team"), 24), (_("Activity type"), 32),
    (_("Topic"), 32), (_("Participants"), 12), (_("Women and girls"), 12),
    (_("Ethnic minority"), 12), (_("Children"), 10), (_("Photos"), 8), (_("Status"), 12),
]
STATUS_NAMES = {"submitted": _("received"), "accepted": _("accepted"),
                "returned": _("returned")}


@dataclass(frozen=True)
class ExportRequest:
    period: ReportPeriod
    actor: str
    area_code: str | None = None
    fmt: str = "xlsx"
    label: str = ""


@dataclass
class ExportSummary:
    area_code: str
    area_name: str
    reports: int = 0
    teams: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.reports == 0


def _t(text: Text) -> str:
    return render(text, LOCALE)


def _status(value: str) -> str:
    return _t(STATUS_NAMES[value]) if value in STATUS_NAMES else value


def report_cells(row: ExportReport) -> list[Any]:
    """A report's values in REPORT_COLUMNS order (dates as dates)."""
    return [row.number, row.activity_date, row.district, row.commune, row.village, row.team,
            row.activity_type, row.topic, row.total, row.women, row.ethnic, row.children,
            row.photos, _status(row.status)]


def _sheet(book: Workbook, title: str, columns: Sequence[tuple[Text, float]]) -> WriteOnlyWorksheet:
    sheet = book.create_sheet(title)
    for index, (_name, width) in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name, _width in columns:
        cell = WriteOnlyCell(sheet, _t(name))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    return sheet


def _cell(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    """Numbers and dates get their formats; text goes in as it is."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, value)
    if isinstance(value, date):
        cell.number_format = DATE_FORMAT
    elif isinstance(value, float):
        cell.number_format = PERCENT
    else:
        cell.number_format = THOUSANDS
    return cell


def _refill(sheet: WriteOnlyWorksheet, styled: dict[int, Any], index: int, value: Any) -> Any:
    """`_cell`, reusing the column's formatted cell: the writer serialises each row as it is
    appended, so one cell per column serves every row and its style is looked up once."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    cell = styled.get(index)
    if cell is None:
        cell = styled[index] = _cell(sheet, value)
    cell.value = value
    return cell


def _empty_note(summary: ExportSummary) -> str:
    return _t(_("No reports in {area} for this period.", area=summary.area_name))


def write_xlsx(session: Session, request: ExportRequest, out: IO[bytes] | str,
               progress: Callable[[int, int], None] | None = None) -> ExportSummary:
    """Write the workbook to `out` (a path or a binary file), calling progress(done, total)
    every few thousand reports, and record the export in the audit log."""
    tree = area_subtree(session, request.area_code)
    summary = ExportSummary(tree[0].code, tree[0].name)
    book = Workbook(write_only=True)
    _indicator_sheet(session, book, tree, request)
    summary.teams = _completeness_sheet(session, book, tree, request)
    title = _t(_("Reports"))
    sheet = _sheet(book, title, REPORT_COLUMNS)
    total = count_reports(session, tree, request.period)
    styled: dict[int, Any] = {}  # one formatted cell per column, refilled for every row
    for row in export_reports(session, tree, request.period):
        if summary.reports and summary.reports % SHEET_ROWS == 0:  # a sheet is full
            sheet = _sheet(book, f"{title} ({summary.reports // SHEET_ROWS + 1})",
                           REPORT_COLUMNS)
            styled = {}
        sheet.append([_refill(sheet, styled, index, value)
                      for index, value in enumerate(report_cells(row))])
        summary.reports += 1
        if progress is not None and summary.reports % 5000 == 0:
            progress(summary.reports, total)
    if summary.empty:
        sheet.append([_empty_note(summary)])
    if progress is not None:
        progress(summary.reports, total)
    book.save(out)
    _record(session, request, summary)
    return summary


def _indicator_sheet(session: Session, book: Workbook, tree: list[AreaNode],
                     request: ExportRequest) -> None:
    columns = [(_("Indicator"), 40), (_("Unit"), 10), (_("Area"), 28), (_("Level"), 10),
               (_("Achieved"), 12), (_("Target"), 12), (_("Share of target"), 12)]
    sheet = _sheet(book, _t(_("Indicators")), columns)
    levels = {"province": _("province"), "district": _("district"), "commune": _("commune")}
    for indicator in indicator_progress(session, request.period, area_code=request.area_code,
                                        levels=("province", "district", "commune")):
        for figure in indicator.figures:
            area = figure.area
            name = "    " * area.depth + area.name  # communes indented under their district
            level = levels.get(area.level)
            sheet.append([_cell(sheet, v) for v in (
                indicator.name, indicator.unit, name, _t(level) if level else area.level,
                figure.achieved, figure.target, figure.ratio)])


def _completeness_sheet(session: Session, book: Workbook, tree: list[AreaNode],
                        request: ExportRequest) -> int:
    columns = [(_("Deadline"), 40), (_("Period from"), 12), (_("Due date"), 12),
               (_("District"), 14), (_("Commune"), 14), (_("Team"), 28),
               (_("Reports in the period"), 14), (_("Reported"), 10)]
    sheet = _sheet(book, _t(_("Completeness")), columns)
    by_id = {a.id: a for a in tree}
    teams: set[str] = set()
    period = request.period
    for line in teams_reporting_per_deadline_period(session, tree, period.start, period.end,
                                                    period.received_before):
        teams.add(line.team_code)
        district, commune = _district_commune(by_id, line.area_id)
        sheet.append([_cell(sheet, v) for v in (
            line.deadline, line.period_start, line.due, district, commune, line.team_name,
            line.reports, _t(_("yes")) if line.complete else _t(_("no")))])
    if not teams:
        sheet.append([_t(_("No teams or no deadline falls in this period."))])
    return len(teams)


def _district_commune(by_id: dict[int, AreaNode], area_id: int) -> tuple[str, str]:
    district = commune = ""
    node = by_id.get(area_id)
    while node is not None:
        if node.level == "district":
            district = node.name
        elif node.level == "commune":
            commune = node.name
        node = by_id.get(node.parent_id) if node.parent_id is not None else None
    return district, commune


def csv_chunks(session: Session, request: ExportRequest,
               progress: Callable[[int, int], None] | None = None,
               summary_out: list[ExportSummary] | None = None) -> Iterator[bytes]:
    """The reports as CSV, UTF-8 with a byte order mark so Excel reads Vietnamese, yielded in
    chunks a web response can stream; the export is recorded once the last row is out."""
    tree = area_subtree(session, request.area_code)
    summary = ExportSummary(tree[0].code, tree[0].name)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_t(name) for name, _width in REPORT_COLUMNS])
    yield "\ufeff".encode() + _drain(buffer)
    total = count_reports(session, tree, request.period) if progress is not None else 0
    for row in export_reports(session, tree, request.period):
        cells = report_cells(row)
        cells[1] = row.activity_date.strftime("%d/%m/%Y")
        writer.writerow(cells)
        summary.reports += 1
        if summary.reports % 1000 == 0:
            yield _drain(buffer)
            if progress is not None and summary.reports % 5000 == 0:
                progress(summary.reports, total)
    if summary.empty:
        writer.writerow([_empty_note(summary)])
    yield _drain(buffer)
    if progress is not None:
        progress(summary.reports, total)
    _record(session, request, summary)
    if summary_out is not None:
        summary_out.append(summary)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


def _record(session: Session, request: ExportRequest, summary: ExportSummary) -> None:
    period = request.period
    record_export(session, request.actor, {
        "area": summary.area_code, "format": request.fmt, "label": request.label,
        "start": period.start.isoformat(), "end": period.end.isoformat(),
        "received_before": (period.received_before.isoformat()
                            if period.received_before else None),
        "reports": summary.reports,
    })
