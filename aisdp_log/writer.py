"""The safe writer: how aisdp-log changes a user's workbook (`add`, `rerun`, `review --sign`).

Contract for callers::

    from aisdp_log.writer import open_workbook_for_update, append_row, ensure_sheet, \\
        find_rows, set_cell

    values = compute_everything_first()              # hashing, reading run.json, training ...
    with open_workbook_for_update(log_path, force=False) as wb:
        ws = wb["Experiments"]
        if find_rows(ws, "Experiment ID", "EXP-007"):
            raise WriteRefused("...")                # nothing is written
        row = append_row(ws, {"Experiment ID": "EXP-007", "Random seed": 7})
        set_cell(ws, row, "Reproducibility", "bitwise")
    # here the file has been replaced atomically, or left byte-identical if anything failed

- `open_workbook_for_update(path, *, force=False)`: a context manager yielding an openpyxl
  Workbook. Before loading it runs guard.py's checks: it refuses (WriteRefused, exit 2) while
  Excel's `~$<name>` or LibreOffice's `.~lock.<name>#` sits beside the name or a symlink's
  target (naming who holds it; `force=True` ignores such a stale lock), a file or folder the
  user may not write, a file owned by someone else, a file with several hard links (unless
  `force`); it waits (up to 60 s) while another aisdp-log writes the same file (an `flock` on
  `.aisdp-log/<name>.lock` beside it; a caller may hold it already through
  `guard.writer_lock`, e.g. across training).
  It runs the reader's zip-safety check, refuses (unless `force`) a workbook holding what
  openpyxl would drop on saving (shapes, text boxes, threaded comments, slicers, sparklines
  and other extensions), then loads the workbook *at entry*: do slow work before entering,
  so the window in which a person's edit could be overwritten stays short. On a clean exit
  it saves to a temp file in the same folder, fsyncs it, copies the original's permission
  bits, `os.replace`s the original and fsyncs the folder; if the file changed on disk since
  it was loaded (a person saved it meanwhile), it refuses instead of discarding their
  change. On an exception nothing is written and the temp is removed; an OSError (disk
  full, quota, I/O) is one line (WriteFailed). The temp file is written in `.aisdp-log/`
  (which ignores itself in git); a writer killed mid-save leaves the original intact plus its
  temp and lock file there, and the next writer (holding the lock) removes both.
- `append_row(ws, values, *, number_formats=None) -> int`: writes a row by header
  (case/space-insensitive; an unknown header raises KeyError) at the first empty row below
  the last filled key cell (`Experiment ID` on Experiments, else the first column; never
  `ws.max_row`, which LibreOffice pads), grows the Excel table, data validations and
  conditional formats that ended on the row above, copies the row above's style (number
  format included; on a first row the table column's, the column's or `number_formats`)
  and writes text as text (`quotePrefix` for text starting with = + - @).
- `ensure_sheet(wb, name, headers, *, widths=None, number_formats=None)`: a tool sheet, made
  on first use; missing headers are added at the end, never reordering a person's columns.
- `find_rows(ws, header, value) -> list[int]`, `set_cell(ws, row, header, value)`,
  `find_sheet(wb, name)` (case/space-insensitive, None when absent).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
import os
import re
import zipfile
from pathlib import Path

from . import guard, spec
from .atomic import atomic_replace
from .errors import WriteRefused
from .values import as_text

TEMP_SUFFIX = ".aisdp-tmp"
LOCK_SUFFIX = ".aisdp-lock"
#: Text starting with these would be read by Excel as a formula; stored with a quote prefix.
FORMULA_STARTS = ("=", "+", "-", "@")
MAX_CELL_TEXT = 32767  # Excel's limit per cell
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


# --------------------------------------------------------------------------- locks
# The checks before a write (Office locks, permissions, owner, hard links) and the writer
# lock live in guard.py; these names stay for callers of 0.1.
check_office_locks = guard.check_office_locks
stale_temp_files = guard.stale_temp_files


# --------------------------------------------------------------------------- atomic update

@contextlib.contextmanager
def open_workbook_for_update(path: Path | str, *, force: bool = False):
    """Yield the workbook at `path` loaded by openpyxl; on a clean exit replace the file
    atomically with the changed workbook. See the module docstring for the guarantees.

    Raises WorkbookError for a file that is missing or unsafe to open, WriteRefused while the
    file is open in Excel/LibreOffice (unless `force`) or another aisdp-log writes it.
    """
    from .workbook import check_container

    given = Path(path)
    # Write beside the real file: replacing a symlink would cut it off from its target.
    target = given.resolve() if given.is_symlink() else given
    if target.suffix.lower() in (".xlsm", ".xltm"):
        raise WriteRefused(f"{given}: a macro-enabled workbook; aisdp-log would drop its "
                           "macros, so it only writes .xlsx files")
    if not target.is_file():
        check_container(target).close()  # the reader's one-line reason for a missing file
    # Office locks (beside the link and its target), permissions, owner, hard links, then
    # the writer lock (waiting for another aisdp-log; re-entrant for a caller holding it).
    with guard.writer_lock(given, force=force):
        archive = check_container(target)
        try:
            lost = parts_openpyxl_drops(archive)
        finally:
            archive.close()
        loaded = _identity(os.stat(target))
        workbook, load_warnings = _load(target)
        lost += load_warnings
        if lost and not force:
            raise WriteRefused(
                f"{given}: saving would remove what aisdp-log's writer (openpyxl) cannot keep: "
                f"{'; '.join(dict.fromkeys(lost))}; move it to another workbook, or pass "
                "--force to write anyway")
        yield workbook
        # Reached only on a clean exit: an exception in the caller skips the save.
        _save_atomically(workbook, target, loaded)


def _identity(status: os.stat_result) -> tuple[int, int, int, int]:
    return status.st_ino, status.st_dev, status.st_size, status.st_mtime_ns


#: Zip members openpyxl does not carry over into the file it saves and a person made.
#: (`customXml/`, document-library metadata rather than content, is dropped too but not
#: refused.)
_DROPPED_MEMBERS = (("xl/threadedComments/", "threaded comments (their replies)"),
                    ("xl/slicers/", "slicers"), ("xl/timelines/", "timelines"))
_SHAPE = re.compile(rb"<(?:\w+:)?(?:sp|grpSp|cxnSp)\b")


def parts_openpyxl_drops(archive) -> list[str]:
    """What in this .xlsx openpyxl would silently leave out when saving (shapes and text
    boxes, threaded comments, slicers, ...); its own load warnings name the rest."""
    lost = []
    names = archive.namelist()
    for prefix, what in _DROPPED_MEMBERS:
        if any(name.startswith(prefix) for name in names):
            lost.append(what)
    for name in names:
        if name.startswith("xl/drawings/drawing") and name.endswith(".xml"):
            with contextlib.suppress(KeyError, OSError, zipfile.BadZipFile):
                if _SHAPE.search(archive.read(name)):
                    lost.append("shapes or text boxes")
                    break
    return lost


def _load(path: Path):
    """(openpyxl Workbook, what its load warnings say it will drop)."""
    import warnings

    import openpyxl
    from .errors import WorkbookError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            workbook = openpyxl.load_workbook(path, rich_text=True, keep_vba=False,
                                              keep_links=True)
        dropped = [" ".join(str(w.message).split())[:120] for w in caught
                   if re.search(r"removed|dropped|dropping", str(w.message))]
        return workbook, dropped
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError,
            MemoryError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise WorkbookError(f"{path}: openpyxl cannot load the workbook for writing "
                            f"({reason})") from None
    except Exception as exc:  # noqa: BLE001 - defusedxml / zip errors are not a traceback
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise WorkbookError(f"{path}: openpyxl cannot load the workbook for writing "
                            f"({type(exc).__name__}: {reason})") from None


def _save_atomically(workbook, path: Path, loaded: tuple[int, int, int, int]) -> None:
    # atomic_replace keeps the log's own permission bits (mkstemp would make it 0600).
    with atomic_replace(path, suffix=TEMP_SUFFIX, temp_dir=guard.tool_dir(path.parent)) as temp:
        workbook.save(temp)
        original = os.stat(path)
        if _identity(original) != loaded:
            # Saved by someone else (a person in Excel, a `git pull`) since we loaded it:
            # replacing it would silently discard their change.
            raise WriteRefused(f"{path}: changed on disk while aisdp-log was updating it; "
                               "nothing was written, run the command again")
        if hasattr(os, "chown"):
            with contextlib.suppress(OSError):  # only root may give a file away
                os.chown(temp, original.st_uid, original.st_gid)


# --------------------------------------------------------------------------- headers and rows

def header_columns(ws) -> dict[str, int]:
    """Normalised header text -> 1-based column index, from row 1 (first occurrence wins)."""
    columns: dict[str, int] = {}
    for cell in next(ws.iter_rows(min_row=1, max_row=1), ()):
        if cell.value is not None and str(cell.value).strip():
            columns.setdefault(spec.normalise_header(cell.value), cell.column)
    return columns


def _column_index(ws, header: str, columns: dict[str, int] | None = None) -> int:
    columns = header_columns(ws) if columns is None else columns
    index = columns.get(spec.normalise_header(header))
    if index is None:
        raise KeyError(f"sheet {ws.title!r} has no column {header!r}")
    return index


def _key_column(ws, columns: dict[str, int]) -> int:
    """The column whose first empty cell marks the end of the data: `Experiment ID` on the
    Experiments sheet, else the first header column."""
    if spec.normalise_header(ws.title) == spec.normalise_header(spec.SHEET_EXPERIMENTS):
        index = columns.get(spec.normalise_header(spec.EXPERIMENT_ID.header))
        if index is not None:
            return index
    if not columns:
        raise KeyError(f"sheet {ws.title!r} has no header row")
    return min(columns.values())


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def next_row(ws) -> int:
    """Where `append_row` writes: the first row below the last filled key cell whose cells
    are all empty. Never `ws.max_row`: LibreOffice pads a table with empty styled rows. A row
    that has text but no ID (a person's draft) is skipped, never overwritten."""
    columns = header_columns(ws)
    key = _key_column(ws, columns)
    last_key_row = 1
    for (row, column), cell in ws._cells.items():  # only cells that exist, not max_row
        if column == key and row > last_key_row and not _is_empty(cell.value):
            last_key_row = row
    filled_rows = {row for (row, _), cell in ws._cells.items()
                   if row > last_key_row and not _is_empty(cell.value)}
    row = last_key_row + 1
    while row in filled_rows:
        row += 1
    return row


def find_rows(ws, header: str, value: object) -> list[int]:
    """Data rows (2..) whose cell under `header` equals `value`: text compared exactly after
    trimming (case-sensitive, as IDs are), numbers as numbers."""
    column = _column_index(ws, header)
    wanted = value.strip() if isinstance(value, str) else value
    rows = []
    for (row, col), cell in ws._cells.items():
        if col != column or row < 2 or cell.value is None:
            continue
        have = cell.value.strip() if isinstance(cell.value, str) else cell.value
        if have == wanted or (isinstance(wanted, str) and not isinstance(have, str)
                              and as_text(have) == wanted):
            rows.append(row)
    return sorted(rows)  # sorting the few matches, not every cell of the sheet


def append_row(ws, values: dict[str, object], *,
               number_formats: dict[str, str] | None = None) -> int:
    """Write `values` (header -> value) as a new row and return its row number.

    Unknown headers raise KeyError (nothing written). The table, data validations and
    conditional formats that ended on the row above grow over the new row; new cells take
    the style and number format of the cell above (or the table column's, the column's, or
    `number_formats[header]`, for the first data row)."""
    columns = header_columns(ws)
    targets = {header: _column_index(ws, header, columns) for header in values}
    row = next_row(ws)
    _grow_ranges(ws, row)
    fallback = {spec.normalise_header(h): f for h, f in (number_formats or {}).items()}
    for header, column in targets.items():
        cell = ws.cell(row=row, column=column)
        _style_like_above(ws, cell, fallback.get(spec.normalise_header(header)))
        _write(cell, values[header])
    return row


def set_cell(ws, row: int, header: str, value: object) -> None:
    """Write one cell of an existing row by header, with the same text-as-text rules."""
    if row < 2:
        raise ValueError("row 1 holds the headers; data rows start at 2")
    cell = ws.cell(row=row, column=_column_index(ws, header))
    _write(cell, value)


_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def _write(cell, value: object) -> None:
    """Store `value` as what it is: text stays text even when it looks like a formula."""
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)  # Excel has no NaN/inf; the text shows what happened
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.replace(tzinfo=None)  # Excel has no time zones
    if value is None:
        cell.value = None
        return
    if isinstance(value, str):
        text = _ILLEGAL.sub("", value)
        if len(text) > MAX_CELL_TEXT:
            raise WriteRefused(f"a value for {cell.coordinate} is {len(text)} characters long; "
                               f"a cell holds at most {MAX_CELL_TEXT}")
        cell.value = text
        cell.data_type = "s"  # openpyxl would store "=..." as a live formula
        cell.quotePrefix = text.startswith(FORMULA_STARTS)
        return
    if isinstance(value, (bool, int, float, dt.date, dt.datetime, dt.time, dt.timedelta)):
        cell.value = value
        if cell.quotePrefix:
            cell.quotePrefix = False
        if isinstance(value, (dt.date, dt.datetime)) and not cell.is_date:
            cell.number_format = DATETIME_FORMAT if isinstance(value, dt.datetime) \
                and value.time() != dt.time(0) else DATE_FORMAT
        return
    raise TypeError(f"cannot write a {type(value).__name__} to a cell; pass text or a number")


def _style_like_above(ws, cell, fallback_format: str | None) -> None:
    above = ws._cells.get((cell.row - 1, cell.column)) if cell.row > 2 else None
    if above is not None and above.has_style:
        cell._style = copy.copy(above._style)
        return
    if cell.has_style and cell.number_format != "General":
        return  # a padded row already carries its table's style
    number_format = _table_column_format(ws, cell) or _column_format(ws, cell) or \
        fallback_format
    if number_format:
        cell.number_format = number_format


def _column_format(ws, cell) -> str | None:
    dimension = ws.column_dimensions.get(cell.column_letter)
    if dimension is not None and dimension.has_style and dimension.number_format != "General":
        return dimension.number_format
    return None


def _table_column_format(ws, cell) -> str | None:
    for table in ws.tables.values():
        bounds = _bounds(table.ref)
        if not bounds[0] <= cell.column <= bounds[2]:
            continue
        column = table.tableColumns[cell.column - bounds[0]] \
            if cell.column - bounds[0] < len(table.tableColumns) else None
        if column is None or column.dataDxfId is None:
            continue
        with contextlib.suppress(IndexError, AttributeError, TypeError):
            number_format = ws.parent._differential_styles[column.dataDxfId].numFmt
            if number_format is not None and number_format.formatCode:
                return number_format.formatCode
    return None


def _bounds(ref: str) -> tuple[int, int, int, int]:
    from openpyxl.utils.cell import range_boundaries

    return range_boundaries(ref)


def _grow_ranges(ws, row: int) -> None:
    """Stretch what ended on the row above down over `row`: openpyxl does neither."""
    from openpyxl.formatting.formatting import ConditionalFormatting, ConditionalFormattingList
    from openpyxl.utils.cell import get_column_letter
    from openpyxl.worksheet.cell_range import CellRange, MultiCellRange

    previous = row - 1
    for table in ws.tables.values():
        min_col, min_row, max_col, max_row = _bounds(table.ref)
        if max_row == previous and min_row < row and not table.totalsRowCount:
            table.ref = f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col)}{row}"
            if table.autoFilter is not None:
                table.autoFilter.ref = table.ref

    def grown(ranges: MultiCellRange) -> MultiCellRange:
        result = []
        for cell_range in ranges.ranges:
            cell_range = CellRange(cell_range.coord)
            if cell_range.max_row == previous and cell_range.min_row <= previous:
                cell_range.expand(down=1)
            result.append(cell_range)
        return MultiCellRange(result)

    for validation in ws.data_validations.dataValidation:
        validation.sqref = grown(validation.sqref)

    if ws.conditional_formatting:
        rebuilt = ConditionalFormattingList()
        for formatting in ws.conditional_formatting:
            sqref = grown(formatting.sqref)
            for rule in formatting.rules:
                rebuilt.add(ConditionalFormatting(sqref=sqref, pivot=formatting.pivot), rule)
        rebuilt.max_priority = max(rebuilt.max_priority, ws.conditional_formatting.max_priority)
        ws.conditional_formatting = rebuilt


# --------------------------------------------------------------------------- tool sheets

def find_sheet(wb, name: str):
    """The worksheet titled `name`, matched case/space-insensitively, or None."""
    wanted = spec.normalise_header(name)
    return next((ws for ws in wb.worksheets if spec.normalise_header(ws.title) == wanted), None)


def ensure_sheet(wb, name: str, headers: list[str], *, widths: list[int] | None = None,
                 number_formats: dict[str, str] | None = None):
    """The sheet `name` (matched case/space-insensitively), made on first use with a bold,
    frozen header row and column widths. On an existing sheet, headers it lacks are added
    after its last header; a person's columns are never moved or renamed. `number_formats`
    (header -> format) become the columns' formats, which `append_row` gives new cells."""
    from openpyxl.styles import Font
    from openpyxl.utils.cell import get_column_letter

    ws = find_sheet(wb, name)
    created = ws is None
    if created:
        ws = wb.create_sheet(name)
        ws.freeze_panes = "A2"
    columns = header_columns(ws)
    next_column = max(columns.values(), default=0) + 1
    bold = Font(bold=True)
    for position, header in enumerate(headers):
        index = columns.get(spec.normalise_header(header))
        if index is None:
            index = next_column
            next_column += 1
            cell = ws.cell(row=1, column=index)
            _write(cell, header)
            cell.font = bold
            columns[spec.normalise_header(header)] = index
            if widths and position < len(widths) and widths[position]:
                ws.column_dimensions[get_column_letter(index)].width = widths[position]
        number_format = (number_formats or {}).get(header)
        if number_format:
            ws.column_dimensions[get_column_letter(index)].number_format = number_format
    return ws
