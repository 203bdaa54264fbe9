"""`duan8 export`: every sheet's figures checked against the reports inserted, CSV, an empty
area, the update window, and the progress figures as a property over random reports."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cli_helpers import run_duan8, without
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import delete, select

from storage.db import Database
from storage.export import deadline_periods
from storage.models import (
    ActivityType,
    Area,
    AuditLog,
    Indicator,
    IndicatorTarget,
    Media,
    Report,
    Team,
    TeamKind,
)
from storage.progress import ReportPeriod, indicator_progress


def cli(db_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` on the database `db_url`, run in this process."""
    env = without({"PLAN_FILE", "TZ_NAME", "PORT", "SECRET_KEY", "DUAN8_ENV_FILE"},
                  DATABASE_URL=db_url, DUAN8_INSTANCE=str(tmp_path / "instance"))
    return run_duan8(*args, cwd=tmp_path, env=env)


def _ids(session: Any, model: Any) -> dict[str, int]:
    return {code: id_ for id_, code in session.execute(select(model.id, model.code))}


def seed(db: Database) -> dict[str, Any]:
    """Four teams, six reports; the expected figures are written out in the tests."""
    with db.transaction() as session:
        areas, kinds, types = _ids(session, Area), _ids(session, TeamKind), _ids(
            session, ActivityType)
        teams = {}
        for code, name, kind, area in [
            ("t1", "Tổ truyền thông Tà Lú 1", "communication", "nt.bac-ai.phuoc-dai.ta-lu-1"),
            ("t2", "Tổ truyền thông Bắc Sơn", "communication", "nt.thuan-bac.bac-son"),
            ("t3", "CLB Phước Đại", "leaders_club", "nt.bac-ai.phuoc-dai"),
            ("t4", "Tổ truyền thông Vĩnh Hải", "communication", "nt.ninh-hai.vinh-hai"),
        ]:
            team = Team(code=code, name=name, name_folded=code, kind_id=kinds[kind],
                        area_id=areas[area])
            session.add(team)
            session.flush()
            teams[code] = team.id
        received = datetime(2025, 12, 31, 5, tzinfo=UTC)
        late = datetime(2026, 2, 1, 5, tzinfo=UTC)
        # number, team, type, date, area, total, women, ethnic, children, status, received
        rows: list[Any] = [
            ("BC-1", "t1", "direct_communication", date(2025, 3, 5),
             "nt.bac-ai.phuoc-dai.ta-lu-1", 1234, 700, 1000, 12, "submitted", received),
            ("BC-2", "t1", "policy_dialogue", date(2025, 10, 1), None, 40, 20, 30, 0,
             "accepted", received),
            ("BC-3", "t2", "training", date(2025, 6, 1), "nt.thuan-bac.bac-son", 25, 25, 25, 0,
             "submitted", received),
            ("BC-4", "t2", "training", date(2024, 5, 1), "nt.thuan-bac.bac-son", 12, 10, 12, 0,
             "submitted", received),
            ("BC-5", "t3", "club_meeting", date(2025, 2, 1), "nt.bac-ai.phuoc-dai", 30, 15,
             30, 30, "returned", received),
            ("BC-6", "t1", "policy_dialogue", date(2025, 12, 31), None, 50, 25, 40, 0,
             "submitted", late),
        ]
        for number, team_code, kind, day, place, total, women, ethnic, children, status, at in (
                rows):
            report = Report(number=number, team_id=teams[team_code],
                            activity_type_id=types[kind], activity_date=day,
                            area_id=areas[place] if place else None,
                            total=total, women=women, ethnic=ethnic, children=children,
                            topic_text="Bình đẳng giới", notes="secret note 0912345678",
                            status=status, created_at=at)
            session.add(report)
            session.flush()
            if number == "BC-1":
                for k in range(2):
                    session.add(Media(report_id=report.id, storage_key=f"k{k}",
                                      content_type="image/jpeg", size=1, sha256="0" * 64))
        indicator = session.scalar(select(Indicator).where(
            Indicator.code == "communication_teams"))
        assert indicator is not None
        session.add(IndicatorTarget(indicator_id=indicator.id, area_id=areas["nt.bac-ai"],
                                    target=20))
    return teams


def sheet_rows(path: Path, title: str) -> list[tuple[Any, ...]]:
    book = load_workbook(path)
    return [tuple(row) for row in book[title].iter_rows(values_only=True)]


def indicator_table(path: Path) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
    rows = sheet_rows(path, "Chỉ tiêu theo địa bàn")
    assert rows[0] == ("Chỉ tiêu", "Đơn vị tính", "Địa bàn", "Cấp", "Đạt được",
                       "Chỉ tiêu giao", "Tỷ lệ đạt")
    return {(r[0], r[2].strip()): (r[4], r[5], None if r[6] is None else round(r[6], 9))
            for r in rows[1:]}


def pct(achieved: int, target: int) -> float:
    return round(achieved / target, 9)


def test_workbook_sheets_match_the_reports(plan_db: Database, db_url: str,
                                           tmp_path: Path) -> None:
    seed(plan_db)
    out = tmp_path / "bao-cao-2025.xlsx"
    result = cli(db_url, tmp_path, "export", "--year", "2025", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "5 reports" in result.stdout

    table = indicator_table(out)
    teams, clubs = "Tổ truyền thông cộng đồng", "CLB Thủ lĩnh của sự thay đổi"
    dialogues, cadres = ("Đối thoại chính sách cấp xã và cụm thôn",
                         "Cán bộ nữ DTTS được nâng cao năng lực")
    assert table[(teams, "Ninh Thuận")] == (2, 77, pct(2, 77))
    assert table[(teams, "Bác Ái")] == (1, 20, pct(1, 20))
    assert table[(teams, "Phước Đại")] == (1, None, None)
    assert table[(teams, "Thuận Bắc")] == (1, None, None)
    assert table[(teams, "Ninh Hải")] == (0, None, None)  # its team sent nothing
    assert table[(clubs, "Ninh Thuận")] == (0, 15, 0)  # the only club report was returned
    assert table[(dialogues, "Bác Ái")] == (2, None, None)  # placed by the team's village
    assert table[(dialogues, "Ninh Thuận")] == (2, 38, pct(2, 38))
    # Counted from the phase's start: the 2024 training counts too (women: 25 + 10).
    assert table[(cadres, "Ninh Thuận")] == (35, 30, pct(35, 30))
    assert table[(cadres, "Bắc Sơn")] == (35, None, None)
    # Communes are listed under their district, villages are not listed.
    names = [key[1] for key in table if key[0] == teams]
    assert names.index("Bác Ái") < names.index("Phước Đại") < names.index("Thuận Bắc")
    assert "Tà Lú 1" not in names

    completeness = sheet_rows(out, "Mức độ đầy đủ")
    got = {(r[0], r[5]): (r[1], r[2], r[6], r[7]) for r in completeness[1:]}
    annual, update = ("Báo cáo kết quả thực hiện Dự án 8 hàng năm gửi Hội LHPN tỉnh",
                      "Cập nhật, bổ sung số liệu năm trước")
    start_a, due_a = datetime(2024, 9, 11), datetime(2025, 9, 10)
    start_u, due_u = datetime(2024, 1, 26), datetime(2025, 1, 25)
    assert got == {
        (annual, "Tổ truyền thông Tà Lú 1"): (start_a, due_a, 1, "có"),
        (annual, "Tổ truyền thông Bắc Sơn"): (start_a, due_a, 1, "có"),
        (annual, "CLB Phước Đại"): (start_a, due_a, 0, "không"),
        (annual, "Tổ truyền thông Vĩnh Hải"): (start_a, due_a, 0, "không"),
        (update, "Tổ truyền thông Tà Lú 1"): (start_u, due_u, 0, "không"),
        (update, "Tổ truyền thông Bắc Sơn"): (start_u, due_u, 1, "có"),
        (update, "CLB Phước Đại"): (start_u, due_u, 0, "không"),
        (update, "Tổ truyền thông Vĩnh Hải"): (start_u, due_u, 0, "không"),
    }

    reports = sheet_rows(out, "Báo cáo")
    assert reports[0] == ("Số báo cáo", "Ngày hoạt động", "Huyện", "Xã", "Thôn", "Tổ/nhóm",
                          "Loại hoạt động", "Chủ đề", "Số người tham gia",
                          "Phụ nữ và trẻ em gái", "Người DTTS", "Trẻ em", "Ảnh", "Trạng thái")
    assert [r[0] for r in reports[1:]] == ["BC-5", "BC-1", "BC-3", "BC-2", "BC-6"]
    first = reports[2]
    assert first == ("BC-1", datetime(2025, 3, 5), "Bác Ái", "Phước Đại", "Tà Lú 1",
                     "Tổ truyền thông Tà Lú 1", "Truyền thông trực tiếp tại cộng đồng",
                     "Bình đẳng giới", 1234, 700, 1000, 12, 2, "đã nhận")
    assert reports[4][2:5] == ("Bác Ái", "Phước Đại", "Tà Lú 1")  # the team's village
    text = repr(reports)
    assert "secret" not in text and "0912345678" not in text

    book = load_workbook(out)
    sheet = book["Báo cáo"]
    assert sheet.freeze_panes == "A2"
    assert sheet["I3"].number_format.count('"."') == 3  # 1.234 with a literal dot
    assert sheet["B3"].number_format == "DD/MM/YYYY"
    assert sheet.column_dimensions["F"].width == 24

    with plan_db.sessions() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "report.export"))
        entries = list(audit)
    assert len(entries) == 1
    assert entries[0].actor.startswith("cli")
    assert entries[0].detail["reports"] == 5 and entries[0].detail["area"] == "nt"


def test_update_window_leaves_out_what_came_after_25_january(
        plan_db: Database, tmp_path: Path) -> None:
    seed(plan_db)
    from zoneinfo import ZoneInfo

    period = ReportPeriod.update_window(2025, ZoneInfo("Asia/Ho_Chi_Minh"))
    assert period.received_before == datetime(2026, 1, 25, 17, tzinfo=UTC)
    with plan_db.sessions() as session:
        figures = {p.code: p.figures[0].achieved for p in indicator_progress(session, period)}
        year = {p.code: p.figures[0].achieved
                for p in indicator_progress(session, ReportPeriod.year(2025))}
    assert year["policy_dialogues"] == 2 and figures["policy_dialogues"] == 1


def test_csv_has_a_bom_and_the_reports(plan_db: Database, db_url: str, tmp_path: Path) -> None:
    seed(plan_db)
    out = tmp_path / "bac-ai.csv"
    result = cli(db_url, tmp_path, "export", "--from", "01/01/2025", "--to", "30/06/2025",
                 "--area", "nt.bac-ai", "--out", str(out))
    assert result.returncode == 0, result.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "Số báo cáo" and rows[0][-1] == "Trạng thái"
    assert [r[0] for r in rows[1:]] == ["BC-5", "BC-1"]
    assert rows[2][1] == "05/03/2025" and rows[2][8:13] == ["1234", "700", "1000", "12", "2"]
    assert rows[1][-1] == "bị trả lại"


def test_area_with_no_reports_is_a_valid_export(plan_db: Database, db_url: str,
                                                tmp_path: Path) -> None:
    seed(plan_db)
    for fmt in ("xlsx", "csv"):
        out = tmp_path / f"ninh-hai.{fmt}"
        result = cli(db_url, tmp_path, "export", "--year", "2025", "--area", "nt.ninh-hai",
                     "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert "no reports in Ninh Hải" in result.stdout
        if fmt == "xlsx":
            reports = sheet_rows(out, "Báo cáo")
            assert reports[1][0] == "Không có báo cáo nào tại Ninh Hải trong kỳ này."
            assert len(reports) == 2
            table = indicator_table(out)
            assert {k[1] for k in table} == {"Ninh Hải", "Vĩnh Hải"}
            assert all(v[0] == 0 for v in table.values())
        else:
            text = out.read_text(encoding="utf-8-sig")
            assert "Không có báo cáo nào tại Ninh Hải trong kỳ này." in text


def test_bad_arguments_write_nothing(plan_db: Database, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "x.xlsx"
    unknown = cli(db_url, tmp_path, "export", "--year", "2025", "--area", "nt.nowhere",
                  "--out", str(out))
    assert unknown.returncode == 2 and "nt.nowhere" in unknown.stderr
    both = cli(db_url, tmp_path, "export", "--year", "2025", "--from", "01/01/2025",
               "--out", str(out))
    assert both.returncode == 2
    assert not out.exists() and list(tmp_path.glob(".x.xlsx*")) == []


def test_deadline_periods() -> None:
    assert deadline_periods("yearly", 9, 10, date(2025, 1, 1), date(2025, 12, 31)) == [
        (date(2024, 9, 11), date(2025, 9, 10))]
    assert deadline_periods("monthly", None, 31, date(2025, 2, 1), date(2025, 3, 31)) == [
        (date(2025, 2, 1), date(2025, 2, 28)), (date(2025, 3, 1), date(2025, 3, 31))]


PLACES = ["nt.bac-ai.phuoc-dai.ta-lu-1", "nt.bac-ai.phuoc-tien", "nt.thuan-bac.bac-son",
          "nt.ninh-hai.vinh-hai"]
TYPES = ["policy_dialogue", "training", "direct_communication"]


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(PLACES), st.sampled_from(TYPES),
                          st.integers(0, 2000), st.integers(2021, 2026),
                          st.sampled_from(["submitted", "returned"])), max_size=25))
def test_progress_equals_a_count_by_hand(plan_db: Database, reports: list[Any]) -> None:
    """For any reports, each area's dialogues and trained women are what counting gives."""
    with plan_db.transaction() as session:
        session.execute(delete(Report))
        areas, types = _ids(session, Area), _ids(session, ActivityType)
        for n, (place, kind, women, year, status) in enumerate(reports):
            session.add(Report(number=f"P-{n}", activity_type_id=types[kind],
                               activity_date=date(year, 6, 1), area_id=areas[place],
                               total=women, women=women, status=status))
    with plan_db.sessions() as session:
        progress = {p.code: p for p in indicator_progress(session, ReportPeriod.year(2025))}
    for area_code in ("nt", "nt.bac-ai", "nt.bac-ai.phuoc-dai", "nt.thuan-bac",
                      "nt.ninh-hai.vinh-hai"):
        inside = [r for r in reports if (r[0] + ".").startswith(area_code + ".")
                  and 2022 <= r[3] <= 2025 and r[4] == "submitted"]
        dialogues = sum(1 for r in inside if r[1] == "policy_dialogue")
        women = sum(r[2] for r in inside if r[1] == "training")
        for code, expected in (("policy_dialogues", dialogues),
                               ("women_cadres_trained", women)):
            figure = next(f for f in progress[code].figures if f.area.code == area_code)
            assert figure.achieved == expected, (code, area_code)


def test_reports_past_a_full_sheet_continue_on_the_next(
        plan_db: Database, tmp_path: Path, monkeypatch: Any) -> None:
    from bot import export_book

    seed(plan_db)
    monkeypatch.setattr(export_book, "SHEET_ROWS", 2)
    out = tmp_path / "split.xlsx"
    with plan_db.transaction() as session:
        summary = export_book.write_xlsx(session, export_book.ExportRequest(
            ReportPeriod.year(2025), actor="test"), str(out))
    assert summary.reports == 5
    numbers = [[r[0] for r in sheet_rows(out, title)[1:]]
               for title in ("Báo cáo", "Báo cáo (2)", "Báo cáo (3)")]
    assert numbers == [["BC-5", "BC-1"], ["BC-3", "BC-2"], ["BC-6"]]


def test_export_answers_help(db_url: str, tmp_path: Path) -> None:
    result = cli(db_url, tmp_path, "export", "--help")
    assert result.returncode == 0
    for option in ("--year", "--update-window", "--from", "--to", "--area", "--format",
                   "--out"):
        assert option in result.stdout


@given(st.sampled_from(["yearly", "monthly"]), st.integers(1, 12), st.integers(1, 31),
       st.dates(date(2022, 1, 1), date(2026, 12, 31)), st.integers(0, 800))
def test_deadline_periods_tile_the_days_before_each_due_date(
        recurrence: str, month: int, day: int, start: date, length: int) -> None:
    import calendar
    import itertools
    from datetime import timedelta

    if recurrence == "yearly":
        day = min(day, calendar.monthrange(2023, month)[1])
    end = start + timedelta(days=length)
    periods = deadline_periods(recurrence, month if recurrence == "yearly" else None, day,
                               start, end)
    for first, due in periods:
        assert start <= due <= end and first <= due
        assert due.day == day or due.day == calendar.monthrange(due.year, due.month)[1]
    for (_first, due), (following, _due) in itertools.pairwise(periods):
        assert following == due + timedelta(days=1)  # no day in two periods, none lost
    span = 366 if recurrence == "yearly" else 31
    assert all((due - first).days < span for first, due in periods)
