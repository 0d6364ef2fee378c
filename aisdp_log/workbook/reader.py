"""Read a workbook into a typed log, keeping sheet row numbers, after checking the file is safe.

The reader is python-calamine (fast, no formulas run). Before any parser sees the file, the zip
container is checked for what inflating it would cost: the declared sizes of its parts against a
budget, and the member count, so a zip bomb is stopped in well under a millisecond. Before calamine reads a sheet, one
streaming pass over its XML finds what calamine reads as empty (formulas never calculated,
Excel error cells) and whether the values' bounding box could exhaust memory (a stray value
typed at XFD1048576).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log import spec
from aisdp_log.config import Config
from aisdp_log.domain import values
from aisdp_log.domain.values import as_text, normalise
from aisdp_log.errors import WorkbookError
from aisdp_log.findings import CATALOGUE, Finding
from aisdp_log.workbook.package import Package, normal_name

# Limits for the zip container: what inflating would cost, judged from the declared sizes (the
# compression ratio says nothing of cost: a real 57 MB sheet deflates 121:1 as shipped and
# 250:1 re-deflated). A sheet formatted down to row 1,048,576 was measured at 61 MiB
# (Excel-style styled rows) to 395 MiB (17 styled empty cells per row). A part that declares
# less than it holds is cut at its declared size by every reader (zipfile, calamine).
MAX_MEMBERS = 10_000
MAX_TOTAL_UNCOMPRESSED = 1 << 30  # 1 GiB of XML is far beyond any log
MAX_PART_UNCOMPRESSED = 512 << 20  # one part: the sheet formatted to the last row fits
SCAN_CHUNK = 4 << 20  # sheet XML is scanned for formulas and errors in chunks, never whole
# calamine allocates the bounding box of a sheet's values at once (about 32 bytes a cell): one
# value typed at XFD10001 would ask for gigabytes and the process would be killed. A log of
# 40 columns and 10,000 rows is 400,000 cells.
MAX_CELLS = 10_000_000

#: Excel's last column is XFD, the 16,384th.
MAX_COLUMNS = 16_384

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def column_letter(index: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def cell_ref(row: int, column_index: int) -> str:
    """Sheet row number (1-based) and 0-based column -> `H7`."""
    return f"{column_letter(column_index)}{row}"


# --------------------------------------------------------------------------- the container

def display_name(path: Path | str) -> str:
    """The path as error messages show it: quoted when it holds a line break or another
    control character, so the message stays one line."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def check_container(path: Path) -> zipfile.ZipFile:
    """Open `path` as an .xlsx zip after the safety checks; raise WorkbookError naming the cause."""
    name = display_name(path)
    if not path.exists():
        raise WorkbookError(f"{name}: no such file; check the path")
    if path.is_dir():
        raise WorkbookError(f"{name}: is a folder, not an .xlsx workbook; pass the workbook file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if head == OLE_MAGIC:
                fh.seek(0)
                blob = fh.read(16 << 20)
                if "EncryptionInfo".encode("utf-16-le") in blob or \
                        "EncryptedPackage".encode("utf-16-le") in blob:
                    raise WorkbookError(
                        f"{name}: the workbook is encrypted (password-protected); save an "
                        "unprotected copy as .xlsx and validate that")
                raise WorkbookError(
                    f"{name}: an old Excel 97-2003 .xls file; open it and save it as "
                    "Excel Workbook (.xlsx)")
    except OSError as exc:
        raise WorkbookError(f"{name}: cannot be read ({exc.strerror or exc}); check its "
                            "permissions") from None
    if not head:
        raise WorkbookError(f"{name}: the file is empty, not an .xlsx workbook; restore it from a "
                            "backup, or write a new one with `aisdp-log template`")
    if not head.startswith(b"PK"):
        kind = _guess_text_kind(path)
        raise WorkbookError(f"{name}: {kind}, not an .xlsx workbook; open it in Excel or "
                            "LibreOffice and save it as Excel Workbook (.xlsx)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise WorkbookError(f"{name}: not a readable .xlsx workbook (damaged zip: "
                            f"{_one_line(exc)}); restore it from a backup or re-save it in "
                            "Excel") from None
    try:
        _check_members(archive, name)
    except WorkbookError:
        archive.close()
        raise
    return archive


def _guess_text_kind(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            sample = fh.read(4096)
    except OSError:
        return "not a zip archive"
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return "not a zip archive"
    first = text.splitlines()[0] if text.strip() else ""
    if first.lstrip().startswith("<"):
        return "an XML or HTML file"
    if "," in first or ";" in first or "\t" in first:
        return "a CSV or text file"
    return "a text file"


def _check_members(archive: zipfile.ZipFile, name: str) -> None:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise WorkbookError(f"{name}: the zip holds {len(infos)} members (limit {MAX_MEMBERS}); "
                            "refusing to open a file built to exhaust memory; if it is a real "
                            "log, save a copy from Excel or LibreOffice")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise WorkbookError(f"{name}: the zip is encrypted; save an unprotected .xlsx copy")
        total += info.file_size
        if info.file_size > MAX_PART_UNCOMPRESSED:
            raise WorkbookError(
                f"{name}: {display_name(info.filename)} would inflate to "
                f"{info.file_size / 2**20:,.0f} MiB (limit {MAX_PART_UNCOMPRESSED >> 20} MiB a "
                "part; a zip bomb?); refusing to inflate it; if it is a real log, delete the "
                "stray cells and formatting outside the log and save it again")
    if total > MAX_TOTAL_UNCOMPRESSED:
        raise WorkbookError(f"{name}: the workbook would inflate to {total / 2**30:.1f} GiB "
                            "(limit 1 GiB); refusing to open it; keep one log per workbook")
    workbook = Package(archive).workbook
    names = {normal_name(info.filename) for info in infos}
    if workbook is not None and workbook.lower().endswith(".bin") or \
            workbook is None and "xl/workbook.bin" in names:
        raise WorkbookError(f"{name}: an Excel Binary Workbook (.xlsb), which aisdp-log cannot "
                            "read; open it in Excel and save it as Excel Workbook (.xlsx)")
    if workbook is None:
        if "mimetype" in names and "content.xml" in names:
            raise WorkbookError(f"{name}: an OpenDocument (.ods) spreadsheet; save it as Excel "
                                "Workbook (.xlsx)")
        if "word/document.xml" in names:
            raise WorkbookError(f"{name}: a Word document, not an .xlsx workbook; pass the "
                                "experiment log")
        raise WorkbookError(f"{name}: a zip archive but not an .xlsx workbook "
                            "(no workbook part: neither _rels/.rels nor xl/workbook.xml names "
                            "one); pass the experiment log, saved as Excel Workbook (.xlsx)")


# --------------------------------------------------------------------------- sheets

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


def _attrs(tag: bytes) -> dict[bytes, bytes]:
    return {name: double or single for name, double, single in _ATTR.findall(tag)}


_ATTR = re.compile(rb"""([\w:]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def sheet_xml_paths(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its part (normal name), from the workbook part `_rels/.rels` names and
    its relationships; sheets calamine cannot read (Excel 4.0 macro sheets) are left out."""
    return dict(Package(archive).sheets)


def scan_cells(archive: zipfile.ZipFile, member: str) -> tuple[set[str], dict[str, str]]:
    """(formulas with no saved value, Excel error cells -> the error shown, e.g. `#N/A`).

    calamine reads both as an empty cell, so without this a `#DIV/0!` would pass as "empty"
    and a never-calculated formula as a blank."""
    scan = _scan(archive, member)
    return scan.missing, scan.errors


@dataclass
class _SheetScan:
    """What one streaming pass over a sheet's XML found."""

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


def _scan(archive: zipfile.ZipFile, member: str) -> _SheetScan:
    """One streaming pass: formulas, errors, and cheap clues to the sheet's extent. The XML
    is read in chunks (a sheet formatted to row 1,048,576 is tens of MB); a chunk with no
    formula and no error costs a few byte searches."""
    scan = _SheetScan()
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


def exact_extent(archive: zipfile.ZipFile, member: str) -> tuple[int, int, str]:
    """(rows, columns, last cell) of the bounding box of the cells holding a value, as
    calamine will allocate it. A second, slower pass, taken only when `_scan` has doubts."""
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
    if low_row is None:
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


def _scan_part(xml: bytes, scan: _SheetScan) -> None:
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
            ref = _attrs(attrs).get(b"r")
            if ref and text:
                scan.errors[ref.decode("ascii", "replace")] = \
                    text.decode("utf-8", "replace")[:40]
            continue
        if not text and _HAS_FORMULA.search(body):
            if _STRING_TYPE.search(attrs) and _VALUE_ELEMENT.search(body):
                # Excel's `=IF(..., "x", "")`: a saved result, the empty string; a formula
                # never calculated has no <v> (Excel), or an untyped empty one (openpyxl)
                continue
            ref = _attrs(attrs).get(b"r")
            if ref:
                scan.missing.add(ref.decode("ascii", "replace"))


@dataclass
class Column:
    """A column found in a sheet's header row."""

    index: int
    header: str
    key: str | None = None          # a standard key, `params.<name>` or `metrics.<name>`
    spec: spec.ColumnSpec | None = None
    name: str | None = None         # the parameter or metric name

    @property
    def letter(self) -> str:
        return column_letter(self.index)

    @property
    def display(self) -> str:
        return self.spec.header if self.spec and not self.name else self.header


@dataclass
class Row:
    """One non-empty data row; `number` is the sheet's row number."""

    number: int
    values: list

    def get(self, column: Column | None) -> object:
        if column is None or column.index >= len(self.values):
            return None
        return self.values[column.index]


@dataclass
class Table:
    """A sheet read as header columns and non-empty rows."""

    sheet: str
    columns: list[Column]
    rows: list[Row]
    header_width: int
    by_norm: dict[str, Column] = field(default_factory=dict)
    unsaved_formulas: set[str] = field(default_factory=set)
    #: Excel error cells (`#DIV/0!`, `#N/A`, ...) by reference; calamine reads them as empty.
    error_cells: dict[str, str] = field(default_factory=dict)
    merged: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)

    def column(self, header: str) -> Column | None:
        return self.by_norm.get(spec.normalise_header(header))

    @property
    def first_empty_header(self) -> str:
        """The header row's first empty cell (SPEC: where a missing column's finding points),
        a gap between headers included. In a header row full to XFD, the first header that
        repeats an earlier one (a cell free to take the column), else XFD1."""
        used = {c.index for c in self.columns}
        index = 0
        while index in used:
            index += 1
        if index < MAX_COLUMNS:
            return cell_ref(1, index)
        first = {}
        for column in self.columns:
            norm = spec.normalise_header(column.header)
            if first.setdefault(norm, column) is not column:
                return cell_ref(1, column.index)
        return cell_ref(1, MAX_COLUMNS - 1)

    def is_unsaved_formula(self, row: int, column: Column) -> bool:
        return bool(self.unsaved_formulas) and cell_ref(row, column.index) in self.unsaved_formulas

    def error_at(self, row: int, column: Column) -> str | None:
        """The Excel error (`#N/A`) the cell shows, or None."""
        return self.error_cells.get(cell_ref(row, column.index)) if self.error_cells else None


class Workbook:
    """An open, checked workbook; sheets are read on demand."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.name = display_name(path)
        archive = check_container(self.path)
        try:
            self._package = Package(archive)
            self._xml_paths = self._package.sheets
            self._archive = archive
            self._book = _open_calamine(self.path, self.name, self._package)
        except BaseException:
            archive.close()
            raise
        self.sheet_names: list[str] = list(self._book.sheet_names)

    def close(self) -> None:
        self._archive.close()
        try:
            self._book.close()
        except Exception:  # noqa: BLE001 - closing a reader must not fail a report
            pass

    def __enter__(self) -> "Workbook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def find_sheet(self, wanted: str) -> str | None:
        """The sheet's real name, matched case- and space-insensitively."""
        if wanted in self.sheet_names:
            return wanted
        norm = spec.normalise_header(wanted)
        for name in self.sheet_names:
            if spec.normalise_header(name) == norm:
                return name
        return None

    def table(self, sheet_name: str) -> Table:
        """Read one sheet: header row 1, data from row 2, fully empty rows skipped."""
        import python_calamine

        members = self._package.members
        member = members.get(self._xml_paths.get(sheet_name, ""))
        scan = _scan(self._archive, member) if member else _SheetScan()
        # A sheet whose part cannot be told (odd relationships) may be any part: every one
        # is measured, so no file slips past the cell limit by hiding its sheet's name.
        if member is None:
            suspects = [info for name, info in members.items() if name.endswith(".xml")]
        else:
            suspects = [member] if scan.might_be_huge() else []
        for part in suspects:
            rows, columns, last = exact_extent(self._archive, part)
            if rows * columns > MAX_CELLS:
                raise WorkbookError(
                    f"{self.name}: sheet {sheet_name!r} has values as far as cell {last} "
                    f"({rows:,} rows x {columns:,} columns), too many cells to read; delete "
                    "the stray cells outside the log (Ctrl+End shows the last one) and save")
        unsaved, errors = scan.missing, scan.errors
        try:
            sheet = self._book.get_sheet_by_name(sheet_name)
            grid = sheet.to_python(skip_empty_area=False)
            merged = list(sheet.merged_cell_ranges or [])
        except (python_calamine.CalamineError, ValueError, OverflowError, MemoryError) as exc:
            raise WorkbookError(f"{self.name}: sheet {sheet_name!r} cannot be read "
                                f"({_reader_cause(exc)}); open it in Excel or LibreOffice and "
                                "save it again as .xlsx") from None
        # Rows holding cells calamine reads as empty but that hold something (a formula never
        # calculated, an Excel error) are not empty rows, even past the end of calamine's grid.
        hidden_rows = {_ref_row(ref) for ref in (*unsaved, *errors)}
        header = [normalise(v) for v in grid[0]] if grid else []
        columns = [Column(i, " ".join(str(v).split())) for i, v in enumerate(header)
                   if v is not None]
        rows = []
        for offset, raw in enumerate(grid[1:], start=2):
            values = _normalise_row(raw)
            if offset in hidden_rows or any(v is not None for v in values):
                rows.append(Row(offset, values))
        for number in sorted(n for n in hidden_rows if n > len(grid)):
            rows.append(Row(number, [None] * len(header)))
        table = Table(sheet_name, columns, rows, header_width=len(header),
                      unsaved_formulas=unsaved, error_cells=errors, merged=merged)
        for column in columns:
            table.by_norm.setdefault(spec.normalise_header(column.header), column)
        return table


def _normalise_row(raw: list) -> list:
    """`values.normalise` of every cell, inlined: this runs for every cell of the sheet."""
    values = []
    append = values.append
    for value in raw:
        kind = type(value)
        if kind is str:
            value = value.strip() or None
        elif kind is float and value.is_integer() and -_EXACT < value < _EXACT:
            value = int(value)
        append(value)
    return values


_EXACT = float(2**53)


def _ref_row(ref: str) -> int:
    """`H7` -> 7."""
    digits = ref.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz$")
    return int(digits) if digits.isdigit() else 0


def _open_calamine(path: Path, name: str, package: Package | None = None):
    """calamine's reader of the file; of a normalised copy where calamine cannot read the
    package as it is (a workbook part not named workbook.xml, an Excel 4.0 macro sheet)."""
    import python_calamine

    try:
        if package is not None and package.needs_copy:
            return python_calamine.CalamineWorkbook.from_filelike(package.calamine_copy())
        return python_calamine.CalamineWorkbook.from_path(str(path))
    except python_calamine.PasswordError:
        raise WorkbookError(f"{name}: the workbook is password-protected; save an unprotected "
                            "copy") from None
    except (python_calamine.CalamineError, OSError, ValueError, MemoryError, zipfile.BadZipFile,
            zlib.error, EOFError, NotImplementedError) as exc:
        raise WorkbookError(f"{name}: not a readable .xlsx workbook ({_reader_cause(exc)}); "
                            "open it in Excel or LibreOffice and save it again as .xlsx") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


_BARE_WORD = re.compile(r"[\w:.-]{1,60}")


def _reader_cause(exc: BaseException) -> str:
    """calamine's complaint as a cause a person can act on: some of its errors are one bare
    word (`workbook`, `c`: the XML element that was never closed, or a sheet's name)."""
    text = _one_line(exc)
    kind = type(exc).__name__
    if not _BARE_WORD.fullmatch(text):
        return text
    if kind == "XmlError":
        return (f"damaged XML: a <{text}> element is never closed, as when the file was cut "
                "short or edited by hand")
    if kind == "WorksheetNotFound":
        return f"sheet {text!r} is listed in the workbook but its part is missing"
    if kind == "ZipError":
        return f"damaged zip ({text})"
    return f"{kind}: {text}"


# --------------------------------------------------------------------------- the log

@dataclass
class MetricRow:
    name: str
    goal: object
    threshold: object
    description: object
    row: int
    cells: dict[str, str]


class Log:
    """The `Experiments` sheet with its columns resolved against the spec, and the `Metrics`
    sheet. `finding()` turns (code, row, column, message) into a Finding at the right cell, so
    checks never do cell arithmetic."""

    def __init__(self, workbook: Workbook, experiments: Table, metrics: Table | None,
                 config=None):

        self.config = config if config is not None else Config()
        #: column index -> row number -> (typed value, error message)
        self._typed: dict[int, dict[int, tuple[object, str | None]]] = {}
        self._parsers: dict[int, object] = {}
        self._complete: set[int] = set()  # columns whose every row is in `_typed`
        self.workbook = workbook
        self.path = workbook.path
        self.name = workbook.name
        self.table = experiments
        self.sheet = experiments.sheet
        self.metrics_table = metrics
        self.columns: dict[str, Column] = {}
        self.params: dict[str, Column] = {}
        self.metrics: dict[str, Column] = {}
        self.unknown: list[Column] = []
        self.duplicates: list[Column] = []
        self._resolve_columns()
        self.rows = experiments.rows

    def _resolve_columns(self) -> None:
        by_norm = {spec.normalise_header(c.header): c for c in spec.STANDARD_COLUMNS}
        seen: dict[str, Column] = {}
        for column in self.table.columns:
            norm = spec.normalise_header(column.header)
            if norm in seen:
                self.duplicates.append(column)
                continue
            seen[norm] = column
            column_spec = by_norm.get(norm)
            if column_spec is not None:
                column.key, column.spec = column_spec.key, column_spec
                self.columns[column_spec.key] = column
                continue
            prefixed = spec.split_prefixed(column.header)
            if prefixed:
                family, name = prefixed
                column.name = name
                if family == "params":
                    column.key = spec.PARAMS_PREFIX + name
                    column.spec = spec.param_column(name)
                    self.params[name] = column
                else:
                    column.key = spec.METRICS_PREFIX + name
                    column.spec = spec.metric_column(name)
                    self.metrics[name] = column
                continue
            self.unknown.append(column)

    # -- access
    def column(self, key: str) -> Column | None:
        return self.columns.get(key)

    def value(self, row: Row, key: str) -> object:
        return row.get(self.columns.get(key))

    def parse(self, row: Row, column: Column | None) -> tuple[object, str | None]:
        """(typed value, None) or (None, error message) for one cell; (None, None) if empty.

        Cached, so every check sees the same parse and pays for it once."""
        if column is None:
            return _NOTHING
        # One cache per column, keyed by row number: this runs for every cell of the log.
        cache = self._typed.get(column.index)
        if cache is None:
            cache = self._typed[column.index] = {}
        else:
            cached = cache.get(row.number)
            if cached is not None:
                return cached
        values = row.values
        raw = values[column.index] if column.index < len(values) else None
        if raw is None:
            result: tuple[object, str | None] = _NOTHING
        else:
            try:
                result = (self._parser(column)(raw), None)
            except ValueError as exc:
                result = (None, str(exc))
        cache[row.number] = result
        return result

    def parse_column(self, column: Column) -> dict[int, tuple[object, str | None]]:
        """`parse` of every row of one column at once: row number -> (value, error).

        The schema check parses every cell; one tight loop per column instead of a call per
        cell keeps a 10,000-row log well under a second."""
        cache = self._typed.get(column.index)
        if cache is None:
            cache = self._typed[column.index] = {}
        if column.index in self._complete:
            return cache
        parser = self._parser(column)
        index = column.index
        for row in self.rows:
            if row.number in cache:
                continue
            values = row.values
            raw = values[index] if index < len(values) else None
            if raw is None:
                cache[row.number] = _NOTHING
                continue
            try:
                cache[row.number] = (parser(raw), None)
            except ValueError as exc:
                cache[row.number] = (None, str(exc))
        self._complete.add(column.index)
        return cache

    def typed(self, row: Row, key: str) -> object:
        """The parsed value of a standard, `params.` or `metrics.` column, None if empty or bad."""
        column = self.columns.get(key)
        if column is None and key.startswith(spec.PARAMS_PREFIX):
            column = self.params.get(key[len(spec.PARAMS_PREFIX):])
        elif column is None and key.startswith(spec.METRICS_PREFIX):
            column = self.metrics.get(key[len(spec.METRICS_PREFIX):])
        return self.parse(row, column)[0]

    def _parser(self, column: Column):
        """The column's value parser, chosen once per column."""
        parser = self._parsers.get(column.index)
        if parser is None:
            parser = self._parsers[column.index] = self._choose_parser(column)
        return parser

    def _choose_parser(self, column: Column):

        kind = column.spec.kind if column.spec else "text"
        if kind == "param":
            declared = self.config.param(column.name or "")
            if declared is None:
                return values.parse_param
            return lambda v: values.parse_param(v, declared.kind, declared.choices)
        if kind == "choice":
            allowed = column.spec.allowed
            return lambda v: values.parse_choice(v, allowed)
        return _PARSERS[kind]

    def experiment_id(self, row: Row) -> str | None:
        value = self.value(row, "experiment_id")
        return None if value is None else as_text(value)

    def metric_rows(self) -> list[MetricRow]:
        table = self.metrics_table
        if table is None:
            return []
        metric_col = table.column("Metric")
        if metric_col is None:
            return []
        goal_col, threshold_col, desc_col = (table.column(h) for h in
                                             ("Goal", "Threshold", "Description"))
        result = []
        for row in table.rows:
            name = row.get(metric_col)
            cells = {h: cell_ref(row.number, c.index) for h, c in
                     (("Metric", metric_col), ("Goal", goal_col), ("Threshold", threshold_col),
                      ("Description", desc_col)) if c is not None}
            result.append(MetricRow(None if name is None else " ".join(str(name).split()),
                                    row.get(goal_col), row.get(threshold_col),
                                    row.get(desc_col), row.number, cells))
        return result

    # -- findings
    def finding(self, code: str, row: Row | int, column: Column | str | None, message: str,
                *, sheet: str | None = None, experiment_id: str | None | bool = True,
                column_name: str | None = None) -> Finding:
        """A finding at (row, column): `column` may be a Column, a standard key, or None for
        the row's ID cell. The cell falls back to the ID cell (or column A) when the column
        is absent."""
        entry = CATALOGUE[code]
        number = row if isinstance(row, int) else row.number
        if isinstance(column, str):
            column = self.columns.get(column) or self.params.get(column) or \
                self.metrics.get(column)
        if column is None:
            column = self.columns.get("experiment_id")
        index = column.index if column is not None else 0
        if experiment_id is True:
            experiment_id = self.experiment_id(row) if isinstance(row, Row) else None
        elif experiment_id is False:
            experiment_id = None
        return Finding(
            code=code, severity=entry.severity, sheet=sheet or self.sheet,
            cell=cell_ref(number, index), row=number,
            column=column_name or (column.display if column is not None else None),
            experiment_id=experiment_id, message=message)

    def finding_at(self, code: str, sheet: str, cell: str, row: int, column: str | None,
                   message: str, experiment_id: str | None = None) -> Finding:
        """A finding at an explicit cell (another sheet, a header cell)."""
        entry = CATALOGUE[code]
        return Finding(code, entry.severity, sheet, cell, row, column, experiment_id, message)


_NOTHING: tuple[object, str | None] = (None, None)


def _parsers() -> dict:

    return {
        "id": values.parse_id, "date": values.parse_date, "text": values.parse_text,
        "other_params": values.parse_other_params, "data_version": values.parse_data_version,
        "commit": values.parse_commit, "seed": values.parse_seed,
        "duration": values.parse_duration, "artefact_hash": values.parse_artefact_hash,
        "rerun": values.parse_rerun_mark, "metric": values.parse_number,
    }


_PARSERS = _parsers()


def load_log(path: Path | str, config=None) -> Log:
    """Open and read a log; raise WorkbookError (one line) where nothing can be checked."""
    workbook = Workbook(path)
    try:
        sheet = workbook.find_sheet(spec.SHEET_EXPERIMENTS)
        if sheet is None:
            listed = ", ".join(repr(s) for s in workbook.sheet_names[:8]) or "none"
            raise WorkbookError(f"{workbook.name}: no sheet named 'Experiments' (sheets: "
                                f"{listed}); `aisdp-log template` writes one")
        experiments = workbook.table(sheet)
        metrics_name = workbook.find_sheet(spec.SHEET_METRICS)
        metrics = workbook.table(metrics_name) if metrics_name else None
        return Log(workbook, experiments, metrics, config)
    except BaseException:
        workbook.close()
        raise
