"""`validate --annotate`: a validation's findings written into the workbook, where the people who
fill it look: a note on each finding's cell, a highlight of those cells, and a `Findings` sheet.

Everything the tool writes here is recognisable as its own, so the next `--annotate` replaces it
and nothing else: notes by their author `aisdp-log` (or their marker line, see workbook/comments),
the highlight by the marker formula of its conditional format, the `Findings` sheet by its
headers. A person's notes, formats and cells keep their bytes; the write goes through the safe
writer (`open_workbook_for_update`), so it refuses while the log is open in Excel or LibreOffice.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from aisdp_log import spec
from aisdp_log.errors import WriteRefused
from aisdp_log.findings import CATALOGUE, Finding, Report
from aisdp_log.spec import column_letters
from aisdp_log.workbook.comments import MARKER, SheetNotes
from aisdp_log.workbook.writer import escape_ooxml, find_sheet, open_workbook_for_update
from aisdp_log.workbook.xlsx_package import Package, locate_parts
from aisdp_log.workbook.xlsx_sheet import NEW_SHEET, WORKSHEET_ORDER, Sheet
from aisdp_log.workbook.xlsx_styles import Styles
from aisdp_log.workbook.xlsx_workbook import Workbook
from aisdp_log.workbook.xmlpart import (
    local,
    parse_range,
    parse_xml,
    place,
    qn,
    set_inline_string,
    sub,
)

FINDINGS_SHEET = "Findings"
FINDINGS_HEADERS = ("Code", "Severity", "Cell", "Experiment ID", "Message", "Checked at")
_WIDTHS = (8, 9, 20, 16, 100, 22)
#: Light red fill, dark red text and border: Excel's own "bad cell" look, applied by a
#: conditional format so the cell's own format (which a person chose) is never changed. The
#: border and text colour also show where another rule's fill wins (the template's yellow
#: marks of empty required cells come first): Excel combines what the rules do not share.
HIGHLIGHT_FILL = "FFC7CE"
_EDGE = b'style="thin"><color rgb="FF9C0006"/>'
HIGHLIGHT_DXF = (b'<dxf><font><color rgb="FF9C0006"/></font><fill><patternFill '
                 b'patternType="solid"><fgColor rgb="FF' + HIGHLIGHT_FILL.encode() + b'"/>'
                 b'<bgColor rgb="FF' + HIGHLIGHT_FILL.encode() + b'"/></patternFill></fill>'
                 b"<border><left " + _EDGE + b"</left><right " + _EDGE + b"</right><top "
                 + _EDGE + b"</top><bottom " + _EDGE + b"</bottom></border></dxf>")
#: The always-true formula of the tool's highlight: how the next run finds it again.
HIGHLIGHT_FORMULA = '"aisdp-log"="aisdp-log"'


@dataclass
class AnnotateResult:
    """What `annotate` wrote."""
    log: str
    notes: list[str] = field(default_factory=list)  # "Experiments!P3"
    highlighted: int = 0
    rows: int = 0  # rows of the Findings sheet
    skipped: list[str] = field(default_factory=list)  # cells that hold a person's note
    unhighlighted: str | None = None  # why no highlight could be written, if so

    def lines(self) -> list[str]:
        notes, cells, rows = len(self.notes), self.highlighted, self.rows
        text = [(f"annotated {self.log}: {notes} note{'s' * (notes != 1)}, {cells} "
                 f"highlighted cell{'s' * (cells != 1)}, {rows} row{'s' * (rows != 1)} in "
                 f"sheet {FINDINGS_SHEET}")]
        for where in self.skipped:
            text.append(f"  no note at {where}: a person's note is there (the finding is in "
                        f"sheet {FINDINGS_SHEET})")
        if self.unhighlighted:
            text.append(f"  no highlight: {self.unhighlighted}")
        return text


def is_sheet_wide(finding: Finding) -> bool:
    """A finding about the workbook or repository as a whole (an artefact folder no row
    names, a shallow clone): listed in Findings, not noted on a cell."""
    entry = CATALOGUE.get(finding.code)
    return entry is not None and entry.cell.startswith("row 1")


def note_text(findings: list[Finding], checked_at: str) -> str:
    """A note's text: each finding as `CODE severity: message` and what to do, then the
    marker line."""
    lines = []
    for finding in findings:
        lines.append(f"{finding.code} {finding.severity.value}: {finding.message}")
        entry = CATALOGUE.get(finding.code)
        if entry is not None and entry.help:
            lines.append(f"Fix: {entry.help}")
    lines.append(f"{MARKER}, {checked_at}]")
    return "\n".join(lines)


def cell_location(sheet: str, cell: str) -> str:
    """`Experiments!P3`, the sheet name quoted where a formula would need it."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sheet) and parse_range(sheet + "1") is None:
        return f"{sheet}!{cell}"
    return "'" + sheet.replace("'", "''") + f"'!{cell}"


def annotate(path: Path | str, report: Report, *, force: bool = False,
             checked_at: dt.datetime | None = None) -> AnnotateResult:
    """Write `report`'s findings into the log at `path` (see the module docstring), replacing
    what an earlier `annotate` wrote. Raises WriteRefused / WorkbookError (one line)."""
    moment = (checked_at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    result = AnnotateResult(str(path))
    findings = sorted(report.findings, key=lambda f: f.sort_key)
    with open_workbook_for_update(path, force=force) as wb:
        findings_ws = find_sheet(wb, FINDINGS_SHEET)
        if findings_ws is not None:
            _check_own_sheet(findings_ws, path)
        by_sheet: dict[str, dict[str, list[Finding]]] = {}
        for finding in findings:
            bounds = parse_range(finding.cell)
            if is_sheet_wide(finding) or bounds is None or bounds[:2] != bounds[2:]:
                continue
            cell = f"{column_letters(bounds[0])}{bounds[1]}"
            by_sheet.setdefault(finding.sheet, {}).setdefault(cell, []).append(finding)
        for ws in wb.worksheets:
            if findings_ws is not None and ws.part == findings_ws.part:
                continue
            wanted = by_sheet.get(ws.title, {})
            notes = SheetNotes(ws)
            added, skipped = notes.replace_tool_notes(
                {cell: escape_ooxml(note_text(group, stamp)) for cell, group in wanted.items()})
            result.notes += [cell_location(ws.title, c) for c in added]
            result.skipped += [cell_location(ws.title, c) for c in skipped]
            why = _highlight(wb, ws, list(wanted))
            if why:
                result.unhighlighted = why
            else:
                result.highlighted += len(wanted)
        if findings_ws is None and findings:
            findings_ws = wb.create_sheet(FINDINGS_SHEET)
        if findings_ws is not None:
            wb.package.write(findings_ws.part, _findings_sheet(wb, findings, stamp))
            result.rows = len(findings)
    return result


def _check_own_sheet(ws, path: Path | str) -> None:
    """Refuse to rewrite a `Findings` sheet that is not exactly the tool's: another sheet
    of that name, or the tool's with a column a person added (it would be lost)."""
    headers = [ws.value(1, column) for column in range(1, len(FINDINGS_HEADERS) + 1)]
    if [spec.normalise_header(h) if isinstance(h, str) else h for h in headers] != \
            [spec.normalise_header(h) for h in FINDINGS_HEADERS]:
        raise WriteRefused(f"{path}: sheet {ws.title!r} is not the one aisdp-log writes (its "
                           f"headers are not {', '.join(FINDINGS_HEADERS)}); rename it and "
                           "run --annotate again")
    added = [f"{column_letters(column)}1" for column, value in sorted(ws.row_values(1).items())
             if column > len(FINDINGS_HEADERS) and value not in (None, "")]
    if added:
        raise WriteRefused(f"{path}: sheet {ws.title!r} has columns aisdp-log does not write "
                           f"({', '.join(added)}); --annotate rewrites that sheet whole, so "
                           "move them to another sheet and run it again")


def _highlight(wb: Workbook, ws: Sheet, cells: list[str]) -> str | None:
    """Replace the tool's conditional format on sheet `ws` by one over `cells`, first in
    the sheet and first in priority so it shows over other marks of the same cells (Excel
    goes by priority, LibreOffice by order). Only when priority 1 is taken do the other
    rules' priority numbers move down by one, their order kept. Returns why it could not,
    or None."""
    root = ws.tree()
    own = [block for block in root.findall(qn("conditionalFormatting"))
           if any((f.text or "").strip() == HIGHLIGHT_FORMULA for f in block.iter(qn("formula")))]
    for block in own:
        root.remove(block)
    if own:
        ws.root_for_edit()
    if not cells:
        return None
    dxf = wb.styles.dxf_index(HIGHLIGHT_DXF)
    if dxf is None:
        return "the workbook has no styles part"
    rules = [r for r in root.iter() if local(r) == "cfRule"]
    if any(r.get("priority") == "1" for r in rules):
        for rule in rules:
            if (rule.get("priority") or "").isdigit():
                rule.set("priority", str(int(rule.get("priority")) + 1))
    first = root.find(qn("conditionalFormatting"))
    attrs = {"sqref": " ".join(cells)}
    block = place(root, "conditionalFormatting", WORKSHEET_ORDER, attrs) if first is None \
        else sub(root, "conditionalFormatting", attrs, index=root.index(first))
    rule = sub(block, "cfRule", {"type": "expression", "dxfId": str(dxf), "priority": "1"})
    sub(rule, "formula").text = HIGHLIGHT_FORMULA
    ws.root_for_edit()
    return None


def _link_style(wb: Workbook) -> int | None:
    """A cell style that looks like a link (blue, underlined), copied from a one-cell
    xlsxwriter workbook: the writer's styles only know how to append what exists."""
    import io

    import xlsxwriter

    buffer = io.BytesIO()
    source = xlsxwriter.Workbook(buffer, {"in_memory": True})
    source.add_worksheet().write_string(0, 0, "link", source.add_format(
        {"font_color": "#0563C1", "underline": 1}))
    source.close()
    package = Package(buffer.getvalue(), "link style")
    return wb.styles.import_xf(Styles(package, locate_parts(package).styles), 1) or None


def _inline(row, ref: str, text: str, style: int | None) -> None:
    cell = sub(row, "c", {"r": ref})
    if style:
        cell.set("s", str(style))
    set_inline_string(cell, escape_ooxml(text))


def _findings_sheet(wb: Workbook, findings: list[Finding], stamp: str) -> bytes:
    """The whole `Findings` worksheet: a bold frozen header, one row per finding, the Cell
    column an internal hyperlink (not a HYPERLINK formula) to the finding's cell."""
    styles = wb.styles
    bold = styles.derive(0, bold=True)
    quoted = styles.derive(0, quote_prefix=True)
    link = _link_style(wb)
    root = parse_xml(NEW_SHEET, "the Findings sheet")
    root.find(qn("dimension")).set("ref", f"A1:F{len(findings) + 1}")
    cols = place(root, "cols", WORKSHEET_ORDER)
    for index, width in enumerate(_WIDTHS, 1):
        sub(cols, "col", {"min": str(index), "max": str(index), "width": str(width),
                          "customWidth": "1"})
    data = root.find(qn("sheetData"))
    header = sub(data, "row", {"r": "1"})
    for index, text in enumerate(FINDINGS_HEADERS, 1):
        _inline(header, f"{column_letters(index)}1", text, bold)
    links = place(root, "hyperlinks", WORKSHEET_ORDER) if findings else None
    for number, finding in enumerate(findings, start=2):
        location = cell_location(finding.sheet, finding.cell)
        values = (finding.code, finding.severity.value, location, finding.experiment_id or "",
                  finding.message, stamp)
        row = sub(data, "row", {"r": str(number)})
        for index, value in enumerate(values, start=1):
            if value:
                style = quoted if value.startswith(("=", "+", "-", "@")) else \
                    link if index == 3 else None
                _inline(row, f"{column_letters(index)}{number}", value, style)
        sub(links, "hyperlink", {"ref": f"C{number}", "location": location,
                                 "display": location})
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
