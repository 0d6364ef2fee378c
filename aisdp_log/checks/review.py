"""R001-R005: is the log ready for a model-selection review?"""

from __future__ import annotations

import datetime as dt
from typing import Iterator

from .. import spec
from ..findings import Finding
from ..workbook import Log


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
        if metric.threshold is not None and not isinstance(metric.threshold, bool):
            try:
                threshold = float(metric.threshold)
            except (TypeError, ValueError):
                threshold = None
        if goal in spec.GOALS:
            declared[metric.name.casefold()] = spec.MetricSpec(
                metric.name, goal, threshold,
                "" if metric.description is None else str(metric.description))
    return declared


def meets(value: float, metric: spec.MetricSpec) -> bool:
    if metric.threshold is None:
        return True
    return value >= metric.threshold if metric.goal == "max" else value <= metric.threshold


def run(log: Log, ctx) -> Iterator[Finding]:
    outcome_column = log.columns.get("outcome")
    if outcome_column is None:
        return
    declared = declared_metrics(log)
    selected_by_quarter: dict[str, list] = {}
    baseline_quarters: set[str] = set()
    notes_column = log.columns.get("notes")
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
        if log.typed(row, "reproducibility") not in ("bitwise", "statistical"):
            yield log.finding("R005", row, outcome_column,
                              "selected without passing reproducibility evidence: run "
                              f"`aisdp-log rerun {log.path.name} --id {log.experiment_id(row)}`")
    for period, rows in selected_by_quarter.items():
        if period in baseline_quarters:
            continue
        for row in rows:
            yield log.finding("R004", row, outcome_column,
                              f"{period} has a selected row but no baseline to compare it with")
