"""One workbook as the surgical writer edits it: its worksheets, styles and shared strings
over a `Package`, and new sheets wired into the workbook part (each worksheet is an
`aisdp_log.workbook.xlsx_sheet.Sheet`).

`Workbook` offers the small part of openpyxl's interface the callers use (`wb["Experiments"]`,
`wb.worksheets`, `wb.sheetnames`, `wb.create_sheet(title)`)."""

from __future__ import annotations

import datetime as dt
import re

from aisdp_log.errors import WorkbookError
from aisdp_log.workbook.xlsx_package import (
    CT_WORKSHEET,
    REL_WORKSHEET,
    Package,
    SheetEntry,
    add_content_type_override,
    add_relationship,
    attributes,
    escape_xml,
    insert_before_close,
    locate_parts,
    relationships_prefix,
)
from aisdp_log.workbook.xlsx_sheet import Sheet
from aisdp_log.workbook.xlsx_styles import Styles
from aisdp_log.workbook.xlsx_text import SharedStrings


class Workbook:
    """The workbook part and its worksheets, over a `Package`."""

    def __init__(self, package: Package):
        self.package = package
        parts = locate_parts(package)
        self.workbook_part = parts.workbook
        self.styles = Styles(package, parts.styles)
        self._strings_part = parts.shared_strings
        self._strings: SharedStrings | None = None
        workbook_xml = package.read(parts.workbook)
        pr = re.search(rb"<(?:\w+:)?workbookPr\b[^>]*>", workbook_xml)
        date1904 = pr is not None and attributes(pr.group()).get("date1904") in ("1", "true")
        self.epoch = dt.datetime(1904, 1, 1) if date1904 else dt.datetime(1899, 12, 30)
        self._entries = parts.sheets
        self.worksheets = [Sheet(self, entry) for entry in parts.sheets
                           if entry.is_worksheet and package.has(entry.part)]

    @property
    def sheetnames(self) -> list[str]:
        return [ws.title for ws in self.worksheets]

    def __getitem__(self, title: str) -> Sheet:
        for ws in self.worksheets:
            if ws.title == title:
                return ws
        raise KeyError(f"Worksheet {title} does not exist.")

    def __contains__(self, title: str) -> bool:
        return any(ws.title == title for ws in self.worksheets)

    def shared_strings(self) -> SharedStrings:
        if self._strings is None:
            text = self.package.read(self._strings_part) if self._strings_part else b""
            self._strings = SharedStrings(text)
        return self._strings

    def create_sheet(self, title: str) -> Sheet:
        """A new, empty worksheet part at the end, wired into the workbook."""
        names = set(self.package.names())
        number = 1
        while f"xl/worksheets/sheet{number}.xml" in names:
            number += 1
        part = f"xl/worksheets/sheet{number}.xml"
        self.package.write(part, NEW_SHEET)
        add_content_type_override(self.package, part, CT_WORKSHEET)
        rel_id = add_relationship(self.package, self.workbook_part, REL_WORKSHEET, part)
        text = self.package.read(self.workbook_part)
        prefix = relationships_prefix(text)
        if prefix is None:
            raise WorkbookError(f"{self.package.name}: cannot add sheet {title!r} (the "
                                "workbook part declares no relationships namespace)")
        sheet_id = max((e.sheet_id for e in self._entries), default=0) + 1
        sheets = re.search(rb"<((?:\w+:)?)sheets\b", text)
        element = sheets.group(1) if sheets else b""
        entry = (b"<" + element + b'sheet name="' + escape_xml(title, attribute=True)
                 + b'" sheetId="' + str(sheet_id).encode() + b'" ' + prefix + b':id="'
                 + rel_id.encode() + b'"/>')
        self.package.write(self.workbook_part, insert_before_close(text, b"sheets", entry))
        entry_record = SheetEntry(title, part, sheet_id, rel_id)
        self._entries.append(entry_record)
        sheet = Sheet(self, entry_record)
        self.worksheets.append(sheet)
        return sheet

    def finish(self) -> None:
        """Put every change into the package's members."""
        for ws in self.worksheets:
            ws.finish()
        self.styles.save()


NEW_SHEET = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
             b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
             b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
             b'<dimension ref="A1"/><sheetViews><sheetView workbookViewId="0">'
             b'<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
             b'<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView>'
             b'</sheetViews><sheetFormatPr defaultRowHeight="15"/><sheetData/>'
             b'<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" '
             b'footer="0.3"/></worksheet>')
