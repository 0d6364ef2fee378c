"""Rank the numeric parameters against the metrics (Spearman), and tell apart the ones that
always changed together.

The statistics are computed here exactly, in plain Python: a review ranks a handful of runs,
and importing scipy.stats for that cost about a second, most of a review (`bench_review.py`).
The results equal scipy's `rankdata` and `spearmanr` (tests/test_review.py compares them)."""

from __future__ import annotations

import datetime as dt
import math

from aisdp_log import spec
from aisdp_log.review.model import MIN_N, SMALL_N, Correlation, Metric


def rank_parameters(log, metrics: list[Metric], until: dt.date):
    """Spearman rank correlation of every numeric parameter with every metric, over all runs
    dated up to the end of the period."""
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
                rho, p_value = spearman([p for p, _ in pairs], [float(m) for _, m in pairs])
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
            ranks_a = rankdata([float(a) for a, _ in pairs])
            ranks_b = rankdata([float(b) for _, b in pairs])
            reversed_b = [len(pairs) + 1 - r for r in ranks_b]
            if ranks_a == ranks_b or ranks_a == reversed_b:
                group_of[leader(second)] = leader(first)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(leader(name), []).append(name)
    return [group for group in groups.values() if len(group) > 1]


def rankdata(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing the mean of the ranks they span (scipy's `average`)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(first: list[float], second: list[float]) -> tuple[float, float]:
    """Spearman's rho of two equally long samples (at least three values, both varying) and
    its two-sided p-value from Student's t with n - 2 degrees of freedom, as scipy's
    `spearmanr` computes them; rho is NaN when either sample is constant."""
    ranks_a, ranks_b = rankdata(first), rankdata(second)
    n = len(ranks_a)
    mean = (n + 1) / 2
    da = [r - mean for r in ranks_a]
    db = [r - mean for r in ranks_b]
    spread = math.sqrt(math.fsum(a * a for a in da) * math.fsum(b * b for b in db))
    if spread == 0:
        return math.nan, math.nan
    rho = max(-1.0, min(1.0, math.fsum(a * b for a, b in zip(da, db)) / spread))
    dof = n - 2
    if abs(rho) == 1.0:
        return rho, 0.0
    t = rho * math.sqrt(dof / ((rho + 1.0) * (1.0 - rho)))
    return rho, student_t_two_sided(abs(t), dof)


def student_t_two_sided(t: float, dof: int) -> float:
    """P(|T| >= t) for Student's t with a whole number of degrees of freedom, in closed form
    (Abramowitz and Stegun 26.7.3 and 26.7.4): a finite series in cos(theta), where
    theta = atan(t / sqrt(dof))."""
    if dof < 1:
        return math.nan
    theta = math.atan2(t, math.sqrt(dof))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if dof % 2 == 1:
        term = total = 1.0
        for k in range(3, dof, 2):  # (2*4*...*(k-1)) / (3*5*...*k) * cos^(k-1)
            term *= cos2 * (k - 1) / k
            total += term
        inside = 2 / math.pi * (theta + (sin * math.cos(theta) * total if dof > 1 else 0.0))
    else:
        term = total = 1.0
        for k in range(2, dof, 2):  # (1*3*...*(k-1)) / (2*4*...*k) * cos^k
            term *= cos2 * (k - 1) / k
            total += term
        inside = sin * total
    return max(0.0, min(1.0, 1.0 - inside))
