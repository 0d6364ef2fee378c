"""The surgical writer: a write changes only what it adds. Every cell that was there keeps its
`<c>` element byte for byte (formulas keep their saved values), every other part of the
package stays byte-identical, and text XML cannot hold is written with OOXML's escape."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
import python_calamine
import xlsxwriter
from builders import BASE_ROW, SOFFICE, init_repo, libreoffice_convert, needs_soffice
from test_add import HEADERS, run_cli, write_run

from aisdp_log.workbook.writer import (
    append_row,
    ensure_sheet,
    escape_ooxml,
    find_rows,
    open_workbook_for_update,
    set_cell,
)

FORMULA = "ROUND(2.5*2,2)"
#: Text XML cannot hold, and text that looks like the escape itself.
HARD_TEXT = "a\uffffb\ufffec\x01d\x1fe_x0041_f"
CELL = re.compile(rb"<(?:\w+:)?c\b[^>]*?\sr=\"([A-Z]+\d+)\"[^>]*?(?:/>|>.*?</(?:\w+:)?c>)",
                  re.DOTALL)


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def cells(xml: bytes) -> dict[str, bytes]:
    return {m.group(1).decode(): m.group() for m in CELL.finditer(xml)}


def sheet_part(path: Path, title: str) -> str:
    with open_workbook_for_update(path) as wb:
        return wb[title].part


def assert_only_added(before: dict[str, bytes], after: dict[str, bytes], sheet: str, *,
                      changed_cells: set[str] = frozenset(), may_change=()) -> None:
    """Every cell of `sheet` that existed is byte-identical (but `changed_cells`), every
    other part that existed is byte-identical (but `may_change`), nothing was removed."""
    assert set(before) <= set(after)
    old, new = cells(before[sheet]), cells(after[sheet])
    for ref, element in old.items():
        if ref not in changed_cells:
            assert new[ref] == element, ref
    for name, data in before.items():
        if name != sheet and name not in may_change:
            assert after[name] == data, name


def calamine_rows(path: Path, title: str) -> list[list]:
    return python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(
        title).to_python()



def libreoffice_log(tmp_path: Path, repo: Path) -> Path:
    """A two-row log with a formula in a user column, written by openpyxl and re-saved by
    LibreOffice (so each formula carries its saved value), at repo/log.xlsx."""
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = "Experiments"
    headers = HEADERS + ["Check"]
    ws.append(headers)
    for number in (1, 2):
        values = dict(BASE_ROW, **{"Experiment ID": f"EXP-{number:03d}",
                                   "Date": dt.datetime(2026, 7, number),
                                   "Check": f"={FORMULA}"})
        ws.append([values.get(h) for h in headers])
        ws.cell(number + 1, 2).number_format = "yyyy-mm-dd"
    metrics = workbook.create_sheet("Metrics")
    metrics.append(["Metric", "Goal", "Threshold", "Description"])
    metrics.append(["accuracy", "max", 0.85, "holdout accuracy"])
    workbook.save(tmp_path / "log.xlsx")
    saved = libreoffice_convert(tmp_path / "log.xlsx", "xlsx", tmp_path / "lo",
                                tmp_path / "profile")
    shutil.copy(saved, repo / "log.xlsx")
    return repo / "log.xlsx"


def libreoffice_project(tmp_path: Path) -> tuple[Path, Path, str, dict[str, bytes]]:
    """(repository, its LibreOffice-saved log, the Experiments sheet part, the log's members)."""
    repo = init_repo(tmp_path / "proj")
    log = libreoffice_log(tmp_path, repo)
    return repo, log, sheet_part(log, "Experiments"), members(log)


#: What adding a sheet changes besides the new sheet part (and a style for its headers).
NEW_SHEET_PARTS = {"xl/styles.xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels",
                   "[Content_Types].xml"}


def assert_formulas_keep_saved_values(path: Path, part: str) -> None:
    xml = members(path)[part]
    formulas = re.findall(rb"<(?:\w+:)?f\b[^>]*>" + re.escape(FORMULA.encode())
                          + rb"</(?:\w+:)?f>"
                          rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>", xml)
    assert formulas == [b"5", b"5"]
    rows = calamine_rows(path, "Experiments")
    check = rows[0].index("Check")
    assert [r[check] for r in rows[1:3]] == [5.0, 5.0]


# --------------------------------------------------------------------------- LibreOffice logs

@pytest.mark.slow
@needs_soffice
def test_add_on_a_libreoffice_log_keeps_every_formula_value_and_part(tmp_path):
    from aisdp_log.lint.runner import validate

    repo, log, part, before = libreoffice_project(tmp_path)
    write_run(repo, "EXP-003")
    assert run_cli("add", str(log), "EXP-003") == 0
    after = members(log)
    assert_only_added(before, after, part, may_change={"xl/styles.xml"})
    assert_formulas_keep_saved_values(log, part)
    assert "A4" in cells(after[part]) and "A4" not in cells(before[part])
    codes = [(f.code, f.cell) for f in validate(log, offline=True).findings]
    assert not [c for c in codes if c[0] == "S003"], codes


@pytest.mark.slow
@needs_soffice
def test_rerun_write_back_on_a_libreoffice_log_changes_only_its_cell(tmp_path):
    from aisdp_log.config import load_config
    from aisdp_log.rerun.evidence import write_back
    from aisdp_log.rerun.plan import RowOutcome, RowPlan, RunResult
    from aisdp_log.workbook.reader import load_log

    repo, log, part, before = libreoffice_project(tmp_path)
    config = load_config(repo)
    loaded = load_log(log, config)
    try:
        from aisdp_log.domain.metrics import declared_metrics

        declared = declared_metrics(loaded)
    finally:
        loaded.workbook.close()
    plan = RowPlan(row_number=2, experiment_id="EXP-001", commit="9c1e4b7" * 5 + "9",
                   data_version="3f2a9c1e5d", data=[], targets=[], seed=7, params={},
                   artefact_dir=repo / "artefacts" / "EXP-001", recorded_hash=None,
                   recorded_metrics={"accuracy": 0.9123}, metric_decimals={})
    result = RunResult("EXP-001", 1, "bitwise", 7, tmp_path / "run1",
                       dt.datetime(2026, 11, 27, 8, 0, 0), duration_s=12.5,
                       metrics={"accuracy": 0.9123}, artefact_hash="sha256:" + "a" * 64,
                       bitwise_match=True)
    evidence = {"Mode": "bitwise", "Metric": "accuracy", "Runs": 1, "Mean": 0.9123,
                "Verdict": "pass"}
    outcome = RowOutcome("EXP-001", plan=plan, runs=[result], evidence=[evidence],
                         verdict="bitwise")
    write_back(log, [outcome], declared, config, force=False)
    after = members(log)
    reproducibility = f"{chr(64 + HEADERS.index('Reproducibility') + 1)}2"
    assert_only_added(before, after, part, changed_cells={reproducibility},
                      may_change=NEW_SHEET_PARTS)
    assert_formulas_keep_saved_values(log, part)
    with open_workbook_for_update(log) as wb:
        assert wb["Experiments"][reproducibility].value == "bitwise"
        assert find_rows(wb["Reruns"], "Experiment ID", "EXP-001") == [2]
        assert find_rows(wb["Reproducibility"], "Experiment ID", "EXP-001") == [2]
    assert_readers_open(log, tmp_path)


@pytest.mark.slow
@needs_soffice
def test_sign_then_add_on_a_libreoffice_log_gives_no_s003_and_no_r006(tmp_path):
    from aisdp_log.lint.runner import validate
    from aisdp_log.review.write import write_review

    repo, log, part, before = libreoffice_project(tmp_path)
    write_review(log, period="2026-Q3", output_dir=tmp_path / "out", sign="Ana Ruiz, Head")
    after_sign = members(log)
    assert_only_added(before, after_sign, part,
                      may_change=NEW_SHEET_PARTS)
    assert after_sign[part] == before[part]
    write_run(repo, "EXP-003")
    assert run_cli("add", str(log), "EXP-003") == 0
    assert_formulas_keep_saved_values(log, part)
    codes = [(f.code, f.cell) for f in validate(log, offline=True).findings]
    assert not [c for c in codes if c[0] in ("S003", "R006")], codes


def assert_readers_open(path: Path, tmp_path: Path) -> None:
    """openpyxl, calamine, pandas and LibreOffice all open the written workbook."""
    import pandas

    openpyxl.load_workbook(path)
    workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    for name in workbook.sheet_names:
        workbook.get_sheet_by_name(name).to_python()
    pandas.read_excel(path, sheet_name=None, engine="calamine")
    pandas.read_excel(path, sheet_name=None, engine="openpyxl")
    if SOFFICE:
        libreoffice_convert(path, "xlsx", tmp_path / "readers", tmp_path / "profile-readers")


@pytest.mark.slow
@needs_soffice
def test_text_xml_cannot_hold_round_trips_through_libreoffice(tmp_path):
    path = one_row_log(tmp_path / "log.xlsx")
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-002", "Note": HARD_TEXT})
        append_row(wb["Experiments"], {"Experiment ID": "EXP-003", "Note": "x\ud800y"})
    import csv

    text = libreoffice_convert(path, "csv:Text - txt - csv (StarCalc):44,34,76,1",
                               tmp_path / "lo", tmp_path / "profile").read_bytes().decode("utf-8")
    rows = list(csv.reader(text.split("\n")))
    assert rows[2][:2] == ["EXP-002", HARD_TEXT]
    assert rows[3][1].startswith("x?")  # LibreOffice: a lone surrogate is a question mark
    assert_readers_open(path, tmp_path)


# --------------------------------------------------------------------------- package parts

def one_row_log(path: Path, decorate=None) -> Path:
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Experiments")
    sheet.write_row(0, 0, ["Experiment ID", "Note", "Score"])
    sheet.write_row(1, 0, ["EXP-001", "first", 0.9])
    if decorate:
        decorate(workbook, sheet)
    workbook.close()
    return path


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def test_drawings_charts_images_comments_and_custom_parts_stay_byte_identical(tmp_path):
    (tmp_path / "dot.png").write_bytes(PNG)

    def decorate(workbook, sheet):
        chart = workbook.add_chart({"type": "line"})
        chart.add_series({"values": "=Experiments!$C$2:$C$2"})
        sheet.insert_chart("E2", chart)
        sheet.insert_image("E20", str(tmp_path / "dot.png"))
        sheet.insert_textbox("J2", "the team's reminder")
        sheet.write_comment("A2", "a person's note")
        workbook.define_name("Scores", "=Experiments!$C$2:$C$2")
        workbook.set_properties({"company": "Lab", "title": "Our log"})

    path = one_row_log(tmp_path / "log.xlsx", decorate)
    with zipfile.ZipFile(path, "a") as archive:  # parts openpyxl would drop
        archive.writestr("customXml/item1.xml", "<b:Sources xmlns:b='urn:x'/>")
        archive.writestr("xl/threadedComments/threadedComment1.xml", "<ThreadedComments/>")
    before = members(path)
    raw_before = {i.filename: (i.CRC, i.compress_size) for i in zipfile.ZipFile(path).infolist()}
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-002", "Score": 0.8})
    after = members(path)
    assert_only_added(before, after, "xl/worksheets/sheet1.xml")
    raw_after = {i.filename: (i.CRC, i.compress_size) for i in zipfile.ZipFile(path).infolist()}
    assert {k: v for k, v in raw_after.items() if k != "xl/worksheets/sheet1.xml"} == \
        {k: v for k, v in raw_before.items() if k != "xl/worksheets/sheet1.xml"}
    ws = openpyxl.load_workbook(path)["Experiments"]
    assert ws["A3"].value == "EXP-002" and ws["C3"].value == 0.8


def test_set_cell_replaces_only_that_cell_element(tmp_path):
    path = one_row_log(tmp_path / "log.xlsx")
    before = members(path)
    with open_workbook_for_update(path) as wb:
        set_cell(wb["Experiments"], 2, "Note", "=changed, as text")
    after = members(path)
    assert_only_added(before, after, "xl/worksheets/sheet1.xml", changed_cells={"B2"},
                      may_change={"xl/styles.xml"})
    old = before["xl/worksheets/sheet1.xml"]
    new = after["xl/worksheets/sheet1.xml"]
    b2_old, b2_new = cells(old)["B2"], cells(new)["B2"]
    assert new.replace(b2_new, b2_old) == old  # nothing else in the sheet moved
    assert b"<f>" not in b2_new and b'inlineStr' in b2_new
    cell = openpyxl.load_workbook(path)["Experiments"]["B2"]
    assert cell.value == "=changed, as text" and cell.data_type == "s" and cell.quotePrefix


def test_no_change_leaves_the_file_untouched(tmp_path):
    path = one_row_log(tmp_path / "log.xlsx")
    before = path.read_bytes()
    stat = path.stat()
    with open_workbook_for_update(path) as wb:
        assert find_rows(wb["Experiments"], "Experiment ID", "EXP-001") == [2]
    assert path.read_bytes() == before and path.stat().st_ino == stat.st_ino


def test_existing_style_indices_are_kept_and_new_ones_appended(tmp_path):
    path = one_row_log(tmp_path / "log.xlsx")
    xfs = re.compile(rb"<cellXfs[^>]*>(.*?)</cellXfs>", re.DOTALL)
    before = xfs.search(members(path)["xl/styles.xml"]).group(1)
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-002", "Note": "=x",
                                       "Score": dt.date(2026, 7, 1)})
        ensure_sheet(wb, "Reruns", ["Rerun ID"], widths=[20])
    after_styles = members(path)["xl/styles.xml"]
    after = xfs.search(after_styles).group(1)
    assert after.startswith(before) and len(after) > len(before)
    count = int(re.search(rb'<cellXfs count="(\d+)"', after_styles).group(1))
    assert count == after.count(b"<xf ")
    ws = openpyxl.load_workbook(path)["Experiments"]
    assert ws["B3"].quotePrefix and ws["C3"].is_date and ws["A3"].number_format == "General"
    reruns = openpyxl.load_workbook(path)["Reruns"]
    assert reruns["A1"].font.b and reruns.column_dimensions["A"].width == 20
    # a second write reuses the styles it made instead of adding more
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-003", "Note": "=y",
                                       "Score": dt.date(2026, 7, 2)})
    assert members(path)["xl/styles.xml"] == after_styles


def test_sheet_autofilter_and_dimension_grow_over_the_new_row(tmp_path):
    path = one_row_log(tmp_path / "log.xlsx", lambda wb, sheet: sheet.autofilter(0, 0, 1, 2))
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-002"})
    xml = members(path)["xl/worksheets/sheet1.xml"]
    assert b'<autoFilter ref="A1:C3"/>' in xml and b'<dimension ref="A1:C3"/>' in xml


def test_x14_validations_and_formats_grow_but_sparklines_do_not(tmp_path):
    tail = (b'</sheetData><conditionalFormatting sqref="C2:C2 E7"><cfRule type="expression" '
            b'priority="1"><formula>TRUE</formula></cfRule></conditionalFormatting>'
            b'<dataValidations count="1"><dataValidation type="list" sqref="D2"><formula1>'
            b'"a,b"</formula1></dataValidation></dataValidations>'
            b'<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" '
            b'footer="0.3"/><extLst><ext uri="{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}" '
            b'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main" '
            b'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main">'
            b'<x14:dataValidations count="1"><x14:dataValidation type="list">'
            b'<x14:formula1><xm:f>Lists!$A$1:$A$3</xm:f></x14:formula1><xm:sqref>B2 F9'
            b'</xm:sqref></x14:dataValidation></x14:dataValidations><x14:sparklineGroups>'
            b'<x14:sparklineGroup><x14:sparklines><x14:sparkline><xm:f>S!A2:B2</xm:f>'
            b'<xm:sqref>C2</xm:sqref></x14:sparkline></x14:sparklines></x14:sparklineGroup>'
            b'</x14:sparklineGroups></ext></extLst></worksheet>')
    path = one_row_log(tmp_path / "log.xlsx")
    parts = members(path)
    sheet = parts["xl/worksheets/sheet1.xml"]
    parts["xl/worksheets/sheet1.xml"] = sheet[:sheet.index(b"</sheetData>")] + tail
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with open_workbook_for_update(path) as wb:
        assert append_row(wb["Experiments"], {"Experiment ID": "EXP-002"}) == 3
    grown = members(path)["xl/worksheets/sheet1.xml"]
    assert b'sqref="C2:C3 E7"' in grown and b'sqref="D2:D3"' in grown
    assert b"<xm:sqref>B2:B3 F9</xm:sqref>" in grown
    assert b"<xm:sqref>C2</xm:sqref>" in grown  # a sparkline's place is one cell
    assert openpyxl.load_workbook(path)["Experiments"]["A3"].value == "EXP-002"


def test_libreoffice_shaped_sheet_with_prefixes_and_padding(tmp_path):
    """x14ac/mc markup, a padded table row, shared strings: the row goes in the first empty
    padded row, the padded row's own style is kept, and the markup stays as it was."""
    path = one_row_log(tmp_path / "log.xlsx")
    with zipfile.ZipFile(path) as archive:
        parts = {i.filename: archive.read(i) for i in archive.infolist()}
    sheet = parts["xl/worksheets/sheet1.xml"]
    sheet = sheet.replace(b"<worksheet ", b'<worksheet xmlns:mc="http://schemas.openxml'
                          b'formats.org/markup-compatibility/2006" xmlns:x14ac="http://'
                          b'schemas.microsoft.com/office/spreadsheetml/2009/9/ac" '
                          b'mc:Ignorable="x14ac" ')
    sheet = sheet.replace(b"</sheetData>", b'<row r="3" spans="1:3" x14ac:dyDescent="0.25">'
                          b'<c r="C3" s="0"/></row></sheetData>')
    parts["xl/worksheets/sheet1.xml"] = sheet
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with open_workbook_for_update(path) as wb:
        assert append_row(wb["Experiments"], {"Experiment ID": "EXP-002", "Score": 1}) == 3
    xml = members(path)["xl/worksheets/sheet1.xml"]
    assert b'mc:Ignorable="x14ac"' in xml
    assert re.search(rb'<row r="3" spans="1:3" x14ac:dyDescent="0.25"><c r="A3" '
                     rb't="inlineStr"><is><t>EXP-002</t></is></c><c r="C3"><v>1</v></c></row>',
                     xml), xml
    assert calamine_rows(path, "Experiments")[2][:3] == ["EXP-002", "", 1.0]


# --------------------------------------------------------------------------- text

def test_escape_for_text_xml_cannot_hold():
    assert escape_ooxml("a\uffffb") == "a_xFFFF_b"
    assert escape_ooxml("\ufffe\x00\x1f\r") == "_xFFFE__x0000__x001F__x000D_"
    assert escape_ooxml("\ud800") == "_xD800_"
    assert escape_ooxml("_x0041_ and _X0041_") == "_x005F_x0041_ and _X0041_"
    assert escape_ooxml("tab\tand\nnewline") == "tab\tand\nnewline"


@pytest.mark.parametrize("text, readback", [
    (HARD_TEXT, HARD_TEXT),
    ("line\r\nbreak", "line\r\nbreak"),
    ("=1+1", "=1+1"),
    ("lone \ud800 surrogate", "lone \ud800 surrogate"),
])
def test_text_xml_cannot_hold_round_trips_through_openpyxl_and_calamine(tmp_path, text,
                                                                        readback):
    path = one_row_log(tmp_path / "log.xlsx")
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-002", "Note": text})
        assert wb["Experiments"]["B3"].value == readback  # the writer reads it back too
    # openpyxl opens it, but does not decode the escape: it shows the stored text
    assert openpyxl.load_workbook(path)["Experiments"]["B3"].value == escape_ooxml(text)
    # calamine decodes the escape, except to characters it will not hold (U+FFFE, U+FFFF,
    # surrogates), which it shows as the escape text
    assert calamine_rows(path, "Experiments")[2][1] == re.sub(
        "[\ufffe\uffff\ud800-\udfff]", lambda m: f"_x{ord(m.group()):04X}_", readback)
    with open_workbook_for_update(path) as wb:  # and every later write still opens it
        append_row(wb["Experiments"], {"Experiment ID": "EXP-003"})


class _Stream:
    """A write-only, unseekable file: zipfile then writes data descriptors after members."""

    def __init__(self):
        self.data = bytearray()

    def write(self, blob):
        self.data += blob
        return len(blob)

    def flush(self):
        pass


def test_members_with_data_descriptors_are_copied_raw(tmp_path):
    path = one_row_log(tmp_path / "log.xlsx")
    stream = _Stream()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(stream, "w",
                                                          zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    path.write_bytes(bytes(stream.data))
    assert all(i.flag_bits & 0x08 for i in zipfile.ZipFile(path).infolist())
    before = members(path)
    with open_workbook_for_update(path) as wb:
        append_row(wb["Experiments"], {"Experiment ID": "EXP-002"})
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    assert_only_added(before, members(path), "xl/worksheets/sheet1.xml")
    assert calamine_rows(path, "Experiments")[2][0] == "EXP-002"


def test_cells_with_attributes_in_another_order_are_still_found(tmp_path):
    path = one_row_log(tmp_path / "log.xlsx")
    with zipfile.ZipFile(path) as archive:
        parts = {i.filename: archive.read(i) for i in archive.infolist()}
    sheet = parts["xl/worksheets/sheet1.xml"]
    assert b'<c r="A2" t="s">' in sheet
    parts["xl/worksheets/sheet1.xml"] = sheet.replace(b'<c r="A2" t="s">', b'<c t="s" r="A2">')
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with open_workbook_for_update(path) as wb:
        assert find_rows(wb["Experiments"], "Experiment ID", "EXP-001") == [2]
        assert append_row(wb["Experiments"], {"Experiment ID": "EXP-002"}) == 3
