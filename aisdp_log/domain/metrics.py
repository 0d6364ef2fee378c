"""Declared metrics and thresholds: what the Metrics sheet declares, whether a value meets its
threshold, and which reruns passed. Shared by the review checks, `rerun` and the review."""

from __future__ import annotations

from collections.abc import Iterable

from aisdp_log import spec
from aisdp_log.domain.values import as_text, parse_number


def declared_metrics(log) -> dict[str, spec.MetricSpec]:
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


def passing_pairs(records: Iterable[list]) -> set[tuple[str, str]]:
    """(experiment ID, mode) pairs of a rerun that passed from `Reproducibility` rows given as
    [experiment ID, mode, date, verdict]. The rows one rerun writes share a date; that rerun
    passed only when each of its rows (one per metric) says `pass`."""
    verdicts: dict[tuple[str, str, object], bool] = {}
    for experiment_id, mode, date, verdict in records:
        if experiment_id is None or mode is None or verdict is None:
            continue
        key = (as_text(experiment_id).strip(), " ".join(str(mode).split()).casefold(), date)
        passed = str(verdict).strip().casefold() == "pass"
        verdicts[key] = verdicts.get(key, True) and passed
    return {(experiment_id, mode) for (experiment_id, mode, _), passed in verdicts.items()
            if passed}
