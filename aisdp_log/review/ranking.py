"""Rank the numeric parameters against the metrics (Spearman), and tell apart the ones that
always changed together. scipy is imported only when ranking."""

from __future__ import annotations

import datetime as dt
import math

from aisdp_log import spec
from aisdp_log.review.model import MIN_N, SMALL_N, Correlation, Metric


def rank_parameters(log, metrics: list[Metric], until: dt.date):
    """Spearman rank correlation of every numeric parameter with every metric, over all runs
    dated up to the end of the period."""
    import warnings

    from scipy import stats

    rows = [r for r in log.rows if (d := log.typed(r, "date")) is not None and d <= until]
    skipped = []
    numeric: dict[str, list] = {}
    for name in log.params:
        values = [log.typed(r, spec.PARAMS_PREFIX + name) for r in rows]
        present = [v for v in values if v is not None]
        if not present or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                  for v in present):
            skipped.append(name)
            continue
        numeric[name] = values
    together = varied_together(numeric)
    grouped = {name for group in together for name in group}
    result = []
    for name, values in numeric.items():
        if name in grouped:
            continue  # its rho would be its partners' too: which one mattered is unknowable
        for metric in metrics:
            pairs = [(float(p), m) for p, m in
                     zip(values, (log.typed(r, spec.METRICS_PREFIX + metric.name)
                                  for r in rows))
                     if p is not None and m is not None]
            n = len(pairs)
            rho = p_value = None
            if n < MIN_N:
                note = f"undefined: needs at least {MIN_N} runs with both values"
            elif len({p for p, _ in pairs}) < 2:
                note = "undefined: the parameter never varied"
            elif len({m for _, m in pairs}) < 2:
                note = "undefined: the metric never varied"
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outcome = stats.spearmanr([p for p, _ in pairs], [m for _, m in pairs])
                rho, p_value = float(outcome.statistic), float(outcome.pvalue)
                if not math.isfinite(rho):
                    rho = p_value = None
                    note = "undefined"
                elif n < SMALL_N:
                    note = f"caution: n = {n} is small (< {SMALL_N}); treat as indicative only"
                else:
                    note = ""
            result.append(Correlation(name, metric.name, n, rho, p_value, note))
    return result, len(rows), skipped, together


def varied_together(params: dict[str, list]) -> list[list[str]]:
    """Groups of parameters whose values rise and fall together over the runs: over the runs
    where both have a value (at least MIN_N, both varying), their ranks are identical or exactly
    reversed (Spearman rho of +1 or -1). Their rank correlations with a metric are then equal
    up to sign, so ranking each would credit one with what the others did. `params` maps a
    name to its values, one per run (None where empty), in log order."""
    from scipy.stats import rankdata

    names = list(params)
    group_of = {name: name for name in names}

    def leader(name: str) -> str:
        while group_of[name] != name:
            name = group_of[name]
        return name

    for i, first in enumerate(names):
        for second in names[i + 1:]:
            pairs = [(a, b) for a, b in zip(params[first], params[second])
                     if a is not None and b is not None]
            if len(pairs) < MIN_N or len({a for a, _ in pairs}) < 2 \
                    or len({b for _, b in pairs}) < 2:
                continue
            ranks_a = rankdata([float(a) for a, _ in pairs]).tolist()
            ranks_b = rankdata([float(b) for _, b in pairs]).tolist()
            reversed_b = [len(pairs) + 1 - r for r in ranks_b]
            if ranks_a == ranks_b or ranks_a == reversed_b:
                group_of[leader(second)] = leader(first)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(leader(name), []).append(name)
    return [group for group in groups.values() if len(group) > 1]
