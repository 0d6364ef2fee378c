"""The safe writer: atomic replace, locks, growing tables/validations/formats, text as text."""

from __future__ import annotations

import datetime as dt
import os
import stat
import zipfile
from pathlib import Path

import openpyxl
import pytest
import python_calamine
import xlsxwriter

from aisdp_log.errors import WorkbookError, WriteRefused
from aisdp_log.workbook.writer import (
    append_row,
    ensure_sheet,
    find_rows,
    next_row,
    open_workbook_for_update,
    set_cell,
    stale_temp_files,
    write_value,
)

HEADERS = ["Experiment ID", "Date", "Score", "Comment", "Mine"]
FORMULA_LIKE = ['=HYPERLINK("http://x","y")', "+1", "@SUM(A1)", "-2", "=1+1"]


def styled_workbook(path: Path, rows: int = 2, *, table_rows: int | None = None) -> Path:
    """Experiments with a table, a list validation, a conditional format, a comment, number
    formats and a user's own sheet, as a person would set them up in Excel."""
    workbook = xlsxwriter.Workbook(str(path))
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    score_format = workbook.add_format({"num_format": "0.000"})
    red = workbook.add_format({"bg_color": "#FFC7CE"})
    sheet = workbook.add_worksheet("Experiments")
    for r in range(1, rows + 1):
        sheet.write_string(r, 0, f"EXP-{r:03d}")
        sheet.write_datetime(r, 1, dt.datetime(2026, 7, r), date_format)
        sheet.write_number(r, 2, 0.9 + r / 100, score_format)
        sheet.write_string(r, 3, "ok")
        sheet.write_string(r, 4, f"mine {r}")
    last = table_rows or rows
    sheet.add_table(0, 0, last, len(HEADERS) - 1, {
        "name": "Runs", "columns": [{"header": h} for h in HEADERS]})
    sheet.data_validation(1, 3, last, 3, {"validate": "list", "source": ["ok", "bad"]})
    sheet.conditional_format(1, 2, last, 2, {"type": "cell", "criteria": "<",
                                             "value": 0.5, "format": red})
    sheet.write_comment(1, 4, "a person's note")
    other = workbook.add_worksheet("My notes")
    other.write_string(0, 0, "keep me")
    workbook.close()
    return path


def test_append_grows_table_validation_and_format_and_copies_number_format(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx")
    with open_workbook_for_update(path) as wb:
        row = append_row(wb["Experiments"], {"experiment id": "EXP-003",
                                             "Date": dt.date(2026, 7, 9), "SCORE": 0.5})
    assert row == 4
    wb = openpyxl.load_workbook(path)
    ws = wb["Experiments"]
    assert ws.tables["Runs"].ref == "A1:E4"
    assert "D4" in ws.data_validations.dataValidation[0].sqref
    assert any("C4" in cf.sqref for cf in ws.conditional_formatting)
    assert ws["C4"].number_format == "0.000" and ws["C4"].value == 0.5
    assert ws["B4"].number_format == "yyyy-mm-dd" and ws["B4"].value == dt.datetime(2026, 7, 9)
    assert ws["E2"].comment.text.startswith("a person's note")
    assert ws["E3"].value == "mine 2" and ws["E4"].value is None
    assert wb["My notes"]["A1"].value == "keep me"


def test_next_row_is_first_empty_id_not_max_row(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx", rows=2, table_rows=20)
    with open_workbook_for_update(path) as wb:
        ws = wb["Experiments"]
        write_value(ws, 6, 3, 1.0)  # a draft below the data without an ID is never overwritten
        assert next_row(ws) == 4
        assert append_row(ws, {"Experiment ID": "EXP-003"}) == 4
        write_value(ws, 5, 1, "EXP-004")
        assert next_row(ws) == 7  # row 6 holds the draft
    # the padded table already covers the new rows: it is left as it was
    assert openpyxl.load_workbook(path)["Experiments"].tables["Runs"].ref == "A1:E21"


def test_formula_like_text_stays_text(tmp_path):
    import python_calamine

    path = styled_workbook(tmp_path / "log.xlsx")
    with open_workbook_for_update(path) as wb:
        ws = wb["Experiments"]
        rows = [append_row(ws, {"Experiment ID": f"F{i}", "Comment": text})
                for i, text in enumerate(FORMULA_LIKE)]
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in xml and b"<f " not in xml
    values = openpyxl.load_workbook(path, data_only=True)["Experiments"]
    formulas = openpyxl.load_workbook(path)["Experiments"]
    sheet = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(
        "Experiments").to_python()
    for row, text in zip(rows, FORMULA_LIKE):
        assert values.cell(row, 4).value == text
        assert formulas.cell(row, 4).data_type == "s"
        assert formulas.cell(row, 4).quotePrefix is text.startswith(("=", "+", "-", "@"))
        assert sheet[row - 1][3] == text


def test_exception_inside_leaves_file_untouched_and_no_temp(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx")
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with open_workbook_for_update(path) as wb:
            append_row(wb["Experiments"], {"Experiment ID": "EXP-003"})
            raise RuntimeError("caller failed")
    assert path.read_bytes() == before
    assert stale_temp_files(path) == []


def test_unknown_header_raises_and_writes_nothing(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx")
    before = path.read_bytes()
    with pytest.raises(KeyError):
        with open_workbook_for_update(path) as wb:
            append_row(wb["Experiments"], {"Experiment ID": "EXP-003", "Nope": 1})
    assert path.read_bytes() == before


def test_permissions_preserved(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx")
    os.chmod(path, 0o640)
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-003"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    # no temp, no lock: only aisdp-log's folder, which ignores itself in git
    assert sorted(p.name for p in tmp_path.iterdir()) == [".aisdp-log", "log.xlsx"]
    assert sorted(p.name for p in (tmp_path / ".aisdp-log").iterdir()) == [".gitignore"]


def test_symlinked_log_stays_a_symlink(tmp_path):
    real = styled_workbook(tmp_path / "real.xlsx")
    link = tmp_path / "link.xlsx"
    link.symlink_to(real)
    with open_workbook_for_update(link) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-003"})
    assert link.is_symlink()
    with open_workbook_for_update(real) as wb:
        assert find_rows(wb["Experiments"], "Experiment ID", "EXP-003") == [4]


def test_second_writer_waits_then_gives_up_naming_the_holder(tmp_path, monkeypatch, capfd):
    import threading

    path = styled_workbook(tmp_path / "log.xlsx")
    monkeypatch.setenv("AISDP_LOG_LOCK_WAIT", "0.3")
    refused = []

    def second_writer():  # another thread: the lock is re-entrant only within one thread
        try:
            with open_workbook_for_update(path):
                pass
        except WriteRefused as exc:
            refused.append(str(exc))

    with open_workbook_for_update(path):
        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join()
    assert len(refused) == 1 and f"aisdp-log pid {os.getpid()}" in refused[0]
    assert "waiting for" in capfd.readouterr().err
    with open_workbook_for_update(path):  # released after the first writer
        pass
    assert not (tmp_path / ".aisdp-log" / "log.xlsx.lock").exists()


def libreoffice_lock(path: Path) -> Path:
    lock = path.with_name(f".~lock.{path.name}#")
    lock.write_text(",Jane Doe,jdoe,labpc-7,26.11.2026 08:00,"
                    "file:///home/jdoe/.config/libreoffice/4;")
    return lock


def excel_owner_file(path: Path, user: str = "Kim Ng") -> Path:
    owner = path.with_name("~$" + path.name)
    ansi = user.encode("cp1252").ljust(53, b" ")
    owner.write_bytes(bytes([len(user)]) + ansi + bytes([len(user), 0])
                      + user.encode("utf-16-le") + b" \x00" * 10)
    return owner


@pytest.mark.parametrize("make_lock, holder", [(libreoffice_lock, "Jane Doe"),
                                               (excel_owner_file, "Kim Ng")])
def test_office_lock_refuses_naming_holder_and_force_overrides(tmp_path, make_lock, holder):
    path = styled_workbook(tmp_path / "log.xlsx")
    make_lock(path)
    before = path.read_bytes()
    with pytest.raises(WriteRefused) as refused:
        with open_workbook_for_update(path) as wb:
            append_row(wb["Experiments"], {"Experiment ID": "EXP-003"})
    assert holder in str(refused.value) and "--force" in str(refused.value)
    assert path.read_bytes() == before
    with open_workbook_for_update(path, force=True) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-003"})
    assert path.read_bytes() != before


def test_libreoffice_lock_names_host(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx")
    libreoffice_lock(path)
    with pytest.raises(WriteRefused, match="labpc-7"):
        with open_workbook_for_update(path):
            pass


def test_stale_temp_from_a_killed_writer_is_removed_by_next_write(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx")
    (tmp_path / ".log.xlsx.aisdp-lock").write_bytes(b"")  # a killed writer's lock file
    leftover = tmp_path / ".log.xlsx.k1ll3d.aisdp-tmp"
    leftover.write_bytes(b"PK half a workbook")
    unrelated = tmp_path / ".other.xlsx.k1ll3d.aisdp-tmp"
    unrelated.write_bytes(b"x")
    assert stale_temp_files(path) == [leftover]
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-003"})
    assert not leftover.exists() and unrelated.exists()
    assert not (tmp_path / ".log.xlsx.aisdp-lock").exists()


def test_temp_and_lock_of_a_killed_writer_in_the_tool_folder_are_removed(tmp_path, capfd):
    import json
    import socket

    path = styled_workbook(tmp_path / "log.xlsx")
    tools = tmp_path / ".aisdp-log"
    tools.mkdir()
    dead = {"pid": 2**22 + 12345, "host": socket.gethostname(), "user": "ana",
            "since": "2026-11-27T08:00:00Z"}
    (tools / "log.xlsx.lock").write_text(json.dumps(dead))
    leftover = tools / f"log.xlsx.{dead['pid']}-k1ll3d.aisdp-tmp"
    leftover.write_bytes(b"PK half a workbook")
    other = tools / f"other.xlsx.{dead['pid']}-k1ll3d.tmp"  # a dead writer of another file
    other.write_bytes(b"x")
    assert stale_temp_files(path) == [leftover]
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-003"})
    assert "taking over the lock" in capfd.readouterr().err
    assert sorted(p.name for p in tools.iterdir()) == [".gitignore"]


def test_a_lock_from_another_host_is_named_with_its_age_and_the_fix(tmp_path):
    import json

    path = styled_workbook(tmp_path / "log.xlsx")
    tools = tmp_path / ".aisdp-log"
    tools.mkdir()
    (tools / "log.xlsx.lock").write_text(json.dumps(
        {"pid": 4242, "host": "labpc-9", "user": "kim", "since": "2020-01-01T00:00:00Z"}))
    before = path.read_bytes()
    with pytest.raises(WriteRefused) as refused:
        with open_workbook_for_update(path):
            pass
    message = str(refused.value)
    assert "kim on labpc-9" in message and " h old" in message
    assert f"remove {tools / 'log.xlsx.lock'}" in message
    assert path.read_bytes() == before


def test_unsafe_or_missing_file_is_one_line_error(tmp_path):
    with pytest.raises(WorkbookError, match="no such file"):
        with open_workbook_for_update(tmp_path / "missing.xlsx"):
            pass
    text = tmp_path / "log.xlsx"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(WorkbookError, match="CSV"):
        with open_workbook_for_update(text):
            pass


def test_ensure_sheet_creates_then_adds_missing_headers_at_end(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx")
    with open_workbook_for_update(path) as wb:
        ws = ensure_sheet(wb, "Reruns", ["Rerun ID", "Seed"], widths=[20, 8],
                          number_formats={"Seed": "0"})
        append_row(ws, {"Rerun ID": "R1", "Seed": 7})
    person = openpyxl.load_workbook(path)  # a person edits the tool's sheet
    ws = person["Reruns"]
    ws["A1"] = "rerun id"  # a person's spelling is kept
    ws.insert_cols(3)
    ws["C1"] = "Theirs"
    person.save(path)
    with open_workbook_for_update(path) as wb:
        ensure_sheet(wb, "reruns", ["Rerun ID", "Seed", "Mode"])
    ws = openpyxl.load_workbook(path)["Reruns"]
    assert [c.value for c in ws[1]] == ["rerun id", "Seed", "Theirs", "Mode"]
    assert ws["C1"].font.b is False and ws["D1"].font.b is True
    assert ws.freeze_panes == "A2" and ws.column_dimensions["A"].width == 20
    assert ws["B2"].value == 7


def test_ensure_sheet_column_format_reaches_first_row(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx")
    with open_workbook_for_update(path) as wb:
        ws = ensure_sheet(wb, "Reproducibility", ["Experiment ID", "Mean"],
                          number_formats={"Mean": "0.0000"})
        append_row(ws, {"Experiment ID": "EXP-001", "Mean": 0.91234})
    assert openpyxl.load_workbook(path)["Reproducibility"]["B2"].number_format == "0.0000"


def test_find_rows_and_set_cell(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx", rows=3)
    with open_workbook_for_update(path) as wb:
        ws = wb["Experiments"]
        assert find_rows(ws, "experiment  ID", "EXP-002") == [3]
        assert find_rows(ws, "Experiment ID", "exp-002") == []  # IDs are case-sensitive
        set_cell(ws, 3, "Comment", "=not a formula")
        with pytest.raises(KeyError):
            set_cell(ws, 3, "Nope", 1)
    ws = openpyxl.load_workbook(path)["Experiments"]
    assert ws["D3"].value == "=not a formula" and ws["D3"].data_type == "s"


def one_row_workbook(path: Path, decorate) -> Path:
    """Experiments with one row; `decorate(workbook, sheet)` adds what the test is about."""
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Experiments")
    sheet.write_row(0, 0, ["Experiment ID", "Score"])
    sheet.write_row(1, 0, ["EXP-001", 0.9])
    decorate(workbook, sheet)
    workbook.close()
    return path


def test_shapes_and_sparklines_are_kept_without_force(tmp_path):
    def shapes_and_sparklines(workbook, sheet):
        sheet.insert_textbox("D2", "the team's reminder")
        sheet.add_sparkline("C2", {"range": "Experiments!B2:B2"})

    path = one_row_workbook(tmp_path / "log.xlsx", shapes_and_sparklines)
    with zipfile.ZipFile(path) as archive:
        before = {name: archive.read(name) for name in archive.namelist()}
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-002"})
    with zipfile.ZipFile(path) as archive:
        after = {name: archive.read(name) for name in archive.namelist()}
    assert python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(
        "Experiments").to_python()[2][0] == "EXP-002"
    for name, data in before.items():
        if name != "xl/worksheets/sheet1.xml":
            assert after[name] == data, name
    sheet = after["xl/worksheets/sheet1.xml"]
    assert b"<x14:sparklineGroups" in sheet and b"<xm:sqref>C2</xm:sqref>" in sheet


def test_charts_and_comments_are_kept_so_not_refused(tmp_path):
    def chart_and_comment(workbook, sheet):
        chart = workbook.add_chart({"type": "line"})
        chart.add_series({"values": "=Experiments!$B$2:$B$3"})
        sheet.insert_chart("D2", chart)
        sheet.write_comment("A2", "note")

    path = one_row_workbook(tmp_path / "log.xlsx", chart_and_comment)
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-002", "Score": 0.8})
    names = zipfile.ZipFile(path).namelist()
    assert "xl/charts/chart1.xml" in names
    assert openpyxl.load_workbook(path)["Experiments"]["A2"].comment.text == "note"


def test_first_row_takes_the_table_columns_number_format(tmp_path):
    path = tmp_path / "log.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    three = workbook.add_format({"num_format": "0.000"})
    sheet = workbook.add_worksheet("Experiments")
    sheet.add_table(0, 0, 1, 1, {"columns": [{"header": "Experiment ID"},
                                             {"header": "Score", "format": three}]})
    workbook.close()
    with open_workbook_for_update(path) as wb:
        assert append_row(wb["Experiments"], {"Experiment ID": "EXP-001", "Score": 0.5}) == 2
    assert openpyxl.load_workbook(path)["Experiments"]["B2"].number_format == "0.000"


def test_file_saved_by_someone_else_meanwhile_is_not_overwritten(tmp_path):
    path = styled_workbook(tmp_path / "log.xlsx")
    theirs = styled_workbook(tmp_path / "theirs.xlsx", rows=3).read_bytes()
    with pytest.raises(WriteRefused):
        with open_workbook_for_update(path) as wb:
            append_row(wb["Experiments"], {"Experiment ID": "EXP-003"})
            path.write_bytes(theirs)  # a person saves in Excel while we work
    assert path.read_bytes() == theirs
    assert stale_temp_files(path) == []


def test_empty_log_first_row_gets_the_given_number_formats(tmp_path):
    path = tmp_path / "log.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    workbook.add_worksheet("Experiments").write_row(0, 0, HEADERS)
    workbook.close()
    with open_workbook_for_update(path) as wb:
        row = append_row(wb["Experiments"], {"Experiment ID": "EXP-001", "Score": 0.5,
                                             "Date": dt.date(2026, 7, 1)},
                         number_formats={"score": "0.000"})
    ws = openpyxl.load_workbook(path)["Experiments"]
    assert row == 2 and ws["C2"].number_format == "0.000"
    assert ws["B2"].number_format == "yyyy-mm-dd" and ws["B2"].is_date


# ----------------------------------------------------------------- what the writer refuses

def _strict(path: Path) -> Path:
    """`path` rewritten as Strict Open XML (the purl.oclc.org namespaces)."""
    with zipfile.ZipFile(path) as archive:
        parts = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts:
            archive.writestr(name, data.replace(
                b"http://schemas.openxmlformats.org/spreadsheetml/2006/main",
                b"http://purl.oclc.org/ooxml/spreadsheetml/main").replace(
                b"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
                b"http://purl.oclc.org/ooxml/officeDocument/relationships"))
    return path


def _chartsheet_experiments(path: Path) -> Path:
    workbook = xlsxwriter.Workbook(str(path))
    data = workbook.add_worksheet("Data")
    data.write_row(0, 0, ["Experiment ID", "Score"])
    data.write_row(1, 0, ["EXP-001", 0.9])
    chart = workbook.add_chart({"type": "bar"})
    chart.add_series({"values": "=Data!$B$2:$B$2"})
    workbook.add_chartsheet("Experiments").set_chart(chart)
    workbook.close()
    return path


def _encrypted(path: Path) -> Path:
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml")
    plain = styled_workbook(path.with_name("plain.xlsx"))
    with open(plain, "rb") as source, open(path, "wb") as target:
        ooxml.OOXMLFile(source).encrypt("secret", target)
    return path


@pytest.mark.parametrize("build, cause", [
    (_strict, "Strict Open XML"),
    (_chartsheet_experiments, "'Experiments' is a chartsheet"),
    (_encrypted, "encrypted"),
])
def test_a_workbook_beyond_the_writer_is_refused_in_one_line_untouched(tmp_path, build,
                                                                        cause):
    path = tmp_path / "log.xlsx"
    if build is _strict:
        styled_workbook(path)
    build(path)
    before = path.read_bytes()
    with pytest.raises(WorkbookError) as refused:
        with open_workbook_for_update(path) as wb:
            append_row(wb["Experiments"], {"Experiment ID": "EXP-009"})
    message = str(refused.value)
    assert message.startswith(str(path)) and cause in message and "\n" not in message
    assert path.read_bytes() == before


# ----------------------------------------------------------------- reading as others wrote it

def _rewrite_sheet(path: Path, change) -> None:
    with zipfile.ZipFile(path) as archive:
        parts = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts:
            archive.writestr(name, change(data) if name == "xl/worksheets/sheet1.xml" else data)


@pytest.mark.parametrize("change", [
    # a comment and CDATA among the rows: the sheet is parsed whole
    lambda xml: xml.replace(b"<sheetData>", b"<sheetData><!-- rows -->").replace(
        b"<v>0.9</v>", b"<v><![CDATA[0.9]]></v>"),
    # `>` inside a quoted attribute of a row, single quotes, CRLF between rows
    lambda xml: xml.replace(b'<row r="2"', b"<row x14ac:note='a>b' r='2'").replace(
        b"<worksheet ", b'<worksheet xmlns:x14ac="http://schemas.microsoft.com/office/'
        b'spreadsheetml/2009/9/ac" ').replace(b"</row>", b"</row>\r\n"),
])
def test_rows_are_read_whatever_the_markup_around_them(tmp_path, change):
    path = tmp_path / "log.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Experiments")
    sheet.write_row(0, 0, ["Experiment ID", "Score"])
    sheet.write_row(1, 0, ["EXP-001", 0.9])
    workbook.close()
    _rewrite_sheet(path, change)
    with open_workbook_for_update(path) as wb:
        ws = wb["Experiments"]
        assert find_rows(ws, "Experiment ID", "EXP-001") == [2] and ws["B2"].value == 0.9
        assert append_row(ws, {"Experiment ID": "EXP-002", "Score": 0.5}) == 3
    rows = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(
        "Experiments").to_python()
    assert rows[1:] == [["EXP-001", 0.9], ["EXP-002", 0.5]]
