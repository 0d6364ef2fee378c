"""One worksheet as the surgical writer edits it: rows are spliced into the sheet XML as bytes;
a row nobody wrote to is copied as it was, byte for byte.

`Sheet` offers the small part of openpyxl's interface the callers use (`ws.title`, `ws[1]`,
`ws.cell(row, column).value`, `ws.iter_rows(min_row=2, values_only=True)`), reading values the
way Excel shows them (shared strings, inline strings, saved values of formulas, dates by their
number format). Its workbook is `aisdp_log.workbook.xlsx_workbook.Workbook`."""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

from aisdp_log.errors import WorkbookError
from aisdp_log.spec import column_letters, column_number
from aisdp_log.workbook.xlsx_package import (
    REL_TABLE,
    SheetEntry,
    attributes,
    format_range,
    insert_before_close,
    matched,
    parse_range,
    read_rels,
    set_attribute,
    unescape_xml,
)
from aisdp_log.workbook.xlsx_ranges import grow_dimension, grow_in
from aisdp_log.workbook.xlsx_text import decode_ooxml, rich_text

if TYPE_CHECKING:
    from aisdp_log.workbook.xlsx_workbook import Workbook

_SHEET_DATA = re.compile(rb"<((?:\w+:)?)sheetData\b[^>]*?(/?)>")
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c\s*>)", re.DOTALL)
_ROW_NUMBER = re.compile(rb"""\sr\s*=\s*["'](\d+)["']""")
_CELL_REF = re.compile(rb"""\sr\s*=\s*["']\$?([A-Za-z]{1,3})\$?(\d+)["']""")
_V = re.compile(rb"<(?:\w+:)?v\s*>(.*?)</(?:\w+:)?v\s*>|<(?:\w+:)?v\s*/>", re.DOTALL)
_TABLE_FILTER = re.compile(rb"(<(?:\w+:)?autoFilter\b[^>]*?\sref\s*=\s*[\"'])[^\"']*([\"'])")


@dataclass
class Cell:
    """A read-only view of one cell (what callers used openpyxl's cell for)."""
    row: int
    column: int
    value: object

    @property
    def coordinate(self) -> str:
        return f"{column_letters(self.column)}{self.row}"


class _Row:
    __slots__ = ("_cells", "dirty", "head", "inner", "number", "span", "trailer")

    def __init__(self, number: int, head: bytes | None, span: tuple[int, int] | None,
                 inner: bytes | None):
        self.number, self.head, self.span, self.inner = number, head, span, inner
        self._cells: dict[int, bytes] | None = None if inner is not None else {}
        self.trailer = b""
        self.dirty = span is None

    def cells(self) -> dict[int, bytes]:
        if self._cells is None:
            inner = self.inner
            assert inner is not None  # _cells starts as {} for a row without inner XML
            cells: dict[int, bytes] = {}
            column, end = 0, 0
            for match in _CELL.finditer(inner):
                ref = _CELL_REF.search(match.group(1))
                column = column_number(ref.group(1).decode()) if ref else column + 1
                cells[column] = match.group()
                end = match.end()
            self.trailer = inner[end:].strip() if cells else inner.strip()
            self._cells = cells
        return self._cells


class Sheet:
    """One worksheet part: its rows are parsed on first use; only changed rows and the
    ranges that grow over them are re-written."""

    def __init__(self, workbook: Workbook, entry: SheetEntry):
        self.workbook, self.entry = workbook, entry
        self.title = entry.title
        self.part = entry.part
        self._loaded = False
        self._tables: dict[str, bytes] | None = None
        self._written: tuple[int, int, int, int] | None = None  # bounds of written cells

    # ----------------------------------------------------------------- parsing

    def _load(self) -> None:
        if self._loaded:
            return
        text = self.workbook.package.read(self.part)
        found = _SHEET_DATA.search(text)
        if found is None:
            raise WorkbookError(f"{self.workbook.package.name}: sheet {self.title!r} has no "
                                "<sheetData>")
        self.prefix = found.group(1)
        if found.group(2):  # <sheetData/>
            self._head = text[:found.start()] + b"<" + self.prefix + b"sheetData>"
            self._region = b""
            self._tail = b"</" + self.prefix + b"sheetData>" + text[found.end():]
        else:
            close = re.compile(rb"</" + re.escape(self.prefix) + rb"sheetData\s*>")
            end = close.search(text, found.end())
            if end is None:
                raise WorkbookError(f"{self.workbook.package.name}: sheet {self.title!r} is "
                                    "damaged (no </sheetData>)")
            self._head = text[:found.end()]
            self._region = text[found.end():end.start()]
            self._tail = text[end.start():]
        rows = _split_rows(self._region, self.prefix)
        rows.sort(key=lambda r: r.number)
        self._rows = rows
        self._numbers = [r.number for r in rows]
        self._head_original = self._head
        self._tail_original = self._tail
        self._loaded = True

    def _row(self, number: int, create: bool = False) -> _Row | None:
        self._load()
        at = bisect.bisect_left(self._numbers, number)
        if at < len(self._numbers) and self._numbers[at] == number:
            return self._rows[at]
        if not create:
            return None
        row = _Row(number, None, None, None)
        self._rows.insert(at, row)
        self._numbers.insert(at, number)
        return row

    def _value(self, raw: bytes) -> object:
        head_end = raw.index(b">") + 1
        attrs = attributes(raw[:head_end])
        kind = attrs.get("t", "n")
        inner = raw[head_end:] if not raw.endswith(b"/>") or raw.count(b">") > 1 else b""
        if kind == "inlineStr":
            found = re.search(rb"<(?:\w+:)?is\b[^>]*>(.*?)</(?:\w+:)?is\s*>", inner, re.DOTALL)
            return rich_text(found.group(1)) if found else None
        found = _V.search(inner)
        if found is None:
            return None
        text = unescape_xml(found.group(1) or b"")
        if kind == "s":
            strings = self.workbook.shared_strings()
            return strings[int(text)] if text.strip().isdigit() and int(text) < len(strings) \
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
        style = attrs.get("s", "0")
        if style.isdigit() and style != "0" and self.workbook.styles.is_date(int(style)):
            try:
                return self.workbook.epoch + dt.timedelta(days=number)
            except OverflowError:
                return number
        if number.is_integer() and re.fullmatch(r"\s*-?\d+\s*", text):
            return int(number)
        return number

    def style_of(self, row: int, column: int) -> int | None:
        found = self._row(row)
        raw = found.cells().get(column) if found else None
        if raw is None:
            return None
        style = attributes(raw[:raw.index(b">") + 1]).get("s")
        return int(style) if style and style.isdigit() else None

    # ----------------------------------------------------------------- reading

    def value(self, row: int, column: int) -> object:
        found = self._row(row)
        raw = found.cells().get(column) if found else None
        return None if raw is None else self._value(raw)

    def row_values(self, row: int) -> dict[int, object]:
        found = self._row(row)
        return {} if found is None else {c: self._value(raw)
                                         for c, raw in found.cells().items()}

    def row_numbers(self) -> list[int]:
        self._load()
        return list(self._numbers)

    def column_values(self, column: int) -> dict[int, object]:
        """Row -> value of every cell in `column` that exists (one pass over the sheet)."""
        self._load()
        if self._cells_have_refs():
            # One search over the whole sheet for `<c r="B` instead of parsing every row.
            found = re.compile(b"<" + re.escape(self.prefix) + b'c r="' +
                               column_letters(column).encode() + rb'(\d+)"[^>]*?'
                               rb"(?:/>|>.*?</(?:\w+:)?c>)", re.DOTALL)
            raws = {int(m.group(1)): m.group() for m in found.finditer(self._region)}
            for row in self._rows:
                if row.dirty:
                    raw = row.cells().get(column)
                    if raw is None:
                        raws.pop(row.number, None)
                    else:
                        raws[row.number] = raw
        else:
            raws = {row.number: row.cells()[column] for row in self._rows
                    if column in row.cells()}
        return {number: self._value(raw) for number, raw in raws.items()}

    def _cells_have_refs(self) -> bool:
        """Whether every cell starts `<c r="` (Excel, LibreOffice, openpyxl, xlsxwriter)."""
        if not hasattr(self, "_refs_first"):
            start = b"<" + self.prefix + b"c"
            self._refs_first = self._region.count(start + b" ") + \
                self._region.count(start + b">") + self._region.count(start + b"/") == \
                self._region.count(start + b' r="') and \
                re.search(re.escape(start) + rb"[\t\r\n]", self._region) is None
        return self._refs_first

    def cell(self, row: int, column: int) -> Cell:
        """The cell at (row, column), read-only; write with `writer.set_cell`."""
        return Cell(row, column, self.value(row, column))

    @overload
    def __getitem__(self, key: int) -> tuple[Cell, ...]: ...
    @overload
    def __getitem__(self, key: str) -> Cell: ...

    def __getitem__(self, key: int | str) -> tuple[Cell, ...] | Cell:
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
        return max((max(r.cells(), default=0) for r in self._rows), default=1) or 1

    def iter_rows(self, min_row: int = 1, max_row: int | None = None,
                  values_only: bool = False) -> Iterator[tuple]:
        self._load()
        width = self.max_column
        last = max_row if max_row is not None else self.max_row
        for number in range(min_row, last + 1):
            values = self.row_values(number)
            if values_only:
                yield tuple(values.get(c) for c in range(1, width + 1))
            else:
                yield tuple(Cell(number, c, values.get(c)) for c in range(1, width + 1))

    # ----------------------------------------------------------------- writing

    def put(self, row: int, column: int, raw: bytes | None) -> None:
        """Replace (or add, or with None remove) the `<c>` element at (row, column)."""
        found = self._row(row, create=raw is not None)
        if found is None:
            return
        cells = found.cells()
        if raw is None:
            if column not in cells:
                return
            del cells[column]
        else:
            cells[column] = raw
            old = self._written or (column, row, column, row)
            self._written = (min(old[0], column), min(old[1], row), max(old[2], column),
                             max(old[3], row))
        found.dirty = True

    def column_style(self, column: int) -> int | None:
        """The style of `<col>` covering `column`, if any."""
        self._load()
        for match in re.finditer(rb"<(?:\w+:)?col\b[^>]*>", self._head):
            attrs = attributes(match.group())
            try:
                low, high = int(attrs.get("min", "0")), int(attrs.get("max", "0"))
            except ValueError:
                continue
            if low <= column <= high and attrs.get("style", "").isdigit():
                return int(attrs["style"])
        return None

    def set_column(self, column: int, *, width: float | None, style: int | None) -> None:
        """Give a column no `<col>` covers yet a width and style; a column a person's
        `<col>` covers keeps it."""
        self._load()
        cols = list(re.finditer(rb"<(?:\w+:)?col\b[^>]*>", self._head))
        for match in cols:
            attrs = attributes(match.group())
            if attrs.get("min", "").isdigit() and attrs.get("max", "").isdigit() and \
                    int(attrs["min"]) <= column <= int(attrs["max"]):
                return
        if width is None and style is None:
            return
        entry = b"<" + self.prefix + b'col min="' + str(column).encode() + b'" max="' + \
            str(column).encode() + b'"'
        if width is not None:
            entry += b' width="' + repr(float(width)).encode() + b'" customWidth="1"'
        if style is not None:
            entry += b' style="' + str(style).encode() + b'"'
        entry += b"/>"
        after = [m for m in cols if int(attributes(m.group()).get("min", "0") or 0) > column]
        if after:
            at = after[0].start()
            self._head = self._head[:at] + entry + self._head[at:]
        elif cols:
            self._head = insert_before_close(self._head, b"cols", entry)
        else:
            at = matched(_SHEET_DATA.search(self._head),
                         f"{self.workbook.package.name}: <sheetData> of sheet {self.title!r}"
                         ).start()
            block = b"<" + self.prefix + b"cols>" + entry + b"</" + self.prefix + b"cols>"
            self._head = self._head[:at] + block + self._head[at:]

    # ----------------------------------------------------------------- tables and ranges

    def tables(self) -> dict[str, bytes]:
        """Table part name -> its XML (as changed so far)."""
        if self._tables is None:
            package = self.workbook.package
            self._tables = {rel.target: package.read(rel.target)
                            for rel in read_rels(package, self.part)
                            if rel.rel_type == REL_TABLE and package.has(rel.target)}
        return self._tables

    def table_number_format(self, column: int) -> str | None:
        """The number format a table gives new cells of `column` (its `dataDxfId`)."""
        for text in self.tables().values():
            head = re.search(rb"<(?:\w+:)?table\b[^>]*>", text)
            bounds = parse_range(attributes(head.group()).get("ref", "")) if head else None
            if bounds is None or not bounds[0] <= column <= bounds[2]:
                continue
            columns = re.findall(rb"<(?:\w+:)?tableColumn\b[^>]*>", text)
            position = column - bounds[0]
            if position < len(columns):
                dxf = attributes(columns[position]).get("dataDxfId", "")
                if dxf.isdigit():
                    return self.workbook.styles.dxf_number_format(int(dxf))
        return None

    def grow_ranges(self, row: int) -> None:
        """Stretch tables, the autofilter, data validations and conditional formats that end
        on the row above down over `row`."""
        self._load()
        previous = row - 1
        tables = self.tables()
        for part, text in tables.items():
            head = re.search(rb"<(?:\w+:)?table\b[^>]*>", text)
            if head is None:
                continue
            attrs = attributes(head.group())
            bounds = parse_range(attrs.get("ref", ""))
            totals = attrs.get("totalsRowCount", "0")
            if bounds is None or bounds[3] != previous or bounds[1] >= row or \
                    (totals.isdigit() and int(totals) > 0) or \
                    attrs.get("totalsRowShown") == "1" and "totalsRowCount" in attrs:
                continue
            ref = format_range((bounds[0], bounds[1], bounds[2], row))
            new_head = set_attribute(head.group(), "ref", ref)
            text = text[:head.start()] + new_head + text[head.end():]
            text = _TABLE_FILTER.sub(rb"\g<1>" + ref.encode() + rb"\g<2>", text, count=1)
            tables[part] = text
        self._tail = grow_in(self._tail, row)

    def finish(self) -> None:
        if not self._loaded:
            return
        package = self.workbook.package
        for part, text in (self._tables or {}).items():
            package.write(part, text)
        if not any(r.dirty for r in self._rows) and self._head == self._head_original and \
                self._tail == self._tail_original:
            return
        head = self._head
        if self._written is not None:
            head = grow_dimension(head, self._written)
        pieces = [head]
        position = 0
        for row in self._rows:
            if row.span is not None:
                pieces.append(self._region[position:row.span[0]])
                position = row.span[1]
                if not row.dirty:
                    pieces.append(self._region[row.span[0]:row.span[1]])
                    continue
            pieces.append(self._render(row))
        pieces.append(self._region[position:])
        pieces.append(self._tail)
        package.write(self.part, b"".join(pieces))

    def _render(self, row: _Row) -> bytes:
        cells = row.cells()
        if not cells and not row.trailer and row.head is None:
            return b""
        head = row.head if row.head is not None else \
            b"<" + self.prefix + b'row r="' + str(row.number).encode() + b'">'
        spans = re.search(rb"""\sspans\s*=\s*["'](\d+):(\d+)["']""", head)
        if spans is not None and cells:
            low = min(int(spans.group(1)), min(cells))
            high = max(int(spans.group(2)), max(cells))
            head = set_attribute(head, "spans", f"{low}:{high}")
        name = matched(re.match(rb"<([\w:]+)", head),
                       f"{self.workbook.package.name}: a <row> of sheet {self.title!r}").group(1)
        return head + b"".join(cells[c] for c in sorted(cells)) + row.trailer + \
            b"</" + name + b">"


def _split_rows(region: bytes, prefix: bytes) -> list[_Row]:
    """The `<row>` elements of a `<sheetData>`, found with plain byte searches (a regular
    expression with a lazy `.*?` is several times slower on a large sheet)."""
    rows: list[_Row] = []
    opening, closing = b"<" + prefix + b"row", b"</" + prefix + b"row>"
    number, position = 0, 0
    while True:
        start = region.find(opening, position)
        if start < 0:
            break
        head_end = region.find(b">", start)
        if head_end < 0 or region[start + len(opening):start + len(opening) + 1] not in \
                (b" ", b">", b"/", b"\n", b"\t", b"\r"):
            position = start + len(opening)
            continue
        head = region[start:head_end + 1]
        if head.endswith(b"/>"):
            end, inner, head = head_end + 1, b"", head[:-2] + b">"
        else:
            close = region.find(closing, head_end)
            if close < 0:
                raise WorkbookError("a <row> element is not closed")
            end, inner = close + len(closing), region[head_end + 1:close]
        given = _ROW_NUMBER.search(head)
        number = int(given.group(1)) if given else number + 1
        rows.append(_Row(number, head, (start, end), inner))
        position = end
    return rows
