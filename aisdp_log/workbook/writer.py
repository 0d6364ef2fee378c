"""The safe writer: how aisdp-log changes a user's workbook (`add`, `rerun`, `review --sign`).

Contract for callers::

    from aisdp_log.workbook.writer import open_workbook_for_update, append_row, ensure_sheet, \\
        find_rows, set_cell

    values = compute_everything_first()              # hashing, reading run.json, training ...
    with open_workbook_for_update(log_path, force=False) as wb:
        ws = wb["Experiments"]
        if find_rows(ws, "Experiment ID", "EXP-007"):
            raise WriteRefused("...")                # nothing is written
        row = append_row(ws, {"Experiment ID": "EXP-007", "Random seed": 7})
        set_cell(ws, row, "Reproducibility", "bitwise")
    # here the file has been replaced atomically, or left byte-identical if anything failed

- `open_workbook_for_update(path, *, force=False)`: a context manager yielding the writer's
  `Workbook` (aisdp_log.workbook.xlsx_workbook), not openpyxl's: `wb["Experiments"]`,
  `wb.worksheets`, `ws.title`, `ws[1]`, `ws.cell(row, column).value`,
  `ws.iter_rows(min_row=2, values_only=True)` read as with openpyxl. First guard.py's checks
  (Office lock files, permissions, owner, hard links; the writer lock, waiting up to 60 s for
  another aisdp-log) and the zip-safety check; then it reads the package *at entry*: do slow
  work before entering. On a clean exit, if anything changed, the new package goes to a temp
  file in `.aisdp-log/` beside the log, is fsynced, given the original's owner and mode, and
  `os.replace`s the original (refused if the file changed on disk meanwhile). On an exception
  nothing is written; a writer killed mid-save leaves the original intact, and the next
  writer removes its temp and lock files.
- What a write changes: only what it adds. Each part it edits is parsed by lxml and
  serialised back only if it changed; every other member is copied raw. In a sheet only the
  rows it reads are parsed and changed rows re-serialised: other rows keep their bytes.
  New rows hold text as inline strings, numbers, booleans, dates as serial numbers with a
  date style; tables, autofilters, validations, conditional formats (also x14 ones), the
  defined names over a grown table or autofilter (`_FilterDatabase`) and `<dimension>`
  that ended on the row above grow over them. New cell styles are appended, so existing
  indices keep their meaning. A workbook the writer cannot edit (Strict Open XML, a
  chartsheet named Experiments, encrypted) is refused in one line, untouched.
- `append_row(ws, values, *, number_formats=None) -> int`: writes a row by header
  (case/space-insensitive; an unknown header raises KeyError) at the first empty row below
  the last filled key cell (`Experiment ID` on Experiments, else the first column; never
  the last row element, which LibreOffice pads), grows the ranges above, copies the row
  above's style (on a first row the padded cell's, the table column's number format, the
  column's style or `number_formats`) and writes text as text (inline strings are never
  formulas; text starting with = + - @ gets `quotePrefix` so Excel keeps it text when
  edited). Text XML cannot hold is stored with OOXML's `_xHHHH_` escape (`escape_ooxml`).
- `set_cell(ws, row, header, value)`: replaces just that cell's `<c>` element (its style
  kept).
- `ensure_sheet(wb, name, headers, *, widths=None, number_formats=None)`: a tool sheet, made
  on first use; missing headers are added at the end, never reordering a person's columns.
- `find_rows(ws, header, value) -> list[int]`, `find_sheet(wb, name)` (case/space-
  insensitive, None when absent), `header_columns(ws)`, `next_row(ws)`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path

from aisdp_log import spec
from aisdp_log.domain.values import as_text
from aisdp_log.errors import WorkbookError, WriteRefused
from aisdp_log.spec import column_letters
from aisdp_log.system.atomic import atomic_replace
from aisdp_log.workbook import guard
from aisdp_log.workbook.container import check_container
from aisdp_log.workbook.xlsx_package import Package
from aisdp_log.workbook.xlsx_sheet import Sheet
from aisdp_log.workbook.xlsx_workbook import Workbook
from aisdp_log.workbook.xmlpart import escape_ooxml, set_inline_string, sub

#: Text starting with these would be read by Excel as a formula; stored with a quote prefix.
FORMULA_STARTS = ("=", "+", "-", "@")
MAX_CELL_TEXT = 32767  # Excel's limit per cell
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


# The checks before a write and the writer lock live in guard.py; kept for callers of 0.1:
stale_temp_files = guard.stale_temp_files


# --------------------------------------------------------------------------- atomic update

@contextlib.contextmanager
def open_workbook_for_update(path: Path | str, *, force: bool = False):
    """Yield the workbook at `path` as the surgical writer's `Workbook`; on a clean exit
    replace the file atomically with the changed package. See the module docstring for the
    guarantees.

    Raises WorkbookError for a file that is missing or unsafe to open, WriteRefused while the
    file is open in Excel/LibreOffice (unless `force`) or another aisdp-log writes it.
    """

    given = Path(path)
    # Write beside the real file: replacing a symlink would cut it off from its target.
    target = given.resolve() if given.is_symlink() else given
    if target.suffix.lower() in (".xlsm", ".xltm"):
        raise WriteRefused(f"{given}: a macro-enabled workbook; aisdp-log only writes .xlsx "
                           "files")
    if not target.is_file():
        check_container(target).close()  # the reader's one-line reason for a missing file
    # Office locks (beside the link and its target), permissions, owner, hard links, then
    # the writer lock (waiting for another aisdp-log; re-entrant for a caller holding it).
    with guard.writer_lock(given, force=force):
        check_container(target).close()  # zip bombs, encrypted files, CSV named .xlsx
        loaded = _identity(os.stat(target))
        workbook = _load(target, given)
        yield workbook
        # Reached only on a clean exit: an exception in the caller skips the save.
        workbook.finish()
        if workbook.package.changed():
            _save_atomically(workbook.package, target, loaded)


def _identity(status: os.stat_result) -> tuple[int, int, int, int]:
    return status.st_ino, status.st_dev, status.st_size, status.st_mtime_ns


def _load(path: Path, given: Path) -> Workbook:
    try:
        return Workbook(Package(path.read_bytes(), str(given)))
    except OSError as exc:
        raise WorkbookError(f"{given}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, KeyError, IndexError, AttributeError, UnicodeError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise WorkbookError(f"{given}: not a workbook aisdp-log can write to "
                            f"({type(exc).__name__}: {reason})") from None


def _save_atomically(package: Package, path: Path, loaded: tuple[int, int, int, int]) -> None:
    # atomic_replace keeps the log's own permission bits (mkstemp would make it 0600).
    temp_dir = guard.tool_dir(path.parent)
    with atomic_replace(path, suffix=guard.TEMP_SUFFIX, temp_dir=temp_dir) as temp:
        with open(temp, "wb") as out:
            package.save(out)
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

def header_columns(ws: Sheet) -> dict[str, int]:
    """Normalised header text -> 1-based column index, from row 1 (first occurrence wins)."""
    columns: dict[str, int] = {}
    for column, value in sorted(ws.row_values(1).items()):
        if value is not None and str(value).strip():
            columns.setdefault(spec.normalise_header(value), column)
    return columns


def _column_index(ws: Sheet, header: str, columns: dict[str, int] | None = None) -> int:
    columns = header_columns(ws) if columns is None else columns
    index = columns.get(spec.normalise_header(header))
    if index is None:
        raise KeyError(f"sheet {ws.title!r} has no column {header!r}")
    return index


def _key_column(ws: Sheet, columns: dict[str, int]) -> int:
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


def next_row(ws: Sheet) -> int:
    """Where `append_row` writes: the first row below the last filled key cell whose cells
    are all empty. Never the last row element: LibreOffice pads a table with empty styled
    rows. A row that has text but no ID (a person's draft) is skipped, never overwritten."""
    key = _key_column(ws, header_columns(ws))
    filled_below: set[int] = set()
    last_key_row = 1
    for number in reversed(ws.row_numbers()):  # from the end: only the padding is read
        if number <= 1:
            break
        values = ws.row_values(number)
        if not _is_empty(values.get(key)):
            last_key_row = number
            break
        if any(not _is_empty(v) for v in values.values()):
            filled_below.add(number)
    row = last_key_row + 1
    while row in filled_below:
        row += 1
    return row


def find_rows(ws: Sheet, header: str, value: object) -> list[int]:
    """Data rows (2..) whose cell under `header` equals `value`: text compared exactly after
    trimming (case-sensitive, as IDs are), numbers as numbers."""
    column = _column_index(ws, header)
    wanted = value.strip() if isinstance(value, str) else value
    rows = []
    for row, have in ws.column_values(column).items():
        if row < 2 or have is None:
            continue
        have = have.strip() if isinstance(have, str) else have
        if have == wanted or (isinstance(wanted, str) and not isinstance(have, str)
                              and as_text(have) == wanted):
            rows.append(row)
    return sorted(rows)


def append_row(ws: Sheet, values: dict[str, object], *,
               number_formats: dict[str, str] | None = None) -> int:
    """Write `values` (header -> value) as a new row and return its row number.

    Unknown headers raise KeyError (nothing written). The table, autofilter, data
    validations and conditional formats that ended on the row above grow over the new row;
    new cells take the style of the cell above (or, on a first data row, the padded cell's,
    the table column's number format, the column's style, or `number_formats[header]`)."""
    columns = header_columns(ws)
    targets = {header: _column_index(ws, header, columns) for header in values}
    cells = {column: _encode(values[header], ws, header) for header, column in targets.items()}
    row = next_row(ws)
    ws.grow_ranges(row)
    fallback = {spec.normalise_header(h): f for h, f in (number_formats or {}).items()}
    for header, column in targets.items():
        if values[header] is None:
            continue
        style = _style_for_new_cell(ws, row, column, fallback.get(spec.normalise_header(header)))
        _put(ws, row, column, cells[column], style)
    return row


def set_cell(ws: Sheet, row: int, header: str, value: object) -> None:
    """Write one cell of an existing row by header, with the same text-as-text rules; only
    that cell's `<c>` element changes (it keeps its style)."""
    if row < 2:
        raise ValueError("row 1 holds the headers; data rows start at 2")
    write_value(ws, row, _column_index(ws, header), value)


def write_value(ws: Sheet, row: int, column: int, value: object) -> None:
    """Replace the cell at (row, column) by `value`, keeping the cell's style."""
    encoded = _encode(value, ws, column_letters(column) + str(row))
    style = ws.style_of(row, column)
    if value is None:
        if style:
            _place(ws, row, column, style, encoded)
        else:
            ws.remove_cell(row, column)
        return
    _put(ws, row, column, encoded, style)


# --------------------------------------------------------------------------- cells

@dataclass
class _Encoded:
    kind: str  # "text", "number", "bool", "date", "none"
    text: str  # the `<v>` or inline `<t>` content
    number_format: str | None = None  # what a date or time needs if its style has none
    formula_like: bool = False


def _encode(value: object, ws: Sheet, where: str) -> _Encoded:
    """`value` as a cell's content and type, before it is placed."""
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)  # Excel has no NaN/inf; the text shows what happened
    if value is None:
        return _Encoded("none", "")
    if isinstance(value, str):
        if len(value) > MAX_CELL_TEXT:
            raise WriteRefused(f"a value for {where} is {len(value)} characters long; "
                               f"a cell holds at most {MAX_CELL_TEXT}")
        return _Encoded("text", escape_ooxml(value), formula_like=value.startswith(FORMULA_STARTS))
    if isinstance(value, bool):
        return _Encoded("bool", "1" if value else "0")
    if isinstance(value, (int, float)):
        return _Encoded("number", repr(value) if isinstance(value, float) else str(int(value)))
    number_format = None
    epoch = ws.book.epoch
    if isinstance(value, dt.datetime):
        moment = value.replace(tzinfo=None)  # Excel has no time zones
        serial = (moment - epoch) / dt.timedelta(days=1)
        number_format = DATETIME_FORMAT if moment.time() != dt.time(0) else DATE_FORMAT
    elif isinstance(value, dt.date):
        serial = (value - epoch.date()).days
        number_format = DATE_FORMAT
    elif isinstance(value, dt.time):
        serial = (value.hour * 3600 + value.minute * 60 + value.second
                  + value.microsecond / 1e6) / 86400
        number_format = "hh:mm:ss"
    elif isinstance(value, dt.timedelta):
        serial = value / dt.timedelta(days=1)
        number_format = "[h]:mm:ss"
    else:
        raise TypeError(f"cannot write a {type(value).__name__} to a cell; pass text or a "
                        "number")
    text = repr(float(serial)) if not float(serial).is_integer() else str(int(serial))
    return _Encoded("date", text, number_format=number_format)


def _place(ws: Sheet, row: int, column: int, style: int | None, encoded: _Encoded) -> None:
    """A new `<c>` at (row, column) holding `encoded` in `style` (text as an inline string,
    never a formula)."""
    cell = ws.new_cell(row, column)
    if style:
        cell.set("s", str(style))
    if encoded.kind == "none":
        return
    if encoded.kind == "text":
        set_inline_string(cell, encoded.text)
        return
    if encoded.kind == "bool":
        cell.set("t", "b")
    sub(cell, "v").text = encoded.text


def _put(ws: Sheet, row: int, column: int, encoded: _Encoded, style: int | None) -> None:
    """Place an encoded value with `style`, adjusted to what the value needs: a date format
    for a date, a quote prefix (Excel keeps it text when edited) for formula-like text."""
    styles = ws.book.styles
    base = style or 0
    if encoded.kind == "date" and not styles.is_date(base):
        style = styles.derive(base, number_format=encoded.number_format)
    elif encoded.kind == "text" and encoded.formula_like != styles.quote_prefix(base):
        style = styles.derive(base, quote_prefix=encoded.formula_like)
    elif encoded.kind in ("number", "bool") and styles.quote_prefix(base):
        style = styles.derive(base, quote_prefix=False)
    _place(ws, row, column, style, encoded)


def _style_for_new_cell(ws: Sheet, row: int, column: int,
                        fallback_format: str | None) -> int | None:
    """The style of the cell above; on a first data row the padded cell's own (when it has
    a number format), else the table column's, the column's, or the given number format."""
    if row > 2:
        above = ws.style_of(row - 1, column)
        if above:
            return above
    styles = ws.book.styles
    own = ws.style_of(row, column)
    if own and styles.number_format(own) != "General":
        return own  # a padded row already carries its table's style
    base = own or ws.column_style(column) or 0
    if styles.number_format(base) != "General":
        return base or None
    number_format = ws.table_number_format(column) or fallback_format
    if number_format:
        return styles.derive(base, number_format=number_format)
    return base or None


# --------------------------------------------------------------------------- tool sheets

def find_sheet(wb: Workbook, name: str) -> Sheet | None:
    """The worksheet titled `name`, matched case/space-insensitively, or None."""
    wanted = spec.normalise_header(name)
    return next((ws for ws in wb.worksheets if spec.normalise_header(ws.title) == wanted), None)


def ensure_sheet(wb: Workbook, name: str, headers: list[str], *,
                 widths: list[int] | None = None,
                 number_formats: dict[str, str] | None = None) -> Sheet:
    """The sheet `name` (matched case/space-insensitively), made on first use as a new part
    with a bold, frozen header row and column widths. On an existing sheet, headers it lacks
    are added after its last header; a person's columns are never moved or renamed.
    `number_formats` (header -> format) become the new columns' styles, which `append_row`
    gives new cells."""
    ws = find_sheet(wb, name)
    if ws is None:
        ws = wb.create_sheet(name)
    columns = header_columns(ws)
    next_column = max(columns.values(), default=0) + 1
    styles = wb.styles
    for position, header in enumerate(headers):
        if spec.normalise_header(header) in columns:
            continue
        index = next_column
        next_column += 1
        left = ws.style_of(1, index - 1) if index > 1 else None
        bold = styles.derive(left or 0, bold=True)
        _place(ws, 1, index, bold, _encode(header, ws, f"{column_letters(index)}1"))
        columns[spec.normalise_header(header)] = index
        width = widths[position] if widths and position < len(widths) and widths[position] \
            else None
        number_format = (number_formats or {}).get(header)
        ws.set_column(index, width=width,
                      style=styles.derive(0, number_format=number_format)
                      if number_format else None)
    return ws
