"""The typed log: the `Experiments` sheet with its columns resolved against the spec, each
cell parsed once, and the `Metrics` sheet; `Log.finding()` builds a Finding at the right cell."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aisdp_log import spec
from aisdp_log.config import Config
from aisdp_log.domain import values
from aisdp_log.domain.values import as_text
from aisdp_log.findings import CATALOGUE, Finding
from aisdp_log.workbook.table import Column, Row, Table, cell_ref


class Workbook(Protocol):
    """The open workbook a log was read from (`workbook.reader`'s), as the log keeps it."""
    path: Path
    name: str
    def find_sheet(self, wanted: str) -> str | None: ...
    def table(self, sheet_name: str) -> Table: ...
    def close(self) -> None: ...


@dataclass
class MetricRow:
    name: str | None  # None: the Metric cell is empty (S002)
    goal: object
    threshold: object
    description: object
    row: int
    cells: dict[str, str]
    tolerance: object = None  # the Tolerance cell (issue 27); None where the log lacks it


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
        if kind == "choice" and column.spec is not None:  # "choice" comes from the spec
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
        goal_col, threshold_col, desc_col, tolerance_col = (
            table.column(h) for h in ("Goal", "Threshold", "Description", "Tolerance"))
        result = []
        for row in table.rows:
            name = row.get(metric_col)
            cells = {h: cell_ref(row.number, c.index) for h, c in
                     (("Metric", metric_col), ("Goal", goal_col), ("Threshold", threshold_col),
                      ("Description", desc_col), ("Tolerance", tolerance_col))
                     if c is not None}
            result.append(MetricRow(None if name is None else " ".join(str(name).split()),
                                    row.get(goal_col), row.get(threshold_col),
                                    row.get(desc_col), row.number, cells,
                                    row.get(tolerance_col)))
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
