"""Statistics for reruns: derived seeds, t confidence intervals and per-metric verdicts.

A statistical reproduction reruns the experiment with N seeds derived from the row's seed and
asks, per declared metric, whether the t confidence interval of the mean meets the declared
threshold on its worse side (the lower bound for a `max` metric, the upper bound for `min`).

Edge cases, decided here so every caller reports them the same way:
- fewer than two values: no interval (`low`/`high` None) and the verdict is `fail`, because
  one run says nothing about the spread;
- zero variance: the interval collapses to the mean (scipy would give NaN bounds);
- a metric missing from some runs (or runs that crashed): the interval uses the values there
  are, but the verdict is `fail`, because the evidence is incomplete;
- no declared threshold: `pass` when the interval exists (there is nothing to meet; the row
  still shows the interval so a reader can judge the spread).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

SEED_MODULUS = 2**32


def derive_seeds(seed: int, count: int) -> list[int]:
    """`count` distinct seeds derived reproducibly from `seed`: sha256(f"{seed}:{i}") mod 2**32
    for i = 1, 2, ...; a collision (with another derived seed or the row's own seed) is skipped,
    so the list never repeats a seed and never reuses the bitwise run's seed."""
    seeds: list[int] = []
    index = 0
    while len(seeds) < count:
        index += 1
        digest = hashlib.sha256(f"{seed}:{index}".encode("ascii")).digest()
        candidate = int.from_bytes(digest, "big") % SEED_MODULUS
        if candidate != seed and candidate not in seeds:
            seeds.append(candidate)
    return seeds


@dataclass(frozen=True)
class Interval:
    """Mean, sample standard deviation and a two-sided t interval of `n` values."""

    n: int
    mean: float | None
    std: float | None
    low: float | None
    high: float | None
    confidence: float

    @property
    def exists(self) -> bool:
        return self.low is not None and self.high is not None


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The t confidence interval of the mean of `values` (sample std, n - 1 degrees of freedom).

    n = 0: everything None. n = 1: the mean, no std and no interval. Zero variance: the interval
    is [mean, mean]."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return Interval(0, None, None, None, None, confidence)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(1, mean, None, None, None, confidence)
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    std = math.sqrt(variance)
    if std == 0.0:
        return Interval(n, mean, 0.0, mean, mean, confidence)
    from scipy import stats

    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half, confidence)


@dataclass(frozen=True)
class Verdict:
    """`pass` or `fail` for one metric, with the reason a person reads."""

    verdict: str
    reason: str

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def judge(interval: Interval, goal: str, threshold: float | None,
          expected_runs: int | None = None) -> Verdict:
    """The verdict for one metric: its interval's worse bound (lower for `max`, upper for
    `min`) must meet `threshold`; see the module docstring for the edge cases."""
    if interval.n == 0:
        return Verdict("fail", "no run reported this metric")
    if interval.low is None or interval.high is None:  # not `interval.exists`
        return Verdict("fail", "one run gives no interval")
    if expected_runs is not None and interval.n < expected_runs:
        return Verdict("fail", f"only {interval.n} of {expected_runs} runs reported this metric")
    if threshold is None:
        return Verdict("pass", "no threshold declared")
    if goal == "min":
        bound, ok, relation = interval.high, interval.high <= threshold, "<="
    else:
        bound, ok, relation = interval.low, interval.low >= threshold, ">="
    side = "upper" if goal == "min" else "lower"
    if ok:
        return Verdict("pass", f"{side} bound {bound:.6g} {relation} threshold {threshold:g}")
    return Verdict("fail", f"{side} bound {bound:.6g} misses threshold {threshold:g} "
                           f"({goal})")
