"""R001-R005: is the log ready for a model-selection review?"""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Iterator

from aisdp_log import spec
from aisdp_log.findings import Finding
from aisdp_log.domain.values import parse_number
from aisdp_log.workbook.reader import Log


def quarter(date: dt.date) -> str:
    """`2026-Q3` for a date in July to September 2026."""
    return f"{date.year}-Q{(date.month - 1) // 3 + 1}"


def declared_metrics(log: Log) -> dict[str, spec.MetricSpec]:
    """Metrics from the Metrics sheet, by case-folded name, with goal and threshold parsed."""
    declared = {}
    for metric in log.metric_rows():
        if not metric.name:
            continue
        goal = str(metric.goal).strip().casefold() if metric.goal is not None else "max"
        threshold = None
        if metric.threshold is not None:
            try:
                threshold = parse_number(metric.threshold)
            except ValueError:
                threshold = None  # S003 at the Threshold cell
        if goal in spec.GOALS:
            declared[metric.name.casefold()] = spec.MetricSpec(
                metric.name, goal, threshold,
                "" if metric.description is None else str(metric.description))
    return declared


def meets(value: float, metric: spec.MetricSpec) -> bool:
    if metric.threshold is None:
        return True
    return value >= metric.threshold if metric.goal == "max" else value <= metric.threshold


def passing_evidence(log: Log) -> set[tuple[str, str]] | bool:
    """(experiment ID, mode) pairs with passing evidence in the `Reproducibility` sheet (see
    `passing_pairs`), or False when the workbook has no such sheet (then the cell alone is the
    evidence, as in logs written before the rerun helper). Read with calamine: one small sheet."""
    name = log.workbook.find_sheet(spec.SHEET_REPRODUCIBILITY)
    if name is None:
        return False
    table = log.workbook.table(name)
    columns = [table.column(h) for h in ("Experiment ID", "Mode", "Date", "Verdict")]
    if any(c is None for c in (columns[0], columns[1], columns[3])):
        return set()
    return passing_pairs([row.get(c) for c in columns] for row in table.rows)


def passing_pairs(records: Iterable[list]) -> set[tuple[str, str]]:
    """(experiment ID, mode) pairs of a rerun that passed from `Reproducibility` rows given as
    [experiment ID, mode, date, verdict]. The rows one rerun writes share a date; that rerun
    passed only when each of its rows (one per metric) says `pass`."""
    from aisdp_log.domain.values import as_text

    verdicts: dict[tuple[str, str, object], bool] = {}
    for experiment_id, mode, date, verdict in records:
        if experiment_id is None or mode is None or verdict is None:
            continue
        key = (as_text(experiment_id).strip(), " ".join(str(mode).split()).casefold(), date)
        passed = str(verdict).strip().casefold() == "pass"
        verdicts[key] = verdicts.get(key, True) and passed
    return {(experiment_id, mode) for (experiment_id, mode, _), passed in verdicts.items()
            if passed}


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
    evidence: set | bool | None = None  # read on first need: most logs select few rows
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
        date = log.typed(row, "date")
        if outcome == "baseline" and date is not None:
            baseline_quarters.add(quarter(date))
        if outcome != "selected":
            continue
        if date is not None:
            selected_by_quarter.setdefault(quarter(date), []).append(row)
        for name, column in log.metrics.items():
            metric = declared.get(name.casefold())
            value = log.typed(row, spec.METRICS_PREFIX + name)
            if metric is None or value is None or meets(value, metric):
                continue
            relation = "below" if metric.goal == "max" else "above"
            yield log.finding("R003", row, column,
                              f"selected, but {name} {value:g} is {relation} the declared "
                              f"threshold {metric.threshold:g} ({metric.goal})")
        level = log.typed(row, "reproducibility")
        if level not in ("bitwise", "statistical"):
            yield log.finding("R005", row, outcome_column,
                              "selected without passing reproducibility evidence: run "
                              f"`{_rerun_command(log, row)}`")
        else:
            if evidence is None:
                evidence = passing_evidence(log)
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
