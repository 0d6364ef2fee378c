"""R001-R005: is the log ready for a model-selection review?"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Literal

from aisdp_log import spec
from aisdp_log.domain.metrics import declared_metrics, meets, not_reproduced, passing_pairs
from aisdp_log.domain.periods import quarter
from aisdp_log.domain.values import is_number
from aisdp_log.findings import Finding
from aisdp_log.workbook.log import Log
from aisdp_log.workbook.table import Table

#: The finding codes this family may emit (see `aisdp_log.lint.registry`).
CODES = ("R001", "R002", "R003", "R004", "R005")


def reproducibility_sheet(log: Log) -> Table | None:
    """The `Reproducibility` sheet, read with calamine (one small sheet), or None when the
    workbook has none."""
    name = log.workbook.find_sheet(spec.SHEET_REPRODUCIBILITY)
    return None if name is None else log.workbook.table(name)


def _cells(table: Table, headers: tuple[str, ...]) -> Iterator[list] | None:
    """Each row's cells under `headers`; None when the sheet lacks the first, second or
    fourth of them."""
    columns = [table.column(h) for h in headers]
    if any(c is None for c in (columns[0], columns[1], columns[3])):
        return None
    return ([row.get(c) for c in columns] for row in table.rows)


def passing_evidence(table: Table | None) -> set[tuple[str, str]] | Literal[False]:
    """(experiment ID, mode) pairs with passing evidence in the `Reproducibility` sheet (see
    `passing_pairs`), or False when the workbook has no such sheet (then the cell alone is the
    evidence, as in logs written before the rerun helper)."""
    if table is None:
        return False
    rows = _cells(table, ("Experiment ID", "Mode", "Date", "Verdict", "Consistency"))
    return set() if rows is None else passing_pairs(rows)


def contradicted(table: Table | None) -> dict[str, list[str]]:
    """Experiment ID -> the metrics whose recorded value its latest statistical rerun did not
    reproduce (`Consistency` says `not reproduced`); empty without such a sheet or column."""
    rows = None if table is None else \
        _cells(table, ("Experiment ID", "Mode", "Date", "Consistency", "Metric"))
    return {} if rows is None else not_reproduced(rows)


def _rerun_command(log: Log, row, *options: str) -> str:
    """The command that reruns `row`, quoted for a shell: the ID is cell text, and a message
    is copied into terminals."""
    import shlex

    # the log's path as the user typed it: the command must work where they typed theirs
    words = (str(log.path), "--id", str(log.experiment_id(row)), *options)
    return "aisdp-log rerun " + " ".join(shlex.quote(word) for word in words)


def run(log: Log, ctx) -> Iterator[Finding]:
    outcome_column = log.columns.get("outcome")
    if outcome_column is None:
        return
    declared = declared_metrics(log)
    selected_by_quarter: dict[str, list] = {}
    baseline_quarters: set[str] = set()
    notes_column = log.columns.get("notes")
    # read on first need: most logs select few rows
    evidence: set[tuple[str, str]] | Literal[False] | None = None
    disputed: dict[str, list[str]] | None = None
    sheet: Table | None = None  # the Reproducibility sheet, read once for both
    for row in log.rows:
        outcome, error = log.parse(row, outcome_column)
        if error is not None:
            continue  # S006 already
        if outcome is None:
            yield log.finding("R001", row, outcome_column, "outcome not yet decided: "
                              "write selected, rejected or baseline")
            continue
        if outcome in ("selected", "rejected") and log.typed(row, "notes") is None:
            yield log.finding("R002", row, notes_column or outcome_column,
                              f"a {outcome} row needs the rationale in Notes")
        date = log.typed(row, "date")  # a dt.date (parse_date), or None when empty or bad
        if outcome == "baseline" and isinstance(date, dt.date):
            baseline_quarters.add(quarter(date))
        if outcome != "selected":
            continue
        if isinstance(date, dt.date):
            selected_by_quarter.setdefault(quarter(date), []).append(row)
        for name, column in log.metrics.items():
            metric = declared.get(name.casefold())
            value = log.typed(row, spec.METRICS_PREFIX + name)
            # a float (parse_number), or None when empty or bad
            if metric is None or not is_number(value) or meets(value, metric):
                continue
            relation = "below" if metric.goal == "max" else "above"
            yield log.finding("R003", row, column,
                              f"selected, but {name} {value:g} is {relation} the declared "
                              f"threshold {metric.threshold:g} ({metric.goal})")
        level = log.typed(row, "reproducibility")
        if disputed is None:
            sheet = reproducibility_sheet(log)
            disputed = contradicted(sheet)
        metrics = disputed.get(log.experiment_id(row) or "")
        if metrics:
            # the reruns contradict the recorded value: no level of evidence outweighs that
            yield log.finding("R005", row, outcome_column,
                              f"the latest statistical rerun did not reproduce the recorded "
                              f"{', '.join(metrics)} (Reproducibility sheet, Consistency "
                              "`not reproduced`): the row claims values its code and data do "
                              "not give")
        elif level not in ("bitwise", "statistical"):
            yield log.finding("R005", row, outcome_column,
                              "selected without passing reproducibility evidence: run "
                              f"`{_rerun_command(log, row)}`")
        else:
            if evidence is None:
                evidence = passing_evidence(sheet)
            if evidence is not False and (log.experiment_id(row), level) not in evidence:
                yield log.finding("R005", row, outcome_column,
                                  f"Reproducibility says {level}, but the Reproducibility sheet "
                                  f"has no passing {level} row for this experiment: run "
                                  f"`{_rerun_command(log, row, '--mode', level)}`")
    for period, rows in selected_by_quarter.items():
        if period in baseline_quarters:
            continue
        for row in rows:
            yield log.finding("R004", row, outcome_column,
                              f"{period} has a selected row but no baseline to compare it with")
