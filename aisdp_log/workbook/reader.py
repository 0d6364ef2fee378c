"""Read a workbook into a typed log, keeping sheet row numbers, after checking the file is safe.

The reader is python-calamine (fast, no formulas run). Before any parser sees the file,
`workbook.container` checks the zip; before calamine reads a sheet, `workbook.sheet_scan`
finds what calamine reads as empty (formulas never calculated, Excel error cells) and whether
the values' bounding box could exhaust memory (a stray value typed at XFD1048576).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

from aisdp_log import spec
from aisdp_log.domain.values import normalise
from aisdp_log.errors import WorkbookError
from aisdp_log.workbook.container import check_container, display_name, one_line
from aisdp_log.workbook.log import Log
from aisdp_log.workbook.package import Package
from aisdp_log.workbook.sheet_scan import MAX_CELLS, SheetScan, exact_extent, scan_sheet
from aisdp_log.workbook.table import Column, Row, Table


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

    def __enter__(self) -> Workbook:
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
        scan = scan_sheet(self._archive, member) if member else SheetScan()
        # A sheet whose part cannot be told (odd relationships) may be any part: every one
        # is measured, so no file slips past the cell limit by hiding its sheet's name.
        if member is None:
            suspects = [info for name, info in members.items() if name.endswith(".xml")]
        else:
            suspects = [member] if scan.might_be_huge() else []
        for part in suspects:
            n_rows, n_columns, last = exact_extent(self._archive, part)
            if n_rows * n_columns > MAX_CELLS:
                raise WorkbookError(
                    f"{self.name}: sheet {sheet_name!r} has values as far as cell {last} "
                    f"({n_rows:,} rows x {n_columns:,} columns), too many cells to read; delete "
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
    values: list = []
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


_BARE_WORD = re.compile(r"[\w:.-]{1,60}")


def _reader_cause(exc: BaseException) -> str:
    """calamine's complaint as a cause a person can act on: some of its errors are one bare
    word (`workbook`, `c`: the XML element that was never closed, or a sheet's name)."""
    text = one_line(exc)
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
