"""One worksheet as the writer edits it: an lxml tree of the sheet without its rows, and its
rows, each parsed by lxml when first read; a row nobody changed keeps its bytes. `Sheet`
offers the part of openpyxl's interface callers use (`ws.title`, `ws[1]`, `ws.cell(r, c).value`,
`ws.iter_rows(min_row=2, values_only=True)`), reading values as Excel shows them (shared,
inline and rich strings, formulas' saved values, dates by their number format), its workbook
through the `Book` protocol."""

from __future__ import annotations

import bisect
import datetime as dt
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from lxml import etree

from aisdp_log.errors import WorkbookError
from aisdp_log.spec import column_letters, column_number
from aisdp_log.workbook.package import SheetEntry
from aisdp_log.workbook.xlsx_package import REL_TABLE, Package
from aisdp_log.workbook.xlsx_ranges import grow_dimension, grow_sheet_ranges
from aisdp_log.workbook.xlsx_rows import cut_rows, first_cells
from aisdp_log.workbook.xlsx_styles import Styles
from aisdp_log.workbook.xmlpart import (
    NS_MAIN,
    decode_ooxml,
    local,
    parse_range,
    parse_xml,
    place,
    prolog_of,
    qn,
    rich_text,
    serialise,
    sub,
)

#: CT_Worksheet's children in order: an element made where absent goes in its place.
WORKSHEET_ORDER = (
    "sheetPr", "dimension", "sheetViews", "sheetFormatPr", "cols", "sheetData",
    "sheetCalcPr", "sheetProtection", "protectedRanges", "scenarios", "autoFilter", "sortState",
    "dataConsolidate", "customSheetViews", "mergeCells", "phoneticPr", "conditionalFormatting",
    "dataValidations", "hyperlinks", "printOptions", "pageMargins", "pageSetup",
    "headerFooter", "rowBreaks", "colBreaks", "customProperties", "cellWatches",
    "ignoredErrors", "smartTags", "drawing", "legacyDrawing", "legacyDrawingHF", "drawingHF",
    "picture", "oleObjects", "controls", "webPublishItems", "tableParts", "extLst")
_PLACEHOLDER = "aisdp-log-rows"


class Book(Protocol):
    """What a sheet needs of its workbook."""
    package: Package
    styles: Styles
    epoch: dt.datetime

    def shared_strings(self) -> list[str] | Any: ...
    def grow_names(self, title: str, row: int,
                   ranges: set[tuple[int, int, int, int]]) -> None: ...


@dataclass
class Cell:
    """A read-only view of one cell (what callers used openpyxl's cell for)."""
    row: int
    column: int
    value: object

    @property
    def coordinate(self) -> str:
        return f"{column_letters(self.column)}{self.row}"


def _column_of(ref: str | None) -> int | None:
    letters = (ref or "").lstrip("$").rstrip("0123456789$")
    return column_number(letters) if letters.isalpha() and len(letters) <= 3 else None


class _Row:
    __slots__ = ("_cells", "dirty", "element", "gap", "number", "raw")

    def __init__(self, number: int, raw: bytes | None, gap: bytes = b"", element=None):
        self.number, self.raw, self.gap, self.element = number, raw, gap, element
        self.dirty = False
        self._cells: dict[int, Any] | None = None

    def _walk(self) -> Iterator[tuple[int, Any]]:
        """(column, `<c>` element) left to right (a cell without `r` is the one after the
        previous)."""
        column = 0
        for element in self.element:
            if local(element) == "c":
                column = _column_of(element.get("r")) or column + 1
                yield column, element

    def cells(self) -> dict[int, Any]:
        """Column -> `<c>` element."""
        if self._cells is None:
            self._cells = dict(self._walk())
        return self._cells

    def cell(self, wanted: int):
        """The `<c>` at column `wanted`, reading the row's cells only up to it."""
        if self._cells is not None:
            return self._cells.get(wanted)
        for column, element in self._walk():
            if column >= wanted:
                return element if column == wanted else None
        return None


class Sheet:
    """One worksheet part (see the module docstring)."""

    def __init__(self, book: Book, entry: SheetEntry):
        self.book, self.entry = book, entry
        self.title, self.part = entry.title, entry.part
        self.root: Any = None
        self._written: tuple[int, int, int, int] | None = None  # bounds of written cells
        self._changed = False

    # ----------------------------------------------------------------- parsing

    def _load(self) -> None:
        if self.root is not None:
            return
        where = f"{self.book.package.name}: {self.part}"
        data = self.book.package.read(self.part)
        self._prolog = prolog_of(data)
        self._token = secrets.token_hex(8)
        mark = f"<?{_PLACEHOLDER} {self._token}?>".encode()
        cut = cut_rows(data)
        rows: list[_Row] = []
        if cut is not None:
            try:
                self.root = parse_xml(data[:cut.start] + mark + data[cut.end:], where)
            except WorkbookError:  # the cut was fooled (a look-alike in a comment): the
                cut = None  # whole sheet is parsed below, and says what is wrong with it
        if cut is not None:
            self._sheet_data = self._check_root(where)
            position, number = cut.start, 0
            for given, start, end in cut.rows:
                number = given or number + 1
                rows.append(_Row(number, data[start:end], data[position:start]))
                position = end
            self._trailing = data[position:cut.end]
            holder = [n for n in self._sheet_data if not isinstance(n.tag, str)
                      and n.target == _PLACEHOLDER and n.text == self._token]
            if len(self._sheet_data) != 1 or not holder:
                self.root = None  # the cut met something it cannot place: parse it whole
        if self.root is None:
            self.root = parse_xml(data, where)
            self._sheet_data = self._check_root(where)
            number, rows = 0, []  # each row moves into one wrapper, out of <sheetData>
            batch = self._sheet_data.makeelement("w", nsmap=self._sheet_data.nsmap)
            for element in list(self._sheet_data):
                if local(element) == "row":
                    number = int(element.get("r")) if (element.get("r") or "").isdigit() \
                        else number + 1
                    rows.append(_Row(number, None, element=element))
                    batch.append(element)
                else:
                    self._sheet_data.remove(element)
            self._sheet_data.text = None
            self._sheet_data.append(etree.ProcessingInstruction(_PLACEHOLDER, self._token))
            self._trailing = b""
        self._rows = sorted(rows, key=lambda r: r.number)
        self._numbers = [r.number for r in self._rows]
        self._wrap = etree.tostring(self._wrapped(None))[:-2] + b">"

    def _check_root(self, where: str):
        found = self.root.find(qn("sheetData")) if self.root.tag == qn("worksheet") else None
        if found is None:
            raise WorkbookError(f"{where}: not a worksheet with <sheetData> aisdp-log can "
                                f"write ({self.root.tag})")
        return found

    def _wrapped(self, element):
        """`element` moved into a wrapper of its own that declares `<sheetData>`'s
        namespaces, so it serialises without declarations of its own."""
        wrapper = self._sheet_data.makeelement("w", nsmap=self._sheet_data.nsmap)
        if element is not None:
            wrapper.append(element)
        return wrapper

    def _parse(self, rows: list[_Row]) -> None:
        """Parse the rows' bytes, all at once (one lxml call for a whole column's read)."""
        rows = [r for r in rows if r.element is None]
        if not rows:
            return
        wrapper = parse_xml(self._wrap + b"".join(r.raw or b"" for r in rows) + b"</w>",
                            f"{self.book.package.name}: {self.part}")
        elements = [e for e in wrapper if isinstance(e.tag, str)]
        if len(elements) != len(rows) or any(local(e) != "row" for e in elements):
            raise WorkbookError(f"{self.book.package.name}: {self.part}: a row of sheet "
                                f"{self.title!r} is damaged")
        for row, element in zip(rows, elements):
            row.element = element

    def _row(self, number: int, create: bool = False) -> _Row | None:
        self._load()
        at = bisect.bisect_left(self._numbers, number)
        if at < len(self._numbers) and self._numbers[at] == number:
            row = self._rows[at]
            self._parse([row])
            return row
        if not create:
            return None
        row = _Row(number, None, element=self._sheet_data.makeelement(qn("row"),
                                                                     {"r": str(number)}))
        self._rows.insert(at, row)
        self._numbers.insert(at, number)
        return row

    def _value(self, cell) -> object:
        kind = cell.get("t", "n")
        if kind == "inlineStr":
            found = cell.find(qn("is"))
            return rich_text(found) if found is not None else None
        found = cell.find(qn("v"))
        if found is None:
            return None
        text = found.text or ""
        if kind == "s":
            strings = self.book.shared_strings()
            index = text.strip()
            return strings[int(index)] if index.isdigit() and int(index) < len(strings) \
                else None
        if kind in ("str", "e"):
            return decode_ooxml(text)
        if kind == "b":
            return text.strip() in ("1", "true")
        if kind == "d":
            try:
                return dt.datetime.fromisoformat(text.strip())
            except ValueError:
                return text
        try:
            number = float(text)
        except ValueError:
            return text or None
        style = cell.get("s", "0")
        if style.isdigit() and style != "0" and self.book.styles.is_date(int(style)):
            try:
                return self.book.epoch + dt.timedelta(days=number)
            except OverflowError:
                return number
        if number.is_integer() and text.strip().lstrip("-").isdigit():
            return int(number)
        return number

    def style_of(self, row: int, column: int) -> int | None:
        found = self._row(row)
        style = found.cells().get(column, {}).get("s") if found else None
        return int(style) if style and style.isdigit() else None

    # ----------------------------------------------------------------- reading

    def value(self, row: int, column: int) -> object:
        found = self._row(row)
        cell = found.cells().get(column) if found else None
        return None if cell is None else self._value(cell)

    def row_values(self, row: int) -> dict[int, Any]:
        found = self._row(row)
        return {} if found is None else {c: self._value(e) for c, e in found.cells().items()}

    def row_numbers(self) -> list[int]:
        self._load()
        return list(self._numbers)

    def column_values(self, column: int) -> dict[int, Any]:
        """Row -> value of every cell in `column` that exists. Rows not yet read are parsed
        only up to that column (one lxml call for all), not whole."""
        self._load()
        short = {id(r): first_cells(r.raw or b"", column) for r in self._rows
                 if r.element is None}
        self._parse([r for r in self._rows if r.element is None and short[id(r)] is None])
        cut = [r for r in self._rows if r.element is None]
        parsed = [e for e in parse_xml(self._wrap + b"".join(short[id(r)] or b"" for r in cut)
                                       + b"</w>", f"{self.book.package.name}: {self.part}")
                  if local(e) == "row"]
        if len(parsed) != len(cut):  # a cut the parser reads otherwise: read the rows whole
            self._parse(cut)
        heads = dict(zip(map(id, cut), parsed)) if len(parsed) == len(cut) else {}
        values = {}
        for row in self._rows:
            cell = _Row(0, None, element=heads[id(row)]).cell(column) if id(row) in heads \
                else row.cell(column)
            if cell is not None:
                values[row.number] = self._value(cell)
        return values

    def cell(self, row: int, column: int) -> Cell:
        """The cell at (row, column), read-only; write with `writer.set_cell`."""
        return Cell(row, column, self.value(row, column))

    def __getitem__(self, key: int | str) -> Any:
        """`ws[1]`: the cells of row 1; `ws["B2"]`: one cell."""
        if isinstance(key, int):
            values = self.row_values(key)
            last = max(values, default=0)
            return tuple(Cell(key, c, values.get(c)) for c in range(1, last + 1))
        bounds = parse_range(key)
        if bounds is None or bounds[0] != bounds[2] or bounds[1] != bounds[3]:
            raise KeyError(f"not a single cell: {key!r}")
        return Cell(bounds[1], bounds[0], self.value(bounds[1], bounds[0]))

    @property
    def max_row(self) -> int:
        self._load()
        return self._numbers[-1] if self._numbers else 1

    @property
    def max_column(self) -> int:
        self._load()
        self._parse(self._rows)
        return max((max(r.cells(), default=0) for r in self._rows), default=1) or 1

    def iter_rows(self, min_row: int = 1, max_row: int | None = None,
                  values_only: bool = False) -> Iterator[tuple]:
        width = self.max_column
        last = max_row if max_row is not None else self.max_row
        for number in range(min_row, last + 1):
            values = self.row_values(number)
            if values_only:
                yield tuple(values.get(c) for c in range(1, width + 1))
            else:
                yield tuple(Cell(number, c, values.get(c)) for c in range(1, width + 1))

    # ----------------------------------------------------------------- writing

    def new_cell(self, row: int, column: int):
        """An empty `<c>` at (row, column), replacing the cell there (the caller fills it)."""
        found = self._row(row, create=True)
        assert found is not None
        cells = found.cells()
        old = cells.get(column)
        element = found.element.makeelement(qn("c"), {"r": f"{column_letters(column)}{row}"})
        if old is not None:
            found.element.replace(old, element)
        else:
            later = [e for c, e in cells.items() if c > column]
            ext = [e for e in found.element if local(e) == "extLst"]
            anchor: Any = min(later, key=found.element.index) if later else \
                (ext[0] if ext else None)
            if anchor is None:
                found.element.append(element)
            else:
                anchor.addprevious(element)
        cells[column] = element
        found.dirty = True
        old_bounds = self._written or (column, row, column, row)
        self._written = (min(old_bounds[0], column), min(old_bounds[1], row),
                         max(old_bounds[2], column), max(old_bounds[3], row))
        return element

    def remove_cell(self, row: int, column: int) -> None:
        found = self._row(row)
        if found is None or column not in found.cells():
            return
        found.element.remove(found.cells().pop(column))
        found.dirty = True

    def _element(self, name: str, create: bool = False):
        self._load()
        found = self.root.find(qn(name))
        if found is None and create:
            found = place(self.root, name, WORKSHEET_ORDER)
            self._changed = True
        return found

    def column_style(self, column: int) -> int | None:
        """The style of `<col>` covering `column`, if any."""
        cols = self._element("cols")
        for col in (cols if cols is not None else []):
            if _covers(col, column) and (col.get("style") or "").isdigit():
                return int(col.get("style"))
        return None

    def set_column(self, column: int, *, width: float | None, style: int | None) -> None:
        """Give a column no `<col>` covers yet a width and style; a column a person's
        `<col>` covers keeps it."""
        cols = self._element("cols")
        if cols is not None and any(_covers(c, column) for c in cols if local(c) == "col"):
            return
        if width is None and style is None:
            return
        cols = self._element("cols", create=True)
        after = [c for c in cols if local(c) == "col" and _int(c.get("min")) > column]
        attrs = {"min": str(column), "max": str(column)}
        if width is not None:
            attrs.update(width=repr(float(width)), customWidth="1")
        if style is not None:
            attrs["style"] = str(style)
        sub(cols, "col", attrs, index=cols.index(after[0]) if after else None)
        self._changed = True

    def add_element(self, name: str, attrs: dict[str, str] | None = None):
        """A new child `name` of the worksheet, in CT_Worksheet's order."""
        self._load()
        self._changed = True
        return place(self.root, name, WORKSHEET_ORDER, attrs)

    def tree(self):
        """The sheet's tree without its rows, to read."""
        self._load()
        return self.root

    def root_for_edit(self):
        """The sheet's tree without its rows, for an edit the caller makes (it is written)."""
        self._load()
        self._changed = True
        return self.root

    # ----------------------------------------------------------------- tables and ranges

    def tables(self) -> dict[str, Any]:
        """Table part name -> its parsed root."""
        package = self.book.package
        return {part: package.xml(part) for part in package.related(self.part, REL_TABLE)}

    def table_number_format(self, column: int) -> str | None:
        """The number format a table gives new cells of `column` (its `dataDxfId`)."""
        for table in self.tables().values():
            bounds = parse_range(table.get("ref", ""))
            if bounds is None or not bounds[0] <= column <= bounds[2]:
                continue
            columns = [e for e in table.iter(qn("tableColumn"))]
            position = column - bounds[0]
            if position < len(columns) and (columns[position].get("dataDxfId") or "").isdigit():
                return self.book.styles.dxf_number_format(int(columns[position].get("dataDxfId")))
        return None

    def grow_ranges(self, row: int) -> None:
        """Stretch what ends on the row above down over `row`: tables (and their
        autofilters), the sheet's autofilter, data validations and conditional formats (also
        the x14 ones in `<extLst>`), and the defined names that cover a grown table or
        autofilter (`_xlnm._FilterDatabase`, a person's name for the table's range)."""
        self._load()
        package = self.book.package
        tables = self.tables()
        changed, grown, tables_grown = grow_sheet_ranges(self.root, tables, row)
        for part in tables_grown:
            package.touch(part)
        self._changed |= changed
        self.book.grow_names(self.title, row, grown)

    def finish(self) -> None:
        if self.root is None:
            return
        dirty = [r for r in self._rows if r.dirty]
        if not dirty and not self._changed:
            return
        if self._written is not None:
            grow_dimension(self._element("dimension"), self._written)
        for row in dirty:
            spans = row.element.get("spans", "")
            low, _, high = spans.partition(":")
            cells = row.cells()
            if low.isdigit() and high.isdigit() and cells:
                row.element.set("spans", f"{min(int(low), min(cells))}:"
                                         f"{max(int(high), max(cells))}")
        mark = f"<?{_PLACEHOLDER} {self._token}?>".encode()
        pieces = serialise(self.root, self._prolog).split(mark)
        if len(pieces) != 2:
            raise WorkbookError(f"{self.book.package.name}: {self.part} could not be written")
        body = [pieces[0]]
        for row in self._rows:
            body.append(row.gap)
            if row.raw is not None and not row.dirty:
                body.append(row.raw)
            elif row.element is not None and (len(row.element) or row.element.attrib):
                data = etree.tostring(self._wrapped(row.element), encoding="UTF-8")
                body.append(data[data.index(b">") + 1:data.rindex(b"</")])
        body += [self._trailing, pieces[1]]
        self.book.package.write(self.part, b"".join(body))


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _covers(col, column: int) -> bool:
    return _int(col.get("min")) <= column <= _int(col.get("max"))


NEW_SHEET = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
             b'<worksheet xmlns="' + NS_MAIN.encode() + b'" '
             b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
             b'<dimension ref="A1"/><sheetViews><sheetView workbookViewId="0">'
             b'<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
             b'<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView>'
             b'</sheetViews><sheetFormatPr defaultRowHeight="15"/><sheetData/>'
             b'<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" '
             b'footer="0.3"/></worksheet>')
