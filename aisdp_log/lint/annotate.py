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

from aisdp_log import spec
from aisdp_log.errors import WriteRefused
from aisdp_log.findings import CATALOGUE, Finding, Report
from aisdp_log.spec import column_letters
from aisdp_log.workbook.comments import (
    MARKER,
    SheetNotes,
    insert_in_worksheet,
    sheet_data_end,
)
from aisdp_log.workbook.writer import escape_ooxml, find_sheet, open_workbook_for_update
from aisdp_log.workbook.xlsx_package import (
    Package,
    escape_xml,
    locate_parts,
    parse_range,
)
from aisdp_log.workbook.xlsx_styles import Styles
from aisdp_log.workbook.xlsx_workbook import NEW_SHEET, Workbook

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
HIGHLIGHT_FORMULA = b'"aisdp-log"="aisdp-log"'
_CONDITIONAL = re.compile(rb"<(?:\w+:)?conditionalFormatting\b[^>]*?(?:/>|>.*?"
                          rb"</(?:\w+:)?conditionalFormatting\s*>)", re.DOTALL)
_PRIORITY = re.compile(rb"""<(?:\w+:)?cfRule\b[^>]*?\spriority\s*=\s*["'](\d+)["']""")
_PRIORITY_NUMBER = re.compile(rb"""(<(?:\w+:)?cfRule\b[^>]*?\spriority\s*=\s*["'])(\d+)""")


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
            notes = SheetNotes(wb.package, ws.part)
            added, skipped = notes.replace_tool_notes(
                {cell: escape_ooxml(note_text(group, stamp)) for cell, group in wanted.items()})
            result.notes += [cell_location(ws.title, c) for c in added]
            result.skipped += [cell_location(ws.title, c) for c in skipped]
            why = _highlight(wb, ws.part, list(wanted))
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


def _highlight(wb: Workbook, part: str, cells: list[str]) -> str | None:
    """Replace the tool's conditional format on sheet `part` by one over `cells`, first in
    the sheet and first in priority so it shows over other marks of the same cells (Excel
    goes by priority, LibreOffice by order). Only when priority 1 is taken do the other
    rules' priority numbers move down by one, their order kept. Returns why it could not,
    or None."""
    text = wb.package.read(part)
    rows_end = sheet_data_end(text)
    tail = _CONDITIONAL.sub(lambda m: b"" if HIGHLIGHT_FORMULA in m.group().replace(
        b"&quot;", b'"') else m.group(), text[rows_end:])
    if cells:
        dxf = wb.styles.dxf_index(HIGHLIGHT_DXF)
        if dxf is None:
            wb.package.write(part, text[:rows_end] + tail)
            return "the workbook has no styles part"
        if 1 in {int(p) for p in _PRIORITY.findall(tail)}:
            tail = _PRIORITY_NUMBER.sub(
                lambda m: m.group(1) + str(int(m.group(2)) + 1).encode(), tail)
        block = (b'<conditionalFormatting sqref="' + " ".join(cells).encode() + b'">'
                 b'<cfRule type="expression" dxfId="' + str(dxf).encode() + b'" priority="1">'
                 b"<formula>" + HIGHLIGHT_FORMULA + b"</formula></cfRule>"
                 b"</conditionalFormatting>")
        first = re.search(rb"<(\w+:)?conditionalFormatting\b", tail)
        if first is None:
            tail = insert_in_worksheet(tail, "conditionalFormatting", block)
        else:
            prefix = first.group(1) or b""
            if prefix:
                block = re.sub(rb"<(/?)(?=\w)", rb"<\1" + prefix, block)
            tail = tail[:first.start()] + block + tail[first.start():]
    wb.package.write(part, text[:rows_end] + tail)
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


def _inline(ref: str, text: str, style: int | None) -> bytes:
    text = escape_ooxml(text)
    space = b' xml:space="preserve"' if text != text.strip() or "\n" in text else b""
    s = b' s="' + str(style).encode() + b'"' if style else b""
    return (b'<c r="' + ref.encode() + b'"' + s + b' t="inlineStr"><is><t' + space + b">"
            + escape_xml(text) + b"</t></is></c>")


def _findings_sheet(wb: Workbook, findings: list[Finding], stamp: str) -> bytes:
    """The whole `Findings` worksheet: a bold frozen header, one row per finding, the Cell
    column an internal hyperlink (not a HYPERLINK formula) to the finding's cell."""
    styles = wb.styles
    bold = styles.derive(0, bold=True)
    quoted = styles.derive(0, quote_prefix=True)
    link = _link_style(wb)
    rows = [b'<row r="1">' + b"".join(_inline(f"{column_letters(i)}1", h, bold)
                                      for i, h in enumerate(FINDINGS_HEADERS, 1)) + b"</row>"]
    links = []
    for number, finding in enumerate(findings, start=2):
        location = cell_location(finding.sheet, finding.cell)
        values = (finding.code, finding.severity.value, location, finding.experiment_id or "",
                  finding.message, stamp)
        cells = []
        for index, value in enumerate(values, start=1):
            if value:
                style = quoted if value.startswith(("=", "+", "-", "@")) else \
                    link if index == 3 else None
                cells.append(_inline(f"{column_letters(index)}{number}", value, style))
        rows.append(b'<row r="' + str(number).encode() + b'">' + b"".join(cells) + b"</row>")
        links.append(b'<hyperlink ref="C' + str(number).encode() + b'" location="'
                     + escape_xml(location, attribute=True) + b'" display="'
                     + escape_xml(location, attribute=True) + b'"/>')
    last = len(findings) + 1
    cols = b"<cols>" + b"".join(
        b'<col min="' + str(i).encode() + b'" max="' + str(i).encode() + b'" width="'
        + str(w).encode() + b'" customWidth="1"/>' for i, w in enumerate(_WIDTHS, 1)) + b"</cols>"
    text = NEW_SHEET.replace(b'<dimension ref="A1"/>',
                             b'<dimension ref="A1:F' + str(last).encode() + b'"/>')
    text = text.replace(b"<sheetData/>", cols + b"<sheetData>" + b"".join(rows)
                        + b"</sheetData>")
    if links:
        text = insert_in_worksheet(text, "hyperlinks",
                                   b"<hyperlinks>" + b"".join(links) + b"</hyperlinks>")
    return text
