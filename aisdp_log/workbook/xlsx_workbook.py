"""One workbook as the writer edits it: the workbook part (an lxml tree), its worksheets,
styles and shared strings over a `Package`, new sheets wired in, and the defined names that
grow with a sheet's ranges.

`Workbook` offers the small part of openpyxl's interface the callers use (`wb["Experiments"]`,
`wb.worksheets`, `wb.sheetnames`, `wb.create_sheet(title)`)."""

from __future__ import annotations

import datetime as dt
import re

from aisdp_log import spec
from aisdp_log.errors import WorkbookError
from aisdp_log.workbook.package import SheetEntry
from aisdp_log.workbook.xlsx_package import (
    CT_WORKSHEET,
    REL_WORKSHEET,
    Package,
    locate_parts,
)
from aisdp_log.workbook.xlsx_sheet import NEW_SHEET, Sheet
from aisdp_log.workbook.xlsx_styles import Styles
from aisdp_log.workbook.xmlpart import NS_REL, format_range, local, parse_range, qn, rich_text

#: A defined name that is one range of one sheet: `'My sheet'!$A$1:$C$9` or `Sheet!A1:C9`.
_ONE_RANGE = re.compile(r"^(?P<sheet>'(?:[^']|'')+'|[^'!:]+)!(?P<range>\$?[A-Z]{1,3}\$?\d+"
                        r"(?::\$?[A-Z]{1,3}\$?\d+)?)$")


class SharedStrings:
    """The `<si>` entries of the shared string table, each decoded (CDATA, references, rich
    text runs without phonetic hints) when first asked for; the writer never adds to it."""

    def __init__(self, root):
        self._items = [] if root is None else [e for e in root if local(e) == "si"]
        self._cache: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> str:
        if index not in self._cache:
            self._cache[index] = rich_text(self._items[index])
        return self._cache[index]


class Workbook:
    """The workbook part and its worksheets, over a `Package`."""

    def __init__(self, package: Package):
        self.package = package
        parts = locate_parts(package)
        self.workbook_part = parts.workbook
        self.root = package.xml(parts.workbook)
        self.styles = Styles(package, parts.styles)
        self._strings_part = parts.shared_strings
        self._strings: SharedStrings | None = None
        pr = self.root.find(qn("workbookPr"))
        date1904 = pr is not None and pr.get("date1904") in ("1", "true")
        self.epoch = dt.datetime(1904, 1, 1) if date1904 else dt.datetime(1899, 12, 30)
        self._entries = parts.sheets
        for entry in parts.sheets:
            if spec.normalise_header(entry.title) == \
                    spec.normalise_header(spec.SHEET_EXPERIMENTS) and not entry.is_worksheet:
                kind = entry.rel_type.rpartition("/")[2] or "missing part"
                raise WorkbookError(f"{package.name}: sheet {entry.title!r} is a {kind}, not a "
                                    "worksheet; aisdp-log writes rows only into a worksheet")
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

    def shared_strings(self) -> SharedStrings:
        if self._strings is None:
            self._strings = SharedStrings(self.package.xml(self._strings_part)
                                          if self._strings_part else None)
        return self._strings

    def create_sheet(self, title: str) -> Sheet:
        """A new, empty worksheet part at the end, wired into the workbook."""
        part = self.package.new_name("xl/worksheets/sheet{}.xml")
        self.package.write(part, NEW_SHEET)
        self.package.add_override(part, CT_WORKSHEET)
        rel_id = self.package.add_relationship(self.workbook_part, REL_WORKSHEET, part)
        sheets = self.root.find(qn("sheets"))
        if sheets is None:
            raise WorkbookError(f"{self.package.name}: the workbook part lists no <sheets>")
        sheet_id = max((e.sheet_id for e in self._entries), default=0) + 1
        # openpyxl declares r: on each <sheet>, not on the root: declare it here when the
        # workbook does not, so the new element is well-formed wherever the file declares it.
        nsmap = {} if NS_REL in sheets.nsmap.values() else \
            {"r" if "r" not in sheets.nsmap else "rel": NS_REL}
        element = sheets.makeelement(sheets.tag.replace("}sheets", "}sheet"), nsmap=nsmap)
        element.set("name", title)
        element.set("sheetId", str(sheet_id))
        element.set(qn("id", NS_REL), rel_id)
        sheets.append(element)
        self.package.touch(self.workbook_part)
        entry = SheetEntry(title, part, sheet_id, rel_id, REL_WORKSHEET)
        self._entries.append(entry)
        sheet = Sheet(self, entry)
        self.worksheets.append(sheet)
        return sheet

    def grow_names(self, title: str, row: int,
                   ranges: set[tuple[int, int, int, int]]) -> None:
        """Grow each defined name that is one of `ranges` (a table or autofilter of sheet
        `title` that grew over `row`): the autofilter's `_xlnm._FilterDatabase`, a person's
        name for the table's range. Other names (a single column, a chart's series) keep
        what they say."""
        names = self.root.find(qn("definedNames"))
        for name in (names if names is not None else []):
            found = _ONE_RANGE.match((name.text or "").strip())
            if found is None:
                continue
            sheet = found.group("sheet")
            if sheet.startswith("'"):
                sheet = sheet[1:-1].replace("''", "'")
            bounds = parse_range(found.group("range"))
            if sheet != title or bounds not in ranges:
                continue
            grown = format_range((bounds[0], bounds[1], bounds[2], row))
            absolute = "$" in found.group("range")
            if absolute:
                grown = ":".join(re.sub(r"^([A-Z]+)(\d+)$", r"$\1$\2", p) for p in grown.split(":"))
            name.text = f"{found.group('sheet')}!{grown}"
            self.package.touch(self.workbook_part)

    def finish(self) -> None:
        """Put every change into the package's members."""
        for ws in self.worksheets:
            ws.finish()

