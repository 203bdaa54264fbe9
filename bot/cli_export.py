"""`duan8 export`: the province's report as an Excel workbook or CSV, for a year, the
data-update window or a date range, for the whole province or one area."""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path

import click

from bot.cli_common import Env, friendly, pass_env


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise click.BadParameter(f"{value!r} is not a date (dd/mm/yyyy or yyyy-mm-dd)",
                             param_hint=option)


def _actor() -> str:
    """Who exports: the operating-system user, or "cli" when there is none."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class _Bar:
    """A one-line progress bar on a terminal; nothing when the output is redirected."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        share = done / total if total else 1.0
        filled = int(share * 30)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} reports"
                         .replace(",", "."))
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


@click.command("export")
@click.option("--year", type=click.IntRange(2000, 2100), default=None,
              help="Reports dated in this calendar year.")
@click.option("--update-window", is_flag=True,
              help="With --year: the year's figures as they stood at the end of 25 January "
                   "of the next year (the plan's data-update deadline), in TZ_NAME.")
@click.option("--from", "start", default=None, metavar="DATE",
              help="Instead of --year: the first day (dd/mm/yyyy or yyyy-mm-dd).")
@click.option("--to", "end", default=None, metavar="DATE",
              help="Instead of --year: the last day, included.")
@click.option("--area", "area_code", default=None, metavar="CODE",
              help="Only this area and the areas under it (codes from `plan show --json`); "
                   "the whole province by default.")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None,
              help="xlsx: indicators, completeness and reports sheets; csv: the reports. "
                   "By default from the --out file's extension, else xlsx.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write; it appears only once complete.")
@pass_env
@friendly
def export(env: Env, year: int | None, update_window: bool, start: str | None,
           end: str | None, area_code: str | None, fmt: str | None, out: Path) -> None:
    """Write the report of a period: a workbook (or CSV) the province files, no retyping.

    The reports sheet has no member names, notes or phone numbers. Every export is written
    to the audit log with who ran it (the operating-system user).
    """
    from bot.export_book import ExportRequest, csv_chunks, write_xlsx
    from storage.progress import ReportPeriod

    first, last = _day(start, "--from"), _day(end, "--to")
    if year is not None and (first or last):
        raise click.UsageError("give either --year or --from/--to, not both")
    if year is None and not (first and last):
        raise click.UsageError("give --year YYYY, or both --from and --to")
    if update_window and year is None:
        raise click.UsageError("--update-window goes with --year")
    if year is not None:
        period = (ReportPeriod.update_window(year, env.config.tz) if update_window
                  else ReportPeriod.year(year))
        label = f"{year} (update window)" if update_window else str(year)
    else:
        assert first is not None and last is not None
        if last < first:
            raise click.BadParameter("is before --from", param_hint="--to")
        period = ReportPeriod(first, last)
        label = f"{first.isoformat()}..{last.isoformat()}"
    fmt = fmt or ("csv" if out.suffix.lower() == ".csv" else "xlsx")
    request = ExportRequest(period=period, actor=_actor(), area_code=area_code, fmt=fmt,
                            label=label)

    database = env.prepared_db()
    bar = _Bar()
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent or ".")
    try:
        with database.transaction() as session, os.fdopen(handle, "wb") as sink:
            try:
                if fmt == "xlsx":
                    summary = write_xlsx(session, request, sink, bar)
                else:
                    done: list = []
                    for chunk in csv_chunks(session, request, bar, done):
                        sink.write(chunk)
                    summary = done[0]
            except LookupError as exc:
                raise click.BadParameter(str(exc), param_hint="--area") from None
        os.replace(temporary, out)
    finally:
        bar.close()
        if os.path.exists(temporary):
            os.unlink(temporary)
    if summary.empty:
        click.echo(f"{out}: no reports in {summary.area_name} ({summary.area_code}) for "
                   f"{label}; the file says so.")
    else:
        click.echo(f"{out}: {summary.reports} reports, {summary.area_name} "
                   f"({summary.area_code}), {label}.")
