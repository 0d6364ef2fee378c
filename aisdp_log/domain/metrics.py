"""Declared metrics and thresholds: what the Metrics sheet declares, whether a value meets its
threshold, and which reruns passed. Shared by the review checks, `rerun` and the review."""

from __future__ import annotations

from collections.abc import Iterable

from aisdp_log import spec
from aisdp_log.domain.stats import CONSISTENT, NO_THRESHOLD, NOT_REPRODUCED
from aisdp_log.domain.values import as_text, parse_number, parsed_or_none


def declared_metrics(log) -> dict[str, spec.MetricSpec]:
    """Metrics from the Metrics sheet, by case-folded name, with goal and threshold parsed."""
    declared = {}
    for metric in log.metric_rows():
        if not metric.name:
            continue
        goal = str(metric.goal).strip().casefold() if metric.goal is not None else "max"
        if goal in spec.GOALS:  # an unusable Threshold or Tolerance: S003 at its cell
            declared[metric.name.casefold()] = spec.MetricSpec(
                metric.name, goal, parsed_or_none(parse_number, metric.threshold),
                "" if metric.description is None else str(metric.description),
                parsed_or_none(parse_tolerance, metric.tolerance))
    return declared


def parse_tolerance(value: object) -> float:
    """A `Tolerance` cell as a number of 0 or more; ValueError (the reason) otherwise."""
    tolerance = parse_number(value)
    if tolerance < 0:
        raise ValueError(f"tolerance {tolerance:g} is negative")
    return tolerance


def unusable_declarations(log) -> list[str]:
    """`Metrics!<cell>: <reason>` for each Threshold or Tolerance cell that holds a value that
    is not usable (validate reports S003 there): a rerun judged without it would be judged
    against a different declaration than the one written."""
    problems = []
    for metric in log.metric_rows():
        for header, parse in (("Threshold", parse_number), ("Tolerance", parse_tolerance)):
            value = getattr(metric, header.casefold())
            if metric.name is None or value is None or header not in metric.cells:
                continue
            try:
                parse(value)
            except ValueError as exc:
                problems.append(f"{spec.SHEET_METRICS}!{metric.cells[header]}: {metric.name} "
                                f"{header.casefold()} {as_text(value)!r} is unusable ({exc})")
    return problems


def meets(value: float, metric: spec.MetricSpec) -> bool:
    if metric.threshold is None:
        return True
    return value >= metric.threshold if metric.goal == "max" else value <= metric.threshold


def passing_pairs(records: Iterable[list]) -> set[tuple[str, str]]:
    """(experiment ID, mode) pairs of a rerun that passed from `Reproducibility` rows given as
    [experiment ID, mode, date, verdict] or [..., verdict, consistency]. The rows one rerun
    writes share a date; that rerun passed only when none of its rows (one per metric) fails
    and at least one tested something: a `Verdict` other than `pass` or `no threshold` fails,
    and so does a `Consistency` other than `consistent` (empty: not tested, as in rows
    written before 0.3); a row passes a test with `pass` or `consistent`."""
    verdicts: dict[tuple[str, str, object], tuple[bool, bool]] = {}
    for experiment_id, mode, date, verdict, *rest in records:
        if experiment_id is None or mode is None or verdict is None:
            continue
        key = (as_text(experiment_id).strip(), " ".join(str(mode).split()).casefold(), date)
        threshold = " ".join(str(verdict).split()).casefold()
        agreed = " ".join(str(rest[0]).split()).casefold() if rest and rest[0] is not None \
            else ""
        failed = threshold not in ("pass", NO_THRESHOLD) or agreed not in ("", CONSISTENT)
        tested = threshold == "pass" or agreed == CONSISTENT
        ok, any_tested = verdicts.get(key, (True, False))
        verdicts[key] = (ok and not failed, any_tested or tested)
    return {(experiment_id, mode) for (experiment_id, mode, _), (ok, tested) in verdicts.items()
            if ok and tested}


def not_reproduced(records: Iterable[list]) -> dict[str, list[str]]:
    """Experiment ID -> the metrics its latest statistical rerun did not reproduce (its
    `Consistency` says `not reproduced`), from `Reproducibility` rows given as
    [experiment ID, mode, date, consistency, metric] in sheet order (the tool appends, so the
    last rerun's rows come last). Only IDs with such metrics are returned."""
    latest: dict[str, tuple[object, list[str]]] = {}
    for experiment_id, mode, date, agreed, metric in records:
        if experiment_id is None or " ".join(str(mode).split()).casefold() != "statistical":
            continue
        key = as_text(experiment_id).strip()
        if key not in latest or latest[key][0] != date:
            latest[key] = (date, [])
        if agreed is not None and " ".join(str(agreed).split()).casefold() == NOT_REPRODUCED:
            latest[key][1].append("" if metric is None else as_text(metric))
    return {key: metrics for key, (_, metrics) in latest.items() if metrics}
