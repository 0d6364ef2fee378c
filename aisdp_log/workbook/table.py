"""A sheet as read: cell addresses (`H7`), the header's columns and the non-empty rows, each
with its sheet row number, so every finding can point at its cell."""

from __future__ import annotations

from dataclasses import dataclass, field

from aisdp_log import spec
from aisdp_log.spec import column_letters

#: Excel's last column is XFD, the 16,384th.
MAX_COLUMNS = 16_384


def column_letter(index: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 26 -> AA)."""
    return column_letters(index + 1)


def cell_ref(row: int, column_index: int) -> str:
    """Sheet row number (1-based) and 0-based column -> `H7`."""
    return f"{column_letter(column_index)}{row}"


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
        """The header row's first empty cell (where a missing column's finding points,
        docs/workbook-format.md), a gap between headers included. In a header row full to XFD,
        the first header that repeats an earlier one (a cell free to take the column), else
        XFD1."""
        used = {c.index for c in self.columns}
        index = 0
        while index in used:
            index += 1
        if index < MAX_COLUMNS:
            return cell_ref(1, index)
        first: dict[str, Column] = {}
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
