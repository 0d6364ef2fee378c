"""Scan a sheet's XML, streaming, for what calamine cannot tell: cells it reads as empty
(formulas never calculated, Excel error cells) and whether the values' bounding box could
exhaust memory (a stray value typed at XFD1048576)."""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass, field

from aisdp_log.workbook.table import cell_ref

SCAN_CHUNK = 4 << 20  # sheet XML is scanned for formulas and errors in chunks, never whole
# calamine allocates the bounding box of a sheet's values at once (about 32 bytes a cell): one
# value typed at XFD10001 would ask for gigabytes and the process would be killed. A log of
# 40 columns and 10,000 rows is 400,000 cells.
MAX_CELLS = 10_000_000


_CELL = re.compile(rb'<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)', re.S)
_HAS_FORMULA = re.compile(rb'<(?:\w+:)?f[\s>/]')
_VALUE = re.compile(rb'<(?:\w+:)?(?:v|is)\b[^>]*>(.+?)</', re.S)
_ERROR_TYPE = re.compile(rb"""\st=["']e["']""")
_STRING_TYPE = re.compile(rb"""\st=["']str["']""")
_VALUE_ELEMENT = re.compile(rb'<(?:\w+:)?v[\s>/]')
_CELL_START = re.compile(rb'<(?:\w+:)?c[\s>/]')
_DIMENSION = re.compile(rb"""<(?:\w+:)?dimension\s+ref=["']([A-Za-z0-9:$]+)["']""")
_REF = re.compile(rb"\$?([A-Za-z]{1,3})\$?(\d{1,7})")
_REF_ATTR = re.compile(rb"""\sr=["']([A-Z]+)(\d+)["']""")
# A cell past column DA (105), or at row 100,000 or below: then the exact extent is measured.
# Without one, values fit in 104 columns x 99,999 rows, about MAX_CELLS.
_FAR_CELL = re.compile(rb""" r="(?:[D-Z][A-Z]|[A-Z]{3}|[A-Z]{1,2}\d{6})""")
_FAR_CELL_SINGLE = re.compile(rb""" r='(?:[D-Z][A-Z]|[A-Z]{3}|[A-Z]{1,2}\d{6})""")
_VALUED_CELL = re.compile(rb"""<(?:\w+:)?c\s[^>]*?\br=["']([A-Z]+)(\d+)["'][^>]*?(?<!/)>""")


@dataclass
class SheetScan:
    """What one streaming pass over a sheet's XML found: formulas with no saved value and
    Excel error cells (-> the error shown), which calamine reads as empty cells."""

    missing: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    dimension: tuple[int, int] | None = None   # (last row, last column) the writer declared
    last_valued_row: int = 0                   # the row of the last cell holding a value
    far: bool = False                           # a cell past column DA or row 99,999
    markers: tuple[bytes, ...] = (b"<f", b":f", b't="e"', b"t='e'")

    def might_be_huge(self) -> bool:
        """Whether the values' bounding box must be measured exactly before calamine reads
        the sheet: no or a big declared dimension, a far cell, or values below the dimension."""
        if self.dimension is None or self.far:
            return True
        rows, columns = self.dimension
        return rows * columns > MAX_CELLS or self.last_valued_row > rows


def scan_sheet(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo) -> SheetScan:
    """One streaming pass: formulas, errors, and cheap clues to the sheet's extent. The XML
    is read in chunks (a sheet formatted to row 1,048,576 is tens of MB); a chunk with no
    formula and no error costs a few byte searches."""
    scan = SheetScan()
    try:
        with archive.open(member) as stream:
            carry = b""
            first = True
            while True:
                chunk = stream.read(SCAN_CHUNK)
                if first:
                    first = False
                    scan.markers = _markers(chunk)
                    dimension = _DIMENSION.search(chunk)
                    if dimension:
                        scan.dimension = _ref_extent(dimension.group(1))
                if not chunk:
                    _scan_part(carry, scan)
                    break
                buffer = carry + chunk
                cut = _safe_cut(buffer)
                _scan_part(buffer[:cut], scan)
                carry = buffer[cut:]
    except (KeyError, zipfile.BadZipFile, OSError, NotImplementedError, EOFError, zlib.error):
        pass
    return scan


def _ref_extent(ref: bytes) -> tuple[int, int] | None:
    """`A1:AN10001` -> (10001, 40); None if unreadable."""
    match = _REF.fullmatch(ref.split(b":")[-1])
    if not match:
        return None
    return int(match.group(2)), _column_number(match.group(1))


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def exact_extent(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo
                 ) -> tuple[int, int, str]:
    """(rows, columns, last cell) of the bounding box of the cells holding a value, as
    calamine will allocate it. A second, slower pass, taken only when `scan_sheet` has doubts."""
    low_row = low_column = None
    high_row = high_column = 0
    try:
        with archive.open(member) as stream:
            carry = b""
            while True:
                chunk = stream.read(SCAN_CHUNK)
                buffer = carry + chunk
                cut = _safe_cut(buffer) if chunk else len(buffer)
                for letters, digits in _VALUED_CELL.findall(buffer, 0, cut):
                    row, column = int(digits), _column_number(letters)
                    low_row = row if low_row is None else min(low_row, row)
                    low_column = column if low_column is None else min(low_column, column)
                    high_row, high_column = max(high_row, row), max(high_column, column)
                carry = buffer[cut:]
                if not chunk:
                    break
    except (KeyError, zipfile.BadZipFile, OSError, NotImplementedError, EOFError, zlib.error):
        pass
    if low_row is None or low_column is None:  # set together, by the first cell
        return 0, 0, "A1"
    return (high_row - low_row + 1, high_column - low_column + 1,
            cell_ref(high_row, high_column - 1))


def _safe_cut(buffer: bytes) -> int:
    """Where to split `buffer` so that no cell straddles the cut: before the last cell's start
    tag. A cell is at most a few hundred KB (32,767 characters of text), so one that started
    more than 1 MiB back is closed, and the last `<` is safe."""
    window = max(0, len(buffer) - (1 << 20))
    last = max(buffer.rfind(b"<c ", window), buffer.rfind(b"<c>", window))
    if last < 0:  # no plain cell start: maybe namespace-prefixed cells (`<x:c r=...>`)
        for match in _CELL_START.finditer(buffer, window):
            last = match.start()
    if last >= 0:
        return last
    position = buffer.rfind(b"<")
    return len(buffer) if position < 0 else position


def _markers(first_chunk: bytes) -> tuple[bytes, ...]:
    """Byte strings whose absence proves a part has no formula and no error cell. Each search
    costs about 1 ms per MB ('<' is everywhere), so only the forms this file uses are sought:
    namespace prefixes (`<x:f>`) and single-quoted attributes are rare."""
    markers = [b"<f", b't="e"']
    if _PREFIXED.search(first_chunk):
        markers.append(b":f")
    if b"='" in first_chunk:
        markers.append(b"t='e'")
    return tuple(markers)


_PREFIXED = re.compile(rb"<\w+:(?:worksheet|sheetData|row|c)\b")


def _scan_part(xml: bytes, scan: SheetScan) -> None:
    # the last cell that closes with </c> holds a value (empty styled cells are `<c .../>`)
    end = max(xml.rfind(b"</c>"), xml.rfind(b":c>"))
    if end > 0:
        ref = _REF_ATTR.search(xml, max(xml.rfind(b"<c ", 0, end), xml.rfind(b":c ", 0, end),
                                        0), end)
        if ref:
            scan.last_valued_row = max(scan.last_valued_row, int(ref.group(2)))
    if not scan.far and (_FAR_CELL.search(xml) or
                         (b" r='" in xml and _FAR_CELL_SINGLE.search(xml))):
        scan.far = True
    if not any(marker in xml for marker in scan.markers):
        return
    for attrs, body in _CELL.findall(xml):
        if not body:
            continue
        value = _VALUE.search(body)
        text = value.group(1).strip() if value is not None else b""
        if _ERROR_TYPE.search(attrs):
            address = _address(attrs)
            if address and text:
                scan.errors[address] = \
                    text.decode("utf-8", "replace")[:40]
            continue
        if not text and _HAS_FORMULA.search(body):
            if _STRING_TYPE.search(attrs) and _VALUE_ELEMENT.search(body):
                # Excel's `=IF(..., "x", "")`: a saved result, the empty string; a formula
                # never calculated has no <v> (Excel), or an untyped empty one (openpyxl)
                continue
            address = _address(attrs)
            if address:
                scan.missing.add(address)


def _address(attrs: bytes) -> str | None:
    found = _REF_ATTR.search(attrs)
    return (found.group(1) + found.group(2)).decode() if found else None
