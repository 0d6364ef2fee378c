"""S001-S011: the workbook alone: columns, required values, types, IDs, the Metrics sheet."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from aisdp_log import spec
from aisdp_log.domain.metrics import parse_tolerance
from aisdp_log.domain.values import parse_choice, parse_number, shown
from aisdp_log.findings import Finding
from aisdp_log.workbook.log import Log
from aisdp_log.workbook.table import cell_ref

#: The finding codes this family may emit (see `aisdp_log.lint.registry`).
CODES = ("S001", "S002", "S003", "S004", "S005", "S006", "S007", "S008", "S009", "S010",
         "S011")

#: Standard columns that every log must have (S001), and whose values every row must fill
#: (S002); metrics are handled per outcome.
REQUIRED_KEYS = tuple(c.key for c in spec.STANDARD_COLUMNS if c.required)


def run(log: Log, ctx) -> Iterator[Finding]:
    yield from _columns(log)
    yield from _merged(log)
    yield from _values(log, ctx)
    yield from _metrics_sheet(log)


# --------------------------------------------------------------------------- columns

def known_headers(log: Log) -> list[str]:
    names = [c.header for c in spec.STANDARD_COLUMNS]
    names += [spec.METRICS_PREFIX + m.name for m in log.metric_rows() if m.name]
    names += [spec.PARAMS_PREFIX + p.name for p in log.config.params]
    return names


def suggest(header: str, candidates: list[str]) -> str | None:
    """The known header a typo most likely meant, or None."""
    by_norm = {spec.normalise_header(c): c for c in candidates}
    norm = spec.normalise_header(header)
    squashed = {k.replace(" ", "").replace("_", ""): v for k, v in by_norm.items()}
    key = norm.replace(" ", "").replace("_", "")
    if key in squashed:
        return squashed[key]
    match = difflib.get_close_matches(norm, list(by_norm), n=1, cutoff=0.8)
    return by_norm[match[0]] if match else None


def _columns(log: Log) -> Iterator[Finding]:
    table = log.table
    first_empty = table.first_empty_header
    known = known_headers(log)
    typos: dict[str, str] = {}  # suggested header -> where the typo is
    for column in log.unknown:
        suggestion = suggest(column.header, known)
        if suggestion:
            typos[spec.normalise_header(suggestion)] = cell_ref(1, column.index)
            yield log.finding_at(
                "S009", log.sheet, cell_ref(1, column.index), 1, column.header,
                f"unknown column {shown(column.header)}: did you mean {suggestion!r}?")
    repeats: dict[str, list] = {}  # one finding per repeated name, at its first repeat
    for column in log.duplicates:
        repeats.setdefault(spec.normalise_header(column.header), []).append(column)
    for columns in repeats.values():
        column = columns[0]
        times = "twice" if len(columns) == 1 else f"{len(columns) + 1:,} times"
        also = "" if len(columns) == 1 else \
            f" (repeated from column {column.letter} to {columns[-1].letter})"
        first = log.table.column(column.header)
        assert first is not None  # a repeated header always has its first occurrence
        yield log.finding_at(
            "S011", log.sheet, cell_ref(1, column.index), 1, column.header,
            f"column {shown(column.header)} appears {times}{also}; the tool reads only the "
            f"first, in column {first.letter}")
    for key in REQUIRED_KEYS:
        if key in log.columns:
            continue
        header = spec.BY_KEY[key].header
        hint = typos.get(spec.normalise_header(header))
        message = f"required column {header!r} is missing"
        message += f" (is {hint} a misspelling of it?)" if hint else \
            f"; add it as a header in row 1 (for example at {first_empty})"
        yield log.finding_at("S001", log.sheet, first_empty, 1, header, message)
    if not log.params:
        yield log.finding_at(
            "S001", log.sheet, first_empty, 1, "params.<name>",
            "no hyperparameter column: add at least one params.<name> column, "
            "e.g. params.learning_rate")
    if not log.metrics:
        yield log.finding_at(
            "S001", log.sheet, first_empty, 1, "metrics.<name>",
            "no metric column: add at least one metrics.<name> column, e.g. metrics.accuracy, "
            "and declare it in the Metrics sheet")


def _merged(log: Log) -> Iterator[Finding]:
    for (r0, c0), (r1, c1) in log.table.merged:
        if r1 < 1:  # merges inside the header row only do not hide values
            continue
        top = max(r0, 1)
        yield log.finding_at(
            "S010", log.sheet, cell_ref(top + 1, c0), top + 1, None,
            f"cells {cell_ref(r0 + 1, c0)}:{cell_ref(r1 + 1, c1)} are merged; unmerge them so "
            "every row has its own values")


# --------------------------------------------------------------------------- values

def _values(log: Log, ctx) -> Iterator[Finding]:
    # Column by column: one parser and one tight loop per column (see Log.parse_column).
    rows = log.rows
    table = log.table
    outcomes: dict[int, object] = {}
    outcome_column = log.columns.get("outcome")
    if outcome_column is not None:
        for number, (outcome, error) in log.parse_column(outcome_column).items():
            # Whether metrics are required depends on the outcome; a bad one is S006 already,
            # so do not pile S002s on its row.
            outcomes[number] = "rejected" if error is not None else outcome
    duplicates = {c.index for c in log.duplicates}
    checked_columns = [c for c in table.columns if c.spec is not None
                       and c.index not in duplicates]
    for column in checked_columns:
        index = column.index
        assert column.spec is not None  # checked_columns holds only columns with a spec
        kind = column.spec.kind
        # Free text cannot be malformed: only its emptiness is checked.
        parsed = log.parse_column(column) if kind != "text" else None
        bad_code = bad_value_code(log, column)
        for row in rows:
            values = row.values
            raw = values[index] if index < len(values) else None
            if raw is None:
                yield from _empty_cell(log, row, column, outcomes.get(row.number))
                continue
            if parsed is None:
                continue
            value, error = parsed[row.number]
            if error is not None:
                yield log.finding(bad_code, row, column, f"{column.display}: {error}")
            elif kind == "seed" and isinstance(value, int) and not 0 <= value <= spec.SEED_MAX:
                yield log.finding("S007", row, column,
                                  f"seed {value} is outside 0..{spec.SEED_MAX}")
    yield from _ids(log)


def _empty_cell(log: Log, row, column, outcome) -> Iterator[Finding]:
    """An empty cell: an Excel error or a never-calculated formula that calamine reads as
    empty (S003), or a required value missing (S002)."""
    excel_error = log.table.error_at(row.number, column)
    if excel_error is not None:
        yield log.finding(
            "S003", row, column,
            f"{column.display} shows the Excel error {excel_error}: fix the formula or type "
            "the value")
    elif log.table.is_unsaved_formula(row.number, column):
        yield log.finding(
            "S003", row, column,
            "a formula with no saved value: open and save the file in Excel or LibreOffice "
            "so its result is stored")
    elif _required(column, outcome):
        yield log.finding("S002", row, column, f"{column.display} is empty" + (
            " (a metric may stay empty only on a rejected row)"
            if column.spec.kind == "metric" else ""))


def _ids(log: Log) -> Iterator[Finding]:
    """S004 and S005: unique IDs that match the id pattern (the ID cell)."""
    id_column = log.columns.get("experiment_id")
    if id_column is None:
        return
    id_regex = log.config.id_regex
    first_seen: dict[str, int] = {}
    parsed = log.parse_column(id_column)
    for row in log.rows:
        experiment_id = parsed[row.number][0]
        if not isinstance(experiment_id, str):  # empty or bad (parse_id gives str or nothing)
            continue
        if experiment_id in first_seen:
            yield log.finding(
                "S004", row, id_column,
                f"experiment ID {shown(experiment_id)} is already used in row "
                f"{first_seen[experiment_id]}")
        else:
            first_seen[experiment_id] = row.number
        if not id_regex.search(experiment_id):
            yield log.finding(
                "S005", row, id_column,
                f"experiment ID {shown(experiment_id)} does not match the id pattern "
                f"{log.config.id_pattern}")


def bad_value_code(log: Log, column) -> str:
    """The code of a value that fails its column's parser: S006 outside an allowed set
    (outcome, rerun mark, a declared choice param), else S003. `frame.read_log` uses it too."""
    kind = column.spec.kind
    if kind in ("choice", "rerun"):
        return "S006"
    if kind == "param":
        declared = log.config.param(column.name or "")
        if declared is not None and declared.kind == "choice":
            return "S006"
    return "S003"


def _required(column, outcome) -> bool:
    kind = column.spec.kind
    if kind == "metric":
        return outcome != "rejected"
    if kind == "param":
        return False  # a param may not apply to every run; an empty cell is "not set"
    return column.key in REQUIRED_KEYS


# --------------------------------------------------------------------------- Metrics sheet

def _metrics_sheet(log: Log) -> Iterator[Finding]:
    table = log.metrics_table
    if table is None:
        for name, column in log.metrics.items():
            yield log.finding_at(
                "S008", log.sheet, cell_ref(1, column.index), 1, column.header,
                f"metric {shown(name)} has no row in a 'Metrics' sheet: add the sheet with columns "
                "Metric, Goal, Threshold, Tolerance, Description")
        return
    sheet = table.sheet
    for header in spec.METRICS_COLUMNS[:2]:
        if table.column(header) is None:
            yield log.finding_at("S001", sheet, table.first_empty_header, 1, header,
                                 f"the Metrics sheet has no {header!r} column")
    declared = {}
    for metric in log.metric_rows():
        if metric.name is None:
            yield log.finding_at("S002", sheet, metric.cells["Metric"], metric.row, "Metric",
                                 "the metric's name is empty")
            continue
        key = metric.name.casefold()
        declared[key] = metric
        if metric.goal is None:
            if "Goal" in metric.cells:
                yield log.finding_at("S002", sheet, metric.cells["Goal"], metric.row, "Goal",
                                     f"metric {shown(metric.name)} has no goal: write max or min")
        else:
            try:
                parse_choice(metric.goal, spec.GOALS)
            except ValueError:
                yield log.finding_at("S006", sheet, metric.cells["Goal"], metric.row, "Goal",
                                     f"goal {shown(metric.goal)} is not max or min")
        for header, parse, wanted in (
                ("Threshold", parse_number, "a finite number"),
                ("Tolerance", parse_tolerance, "a number of 0 or more (how far a recorded value "
                                               "may lie from the reruns' mean)")):
            value = getattr(metric, header.casefold())
            if value is None or header not in metric.cells:
                continue
            try:
                parse(value)  # the parser declared_metrics uses too
            except ValueError:
                yield log.finding_at("S003", sheet, metric.cells[header], metric.row, header,
                                     f"{header.casefold()} {shown(value)} is not {wanted}")
    columns = {name.casefold(): column for name, column in log.metrics.items()}
    for key, column in columns.items():
        if key not in declared:
            yield log.finding_at(
                "S008", log.sheet, cell_ref(1, column.index), 1, column.header,
                f"metric {shown(column.name)} has no row in the Metrics sheet: declare its goal "
                "and threshold there")
    for key, metric in declared.items():
        if key not in columns:
            yield log.finding_at(
                "S008", sheet, metric.cells["Metric"], metric.row, "Metric",
                f"the Metrics sheet declares {shown(metric.name)} but the Experiments sheet has no "
                f"{shown(f'metrics.{metric.name}')} column")
