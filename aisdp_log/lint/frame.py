"""The Experiments sheet as a typed pandas DataFrame, checked by a pandera schema built from
`spec.py`: for notebooks and the quarterly model-selection review.

pandas and pandera are imported here only, inside the functions, so `import aisdp_log` and
`aisdp-log validate --offline` never pay for them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aisdp_log import spec
from aisdp_log.domain.values import as_text
from aisdp_log.errors import WorkbookError
from aisdp_log.lint.checks.schema import bad_value_code
from aisdp_log.repo.roots import config_for, resolve_repo
from aisdp_log.workbook.reader import load_log
from aisdp_log.workbook.table import cell_ref

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd
    import pandera.pandas as pa

    from aisdp_log.workbook.log import Log
    from aisdp_log.workbook.table import Column

#: The DataFrame's index name: the values are the sheet's row numbers (Excel's, 1-based).
INDEX_NAME = "row"
#: Columns of the failure table, in order.
FAILURE_COLUMNS = ("code", "cell", "row", "column", "check", "value")
#: Failures named in the exception's one-line message; the rest are in `.failures`.
MESSAGE_CELLS = 8

# pandas dtypes by spec kind; params and metrics are typed by their declaration.
_TEXT_KINDS = ("id", "text", "other_params", "data_version", "commit", "artefact_hash",
               "choice")
_DTYPES = {"date": "datetime64[ns]", "seed": "Int64", "duration": "float64",
           "metric": "float64", "rerun": "boolean"}
_PARAM_DTYPES = {"int": "Int64", "float": "float64", "bool": "boolean", "str": "string",
                 "choice": "string"}
#: Patterns the parsed values follow (the parsers normalise case and prefixes).
_PATTERNS = {"commit": r"^[0-9a-f]{7,40}$", "artefact_hash": r"^sha256:[0-9a-f]{64}$"}


class LogSchemaError(WorkbookError):
    """Cells of the Experiments sheet fail the schema.

    `failures` is a DataFrame with columns code, cell, row, column, check, value (one row per
    failing cell, codes as `aisdp-log validate` gives them); `frame` is the typed log with the
    failing cells empty, for when you want to look anyway."""

    def __init__(self, message: str, failures: pd.DataFrame, frame: pd.DataFrame):
        super().__init__(message)
        self.failures = failures
        self.frame = frame


def read_log(path: Path | str, config=None, *, errors: str = "raise") -> pd.DataFrame:
    """Read the `Experiments` sheet of a log into a typed DataFrame.

    - Index: the sheet's row number (named ``row``), so ``frame.loc[7]`` is Excel's row 7;
      fully empty rows are skipped, as `validate` skips them.
    - Columns: named by header, standard ones as spelled in the template (``'Experiment ID'``,
      ``'Random seed'``), params and metrics as ``'params.<name>'`` / ``'metrics.<name>'``;
      columns the tool does not know are kept as read.
    - Types: the same parsers `validate` uses. ``Date`` is datetime64, ``Random seed`` Int64,
      ``Training duration`` minutes (float), metrics float, ``Outcome`` lower case,
      ``Rerun`` boolean; params as declared in ``aisdp.toml`` (int, float, bool, text),
      undeclared ones as read.
    - Checks: a pandera schema built from `spec.py` and the log's columns (`log_schema`),
      run lazily, so every failing cell is found in one pass.

    `config` is a `Config`, a path to ``aisdp.toml``, or None to use the nearest one: beside
    the log, in a folder between it and the root of the git repository holding it, or at
    that root (defaults where there is none).

    `errors`: ``"raise"`` (default) raises `LogSchemaError` (an `AisdpLogError`: one line
    naming the failing cells, with ``.failures`` and ``.frame`` attached) when any cell fails;
    ``"attach"`` returns the frame anyway, failing cells empty (NA). Either way the returned
    frame carries ``frame.attrs["failures"]``: a list of dicts (code, cell, row, column, check,
    value), empty when the log is clean; ``pandas.DataFrame(frame.attrs["failures"])`` makes
    it a table. Raises `WorkbookError` (one line) when the workbook cannot be read at all.
    """
    import pandas as pd

    if errors not in ("raise", "attach"):
        raise ValueError("errors must be 'raise' or 'attach'")
    log = load_log(Path(path), _resolve_config(Path(path), config))
    try:
        frame, parse_failures = _typed_frame(log)
        failures = _merge(parse_failures, _schema_failures(log, frame))
    finally:
        log.workbook.close()
    table = pd.DataFrame(failures, columns=list(FAILURE_COLUMNS))
    frame.attrs["failures"] = failures
    if failures and errors == "raise":
        shown = "; ".join(f"{f['cell']} {f['code']} ({f['column']}: {f['check']})"
                          for f in failures[:MESSAGE_CELLS])
        more = f" and {len(failures) - MESSAGE_CELLS} more" if len(failures) > MESSAGE_CELLS \
            else ""
        raise LogSchemaError(
            f"{log.name}: {len(failures)} cell(s) fail the Experiments schema: {shown}{more} "
            "(see .failures; read_log(..., errors='attach') returns the frame anyway)",
            table, frame)
    return frame


def _resolve_config(path: Path, config):

    return config_for(path, resolve_repo(path, None, offline=True), config)


# --------------------------------------------------------------------------- typing

def frame_name(column: Column) -> str:
    """The DataFrame column name of a sheet column: the template's spelling of a standard
    header, else the header as written (white space normalised)."""
    return column.display


def _kind_dtype(log: Log, column: Column) -> str | None:
    kind = column.spec.kind if column.spec else None
    if kind in _TEXT_KINDS:
        return "string"
    if kind == "param":
        declared = log.config.param(column.name or "")
        return _PARAM_DTYPES.get(declared.kind) if declared else None
    return _DTYPES.get(kind) if kind is not None else None


def _typed_frame(log: Log) -> tuple[pd.DataFrame, list[dict]]:
    import pandas as pd

    index = pd.Index([row.number for row in log.rows], name=INDEX_NAME, dtype="int64")
    data: dict[str, pd.Series] = {}
    failures: list[dict] = []
    # by index: `column in log.duplicates` compares dataclasses, quadratic over a header row
    # of 16,384 repeated names
    duplicates = {column.index for column in log.duplicates}
    for column in log.table.columns:
        if column.index in duplicates:
            continue  # S011: the tool reads only the first of two same-named columns
        name = frame_name(column)
        if column.spec is None:
            data[name] = pd.Series([row.get(column) for row in log.rows], index=index,
                                   dtype=object)
            continue
        dtype = _kind_dtype(log, column)
        parsed = log.parse_column(column)  # the parses `validate` makes, in one loop
        values = []
        bad_code = bad_value_code(log, column)
        for row in log.rows:
            value, error = parsed[row.number]
            code = bad_code
            if error is None and row.get(column) is None:
                # As checks/schema.py, and with its code (S003 in every column): an
                # empty-looking cell may hide an Excel error or a formula whose result was
                # never saved.
                excel_error = log.table.error_at(row.number, column)
                if excel_error is not None:
                    error, code = f"shows the Excel error {excel_error}", "S003"
                elif log.table.is_unsaved_formula(row.number, column):
                    error, code = "a formula with no saved value", "S003"
            if error is not None:
                failures.append(_failure(code, cell_ref(row.number,
                                         column.index), row.number, name, error,
                                         row.get(column)))
                value = None
            values.append(value)
        data[name] = _series(values, dtype, index, as_text)
    frame = pd.DataFrame(data, index=index)
    return frame, failures


def _series(values: list, dtype: str | type | None, index, as_text) -> pd.Series:
    import pandas as pd

    if dtype == "datetime64[ns]":
        values = [pd.Timestamp(v) if isinstance(v, dt.date) else None for v in values]
        return pd.Series(values, index=index, dtype=dtype)
    if dtype == "string":
        values = [None if v is None else as_text(v) for v in values]
    elif dtype is None:  # an undeclared param: numbers where all are numbers
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            dtype = "Int64"
        elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                             for v in present):
            dtype = "float64"
        elif all(isinstance(v, str) for v in present):
            dtype = "string"
        else:
            dtype = object  # the type: hence `type` in the signature
    if dtype == "float64":
        values = [float("nan") if v is None else float(v) for v in values]
    return pd.Series(values, index=index, dtype=dtype)


# --------------------------------------------------------------------------- the schema

def log_schema(log: Log) -> pa.DataFrameSchema:
    """The pandera schema of a log's typed frame, built from `spec.py` and the log's columns:
    types, required values, the id pattern and uniqueness, the seed range, allowed values,
    and metrics required unless the outcome is rejected. Use it to re-check a frame you
    changed in a notebook: ``log_schema(log).validate(frame, lazy=True)``."""
    import pandera.pandas as pa

    columns: dict[str, pa.Column] = {}
    frame_checks = []
    outcome = log.columns.get("outcome")
    outcome_name = frame_name(outcome) if outcome is not None else None
    # A row whose outcome is not a valid one is already an S006; as the validator does, its
    # metrics are then not required (the frame holds NA there, like an undecided outcome).
    bad_outcome_rows = frozenset(row.number for row in log.rows
                                 if log.parse(row, outcome)[1] is not None)
    duplicates = {column.index for column in log.duplicates}
    for column in log.table.columns:
        if column.spec is None or column.index in duplicates:
            continue
        name = frame_name(column)
        kind = column.spec.kind
        checks = []
        nullable = not (column.spec.required and kind not in ("param", "metric"))
        options: dict[str, Any] = {}  # keyword arguments of pa.Column
        if kind == "id":
            pattern = log.config.id_pattern
            # search, not match: the validator applies the pattern with re.search too.
            checks.append(pa.Check(lambda s, p=pattern: s.str.contains(p, regex=True),
                                   name="id_pattern"))
            options = {"unique": True, "report_duplicates": "exclude_first"}
        elif kind == "seed":
            checks.append(pa.Check.in_range(0, spec.SEED_MAX))
        elif kind == "duration":
            checks.append(pa.Check.ge(0))
        elif kind in _PATTERNS:
            checks.append(pa.Check.str_matches(_PATTERNS[kind]))
        elif kind == "choice":
            checks.append(pa.Check.isin(list(column.spec.allowed)))
        elif kind == "param":
            declared = log.config.param(column.name or "")
            if declared is not None and declared.kind == "choice":
                checks.append(pa.Check.isin(list(declared.choices)))
        elif kind == "metric":
            frame_checks.append(_metric_required(name, outcome_name, bad_outcome_rows))
        columns[name] = pa.Column(_kind_dtype(log, column), checks=checks, nullable=nullable,
                                  **options)
    return pa.DataFrameSchema(columns, checks=frame_checks, index=pa.Index(int, name=INDEX_NAME),
                              strict=False, name=spec.SHEET_EXPERIMENTS)


def _metric_required(name: str, outcome_name: str | None, excused_rows=frozenset()):
    import pandera.pandas as pa

    def check(frame):
        ok = frame[name].notna() | frame.index.isin(list(excused_rows))
        if outcome_name is None:
            return ok
        return ok | (frame[outcome_name] == "rejected").fillna(False).astype(bool)

    # ignore_na=False: the empty cell is exactly what this check is about. No `error=`: pandera
    # would report it in place of the name, and the name is what maps the failure to S002.
    return pa.Check(check, name=f"required:{name}", ignore_na=False)


_CHECK_CODES = {"not_nullable": "S002", "field_uniqueness": "S004", "id_pattern": "S005",
                "isin": "S006", "in_range": "S007"}


def _schema_failures(log: Log, frame: pd.DataFrame) -> list[dict]:
    import pandera.pandas as pa

    try:
        log_schema(log).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    letters = {frame_name(c): c.index for c in log.table.columns}
    failures = []
    for case in cases.itertuples(index=False):
        check = str(case.check)
        column = case.column
        if check.startswith("required:"):
            # A frame-wide check reports every column of a failing row; keep the metric's.
            column = check[len("required:"):]
            if case.column != column:
                continue
            code = "S002"
        else:
            code = _CHECK_CODES.get(check.split("(")[0], "S003")
        row = case.index
        if row is None or column not in letters:
            cell, row = cell_ref(1, letters.get(column, 0)), 1  # a whole-column failure
        else:
            row = int(row)
            cell = cell_ref(row, letters[column])
        failures.append(_failure(code, cell, row, column, check, case.failure_case))
    return failures


def _failure(code: str, cell: str, row: int, column: str | None, check: str,
             value: object) -> dict:
    import pandas as pd

    if value is not None and not isinstance(value, (list, dict)) and pd.isna(value):
        value = None
    return {"code": code, "cell": cell, "row": row, "column": column, "check": check,
            "value": value}


def _merge(parse_failures: list[dict], schema_failures: list[dict]) -> list[dict]:
    """Parse failures first; a schema failure at a cell that failed to parse is its echo (the
    cell was emptied) and is dropped; one entry per (code, cell)."""
    unparsed = {f["cell"] for f in parse_failures}
    seen = set()
    merged = []
    for failure in parse_failures + [f for f in schema_failures if f["cell"] not in unparsed]:
        key = (failure["code"], failure["cell"])
        if key not in seen:
            seen.add(key)
            merged.append(failure)
    # Within a row, a shorter cell reference is a column further left (B7 before AA7).
    merged.sort(key=lambda f: (f["row"], len(f["cell"]), f["cell"], f["code"]))
    return merged
