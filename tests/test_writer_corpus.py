"""Every write keeps any valid log intact, whoever saved it: a corpus of logs as other writers
save them, each built here from the template (openpyxl, LibreOffice, Open XML SDK style `x:`
prefixes, inline strings, no `r=`, pretty-printed CRLF with single quotes, CDATA, character
references, rich text, a table sized to the data, a sheet autofilter with its hidden
`_FilterDatabase`, extra sheets with a chart and a pivot-like layout). On each, `add`,
`validate --annotate`, `review --sign`, `rerun` and `template --upgrade` succeed, the result
opens in openpyxl, calamine and LibreOffice, and every cell value, formula, saved value,
style, merged range, validation, conditional format, defined name, comment, table and drawing
that was there is as it was (ranges may only have grown over the added rows)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
import python_calamine
from builders import SOFFICE, libreoffice_convert, needs_soffice, run_cli
from lxml import etree
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font
from test_guard import tiny_rerun_project

from aisdp_log.workbook.template import write_template
from aisdp_log.workbook.writer import append_row, ensure_sheet, open_workbook_for_update

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
T = f"{{{MAIN}}}t"
pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- the base log

@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny git + DVC project (tests/test_guard.py) whose log is the template with the
    trained run's row, runs EXP-002 trained for `add`."""
    root, log = tiny_rerun_project(tmp_path_factory.mktemp("corpus"))
    row = dict(zip(*[[c.value for c in r] for r in
                     openpyxl.load_workbook(log)["Experiments"].iter_rows(max_row=2)]))
    log.unlink()
    write_template(log)
    values = {k: v for k, v in row.items() if k and v is not None}
    with open_workbook_for_update(log) as wb:  # the team's own columns go after the template's
        append_row(ensure_sheet(wb, "Experiments", list(values)), values)
        append_row(wb["Metrics"], {"Metric": "accuracy", "Goal": "max", "Threshold": 0.85,
                                   "Description": "holdout accuracy"})
    env = dict(os.environ, AISDP_EXPERIMENT_ID="EXP-002", AISDP_SEED="7")
    env.pop("AISDP_ARTEFACT_DIR", None)
    subprocess.run([sys.executable, "train.py"], cwd=root, env=env, check=True)
    return root


def edit_parts(path: Path, edit) -> None:
    """Rewrite every member through `edit(name, bytes) -> bytes` (None drops it)."""
    with zipfile.ZipFile(path) as archive:
        items = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in items:
            new = edit(name, data)
            if new is not None:
                archive.writestr(name, new)


def xml_edit(parts: str, change):
    """An `edit` applying `change(root)` to the parsed members matching `parts`."""
    def edit(name: str, data: bytes) -> bytes:
        if not re.fullmatch(parts, name):
            return data
        root = etree.fromstring(data)
        new = change(root)
        root = root if new is None else new
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
    return edit


SHEETS = r"xl/worksheets/sheet\d+\.xml"
TEXT_PARTS = r"xl/(worksheets/sheet\d+|sharedStrings)\.xml"


# --------------------------------------------------------------------------- the writers

def by_openpyxl(path: Path, work: Path) -> None:
    openpyxl.load_workbook(path).save(path)


def by_libreoffice(path: Path, work: Path) -> None:
    shutil.copy(libreoffice_convert(path, "xlsx", work / "lo-in", work / "lo-profile-in"), path)


def x_prefixes(path: Path, work: Path) -> None:
    def prefixed(root):
        nsmap = {k: v for k, v in root.nsmap.items() if k is not None and v != MAIN}
        new = etree.Element(root.tag, nsmap={"x": MAIN, **nsmap})
        new.attrib.update(root.attrib)
        new.text = root.text
        new.extend(copy.deepcopy(list(root)))
        return new
    edit_parts(path, xml_edit(r"xl/(worksheets/sheet\d+|workbook|styles|sharedStrings|"
                              r"tables/table\d+)\.xml", prefixed))


def inline_strings(path: Path, work: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        sst = etree.fromstring(archive.read("xl/sharedStrings.xml"))
    texts = ["".join(si.itertext()) for si in sst]

    def change(root):
        for cell in root.iter(f"{{{MAIN}}}c"):
            if cell.get("t") == "s":
                value = cell.find(f"{{{MAIN}}}v")
                cell.remove(value)
                cell.set("t", "inlineStr")
                etree.SubElement(etree.SubElement(cell, f"{{{MAIN}}}is"), T).text = \
                    texts[int(value.text)]
    edit_parts(path, xml_edit(SHEETS, change))


def no_refs(path: Path, work: Path) -> None:
    def change(root):
        expected_row = 0
        for row in root.iter(f"{{{MAIN}}}row"):
            expected_row += 1
            if row.get("r") == str(expected_row):
                del row.attrib["r"]
            expected_row = int(row.get("r", expected_row))
            column = 0
            for cell in row.iter(f"{{{MAIN}}}c"):
                ref = cell.get("r")
                letters = ref.rstrip("0123456789")
                number = openpyxl.utils.column_index_from_string(letters)
                if number == column + 1:
                    del cell.attrib["r"]
                column = number
    edit_parts(path, xml_edit(SHEETS, change))


def pretty_crlf_single_quotes(path: Path, work: Path) -> None:
    def edit(name: str, data: bytes) -> bytes:
        if not re.fullmatch(r"xl/(worksheets/sheet\d+|workbook|sharedStrings)\.xml", name):
            return data
        text = etree.tostring(etree.fromstring(data), pretty_print=True,
                              xml_declaration=True, encoding="UTF-8")
        text = re.sub(rb'(\s[\w:]+)="([^"\']*)"', rb"\1='\2'", text)
        return text.replace(b"\n", b"\r\n")
    edit_parts(path, edit)


def cdata(path: Path, work: Path) -> None:
    def change(root):
        for t in root.iter(T):
            if t.text:
                t.text = etree.CDATA(t.text)
    edit_parts(path, xml_edit(TEXT_PARTS, change))


def character_references(path: Path, work: Path) -> None:
    def edit(name: str, data: bytes) -> bytes:
        if not re.fullmatch(TEXT_PARTS, name):
            return data
        return re.sub(rb"(<t(?:\s[^>]*)?>)([A-Za-z])",
                      lambda m: m.group(1) + b"&#x%X;" % ord(m.group(2)), data)
    edit_parts(path, edit)


def rich_text(path: Path, work: Path) -> None:
    def change(root):
        for si in root:
            text = "".join(si.itertext())
            for child in list(si):
                si.remove(child)
            for part, bold in ((text[:3], True), (text[3:], False)):
                if not part:
                    continue
                run = etree.SubElement(si, f"{{{MAIN}}}r")
                if bold:
                    etree.SubElement(etree.SubElement(run, f"{{{MAIN}}}rPr"), f"{{{MAIN}}}b")
                t = etree.SubElement(run, T)
                t.text = part
                t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
    edit_parts(path, xml_edit(r"xl/sharedStrings\.xml", change))


def _last_column(path: Path) -> str:
    ws = openpyxl.load_workbook(path)["Experiments"]
    return openpyxl.utils.get_column_letter(ws.max_column)


def _sized_to(data: bytes, last: int) -> bytes:
    """Sheet XML with every range ending on row 301 (the template's) ending on `last`."""
    return re.sub(rb'(sqref="[^"]*)', lambda m: m.group(1).replace(b"301", str(last).encode()),
                  data)


def table_to_the_data(path: Path, work: Path) -> None:
    """The table, its autofilter, validations and conditional formats cut to the data."""
    edit_parts(path, lambda name, data: re.sub(rb'ref="A1:([A-Z]+)301"', rb'ref="A1:\g<1>2"',
                                               data) if name.startswith("xl/tables/") else
               _sized_to(data, 2) if name == "xl/worksheets/sheet1.xml" else data)


def sheet_autofilter(path: Path, work: Path) -> None:
    """No table: a sheet autofilter over the data and Excel's hidden `_FilterDatabase`."""
    last = _last_column(path)

    def edit(name: str, data: bytes) -> bytes | None:
        if name == "xl/worksheets/sheet1.xml":
            data = re.sub(rb"<tableParts.*?</tableParts>", b"", _sized_to(data, 2))
            return data.replace(b"</sheetData>", b'</sheetData><autoFilter ref="A1:'
                                + last.encode() + b'2"/>')
        if name == "xl/worksheets/_rels/sheet1.xml.rels":
            return re.sub(rb"<Relationship [^>]*tables/table1.xml\"/>", b"", data)
        if name == "xl/tables/table1.xml":
            return None
        if name == "[Content_Types].xml":
            return re.sub(rb'<Override PartName="/xl/tables/table1.xml"[^>]*/>', b"", data)
        if name == "xl/workbook.xml":
            name_xml = (b'<definedName name="_xlnm._FilterDatabase" localSheetId="0" '
                        b'hidden="1">Experiments!$A$1:$' + last.encode() + b"$2</definedName>")
            if b"<definedNames>" in data:
                return data.replace(b"<definedNames>", b"<definedNames>" + name_xml)
            return data.replace(b"<calcPr", b"<definedNames>" + name_xml + b"</definedNames>"
                                b"<calcPr")
        return data
    edit_parts(path, edit)


def chart_and_pivot(path: Path, work: Path) -> None:
    """A person's summary sheet (merged title, COUNTIF formulas, bold totals) and a chart of
    the metrics, added and saved with openpyxl."""
    wb = openpyxl.load_workbook(path)
    summary = wb.create_sheet("Summary")
    summary.merge_cells("A1:C1")
    summary["A1"] = "Outcomes"
    summary["A1"].font = Font(bold=True)
    for row, outcome in enumerate(("selected", "rejected", "exploratory"), start=2):
        summary.cell(row, 1, outcome)
        summary.cell(row, 2, f'=COUNTIF(Experiments!M:M,"{outcome}")')
    summary["A5"], summary["B5"] = "Total", "=SUM(B2:B4)"
    summary["A5"].font = Font(bold=True)
    chart = BarChart()
    chart.add_data(Reference(wb["Experiments"], min_col=9, min_row=1, max_row=2),
                   titles_from_data=True)
    wb.create_sheet("Charts").add_chart(chart, "B2")
    wb.save(path)


WRITERS = {"openpyxl": by_openpyxl, "libreoffice": by_libreoffice, "x-prefixes": x_prefixes,
           "inline-strings": inline_strings, "no-r": no_refs,
           "pretty-crlf-single-quotes": pretty_crlf_single_quotes, "cdata": cdata,
           "character-references": character_references, "rich-text": rich_text,
           "table-sized-to-data": table_to_the_data, "sheet-autofilter": sheet_autofilter,
           "chart-and-pivot": chart_and_pivot}


# --------------------------------------------------------------------------- what was there

def _covers(outer: str, inner: str) -> bool:
    """Whether the range list `outer` covers every range of `inner`."""
    from openpyxl.worksheet.cell_range import CellRange

    return all(any(CellRange(o).issuperset(CellRange(i)) for o in outer.split())
               for i in inner.split())


def snapshot(path: Path) -> dict:
    """Everything a person made, as openpyxl parses it (formulas and saved values)."""
    formulas = openpyxl.load_workbook(path)
    saved = openpyxl.load_workbook(path, data_only=True)
    found: dict = {"names": {n: d.attr_text for n, d in formulas.defined_names.items()},
                   "sheets": {}}
    for ws in formulas.worksheets:
        cells = {}
        for row in ws.iter_rows():
            for cell in row:
                if cell.value is not None:
                    cells[cell.coordinate] = (
                        cell.value, saved[ws.title][cell.coordinate].value, cell.number_format,
                        bool(cell.font.b), cell.fill.fgColor.rgb, cell.alignment.wrap_text)
        found["sheets"][ws.title] = {
            "cells": cells,
            "comments": {c.coordinate: (c.comment.author, c.comment.text)
                         for row in ws.iter_rows() for c in row if c.comment},
            "merged": {str(r) for r in ws.merged_cells.ranges},
            "validations": [(v.type, v.formula1, str(v.sqref))
                            for v in ws.data_validations.dataValidation],
            "formats": [(str(r.sqref), tuple(rule.formula or ()))
                        for r in ws.conditional_formatting for rule in r.rules],
            "tables": {t.name: (t.ref, [c.name for c in t.tableColumns])
                       for t in ws.tables.values()},
            "names": {n: d.attr_text for n, d in ws.defined_names.items()},
            "charts": len(ws._charts)}
    with zipfile.ZipFile(path) as archive:
        found["drawings"] = {n: archive.read(n) for n in archive.namelist()
                             if re.match(r"xl/(charts|media|drawings/drawing)", n)}
    return found


def assert_kept(before: dict, after: dict) -> None:
    for name, value in before["names"].items():
        assert name in after["names"], name
        assert after["names"][name] == value or _grown(value, after["names"][name]), name
    assert before["drawings"] == {n: after["drawings"].get(n) for n in before["drawings"]}
    for title, sheet in before["sheets"].items():
        if title == "Guide":
            continue  # `template --upgrade` replaces the template's own Guide, by design
        now = after["sheets"][title]
        for ref, cell in sheet["cells"].items():
            assert now["cells"].get(ref) == cell, (title, ref)
        for ref, comment in sheet["comments"].items():
            assert now["comments"].get(ref) == comment, (title, ref)
        assert sheet["merged"] <= now["merged"], title
        for kind, formula, sqref in sheet["validations"]:
            assert any(k == kind and f == formula and _covers(s, sqref)
                       for k, f, s in now["validations"]), (title, formula, sqref)
        for sqref, formula in sheet["formats"]:
            assert any(f == formula and _covers(s, sqref) for s, f in now["formats"]), \
                (title, formula, sqref)
        for table, (ref, columns) in sheet["tables"].items():
            assert _covers(now["tables"][table][0], ref), table
            assert now["tables"][table][1][:len(columns)] == columns, table
        for name, value in sheet["names"].items():
            assert now["names"][name] == value or _grown(value, now["names"][name]), name
        assert now["charts"] == sheet["charts"]


def _grown(before: str, after: str) -> bool:
    sheet, _, ref = before.partition("!")
    new_sheet, _, new_ref = after.partition("!")
    return sheet == new_sheet and _covers(new_ref.replace("$", ""), ref.replace("$", ""))


# --------------------------------------------------------------------------- the corpus

@needs_soffice
@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_command_keeps_a_log_saved_by_another_writer(base, tmp_path, writer):
    root = tmp_path / "proj"
    shutil.copytree(base, root, symlinks=True)
    log = root / "experiment-log.xlsx"
    WRITERS[writer](log, tmp_path)
    before = snapshot(log)
    experiments = openpyxl.load_workbook(log)["Experiments"]
    last_column = experiments.max_column

    added = run_cli("add", str(log), "EXP-002", cwd=root)
    assert added.returncode == 0, added
    annotated = run_cli("validate", str(log), "--annotate", cwd=root)
    assert annotated.returncode in (0, 1) and "annotated" in annotated.stdout, annotated
    signed = run_cli("review", str(log), "--sign", "Ana Lima, Lead", "-o",
                     str(root / "reviews"), cwd=root)
    assert signed.returncode == 0, signed
    rerun = run_cli("rerun", str(log), "--id", "EXP-001", "--mode", "bitwise", cwd=root)
    assert rerun.returncode == 0, rerun
    upgraded = run_cli("template", "--upgrade", str(log), cwd=root)
    assert upgraded.returncode == 0, upgraded

    after = snapshot(log)
    assert_kept(before, after)
    rows = python_calamine.CalamineWorkbook.from_path(str(log))
    ids = [r[0] for r in rows.get_sheet_by_name("Experiments").to_python()[1:] if r[0]]
    assert ids[:2] == ["EXP-001", "EXP-002"], ids
    assert all(rows.get_sheet_by_name(n).to_python() is not None for n in rows.sheet_names)
    ws = openpyxl.load_workbook(log)["Experiments"]
    header = [c.value for c in ws[1]]
    assert ws.cell(3, header.index("Experiment ID") + 1).value == "EXP-002"
    assert ws.cell(2, header.index("Reproducibility") + 1).value, "rerun wrote no verdict"
    for name in ("Findings", "Sign-off", "Reruns"):
        assert name in openpyxl.load_workbook(log).sheetnames, name
    if writer in ("table-sized-to-data", "sheet-autofilter"):
        assert_grew_consistently(log, last_column)
    if SOFFICE:
        converted = libreoffice_convert(log, "xlsx", tmp_path / "lo-out", tmp_path / "lo-prof")
        assert "EXP-002" in json.dumps(
            python_calamine.CalamineWorkbook.from_path(str(converted))
            .get_sheet_by_name("Experiments").to_python(), default=str)


def assert_grew_consistently(log: Path, last_column: int) -> None:
    """The table (and its autofilter), the sheet autofilter, `_FilterDatabase`, and the
    validations and conditional formats sized to the data all end on the added row 3."""
    wb = openpyxl.load_workbook(log)
    ws = wb["Experiments"]
    last = openpyxl.utils.get_column_letter(last_column)
    for table in ws.tables.values():
        assert table.ref.startswith("A1:") and table.ref.endswith("3"), table.ref
        assert table.autoFilter is None or table.autoFilter.ref == table.ref
    if ws.auto_filter.ref:
        assert ws.auto_filter.ref == f"A1:{last}3"
        with zipfile.ZipFile(log) as archive:  # openpyxl does not show Excel's hidden name
            names = etree.fromstring(archive.read("xl/workbook.xml"))
        hidden = [n.text for n in names.iter(f"{{{MAIN}}}definedName")
                  if n.get("name") == "_xlnm._FilterDatabase"]
        assert hidden == [f"Experiments!$A$1:${last}$3"], hidden
    from openpyxl.worksheet.cell_range import CellRange

    ranges = [str(v.sqref) for v in ws.data_validations.dataValidation]
    ranges += [str(r.sqref) for r in ws.conditional_formatting
               if not any("aisdp-log" in f for rule in r.rules for f in rule.formula or ())]
    for item in (i for sqref in ranges for i in sqref.split()):
        bounds = CellRange(item)
        assert not (bounds.min_row == 2 and bounds.max_row == 2), item  # sized to the data
