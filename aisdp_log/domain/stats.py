"""Statistics for reruns: derived seeds, t intervals and the two per-metric verdicts.

A statistical reproduction reruns the experiment with N seeds derived from the row's seed and
gives two separate results per declared metric:
- the threshold verdict (`judge`): whether the t confidence interval of the mean meets the
  declared threshold on its worse side (the lower bound for a `max` metric, the upper bound
  for `min`): `pass`, `fail`, or `no threshold` where none is declared (never `pass`);
- the consistency verdict (`consistency`): whether the value the row records is one the
  reruns could have produced: within the declared tolerance of the reruns' mean where one is
  declared, else inside the t prediction interval for one new run,
  mean +/- t(1 - (1 - confidence) / 2, n - 1) * s * sqrt(1 + 1/n):
  `consistent`, `not reproduced`, or `too few runs` where the reruns cannot say.

Edge cases, decided here so every caller reports them the same way:
- fewer than two values: no interval (`low`/`high` None); the threshold verdict is `fail` and
  the consistency verdict `too few runs`, because one run says nothing about the spread;
- zero variance: the confidence interval collapses to the mean (scipy would give NaN bounds);
  without a declared tolerance the consistency verdict is `too few runs` (a zero-width
  prediction interval would call any other value irreproducible, however close);
- a metric missing from some runs (or runs that crashed): the interval uses the values there
  are, but the threshold verdict is `fail` and the consistency verdict `too few runs`,
  because the evidence is incomplete.
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
    half = t_quantile(confidence, n - 1) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half, confidence)


def t_quantile(confidence: float, degrees_of_freedom: int) -> float:
    """The two-sided Student t critical value: t(1 - (1 - confidence) / 2, df)."""
    from scipy import stats  # rerun judging only: the review reads bounds from the sheet

    return float(stats.t.ppf((1 + confidence) / 2, degrees_of_freedom))


def prediction_interval(values: Sequence[float], confidence: float = 0.95
                        ) -> tuple[float, float] | None:
    """The two-sided t prediction interval for one new run given `values`:
    mean +/- t(1 - (1 - confidence) / 2, n - 1) * s * sqrt(1 + 1/n), s the sample standard
    deviation. None for fewer than two values or zero variance (no spread to predict from)."""
    interval = t_interval(values, confidence)
    if interval.mean is None or not interval.std:
        return None
    n = interval.n
    half = t_quantile(confidence, n - 1) * interval.std * math.sqrt(1 + 1 / n)
    return interval.mean - half, interval.mean + half


NO_THRESHOLD = "no threshold"
CONSISTENT, NOT_REPRODUCED, TOO_FEW_RUNS = "consistent", "not reproduced", "too few runs"
#: Where consistency bounds came from (the `Consistency bounds` cell names it).
FROM_TOLERANCE, FROM_PREDICTION = "declared tolerance", "prediction interval"


@dataclass(frozen=True)
class Verdict:
    """`pass`, `fail` or `no threshold` for one metric, with the reason a person reads."""

    verdict: str
    reason: str

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failed(self) -> bool:
        """A declared threshold missed (or too few runs to test it); `no threshold` is not."""
        return self.verdict == "fail"


def judge(interval: Interval, goal: str, threshold: float | None,
          expected_runs: int | None = None) -> Verdict:
    """The threshold verdict for one metric: its interval's worse bound (lower for `max`,
    upper for `min`) must meet `threshold`; `no threshold` when none is declared (nothing was
    tested, so never `pass`); see the module docstring for the edge cases."""
    if threshold is None:
        return Verdict(NO_THRESHOLD, "no threshold declared, so none was tested")
    if interval.n == 0:
        return Verdict("fail", "no run reported this metric")
    if interval.low is None or interval.high is None:  # not `interval.exists`
        return Verdict("fail", "one run gives no interval")
    if expected_runs is not None and interval.n < expected_runs:
        return Verdict("fail", f"only {interval.n} of {expected_runs} runs reported this metric")
    if goal == "min":
        bound, ok, relation = interval.high, interval.high <= threshold, "<="
    else:
        bound, ok, relation = interval.low, interval.low >= threshold, ">="
    side = "upper" if goal == "min" else "lower"
    if ok:
        return Verdict("pass", f"{side} bound {bound:.6g} {relation} threshold {threshold:g}")
    return Verdict("fail", f"{side} bound {bound:.6g} misses threshold {threshold:g} "
                           f"({goal})")


@dataclass(frozen=True)
class Consistency:
    """Whether a recorded value agrees with the reruns: `verdict` is `consistent`, `not
    reproduced` or `too few runs`; `low`/`high` the bounds applied and `source` where they
    came from (`declared tolerance` or `prediction interval`; empty when there are none)."""

    verdict: str
    low: float | None
    high: float | None
    source: str
    reason: str

    @property
    def consistent(self) -> bool:
        return self.verdict == CONSISTENT

    def bounds_text(self, confidence: float, tolerance: float | None = None) -> str:
        """The `Consistency bounds` cell: the bounds and where they came from, or why there
        are none."""
        if self.low is None or self.high is None:
            return f"none: {self.reason}"
        bounds = f"[{self.low:.6g}, {self.high:.6g}]"
        if self.source == FROM_TOLERANCE:
            return f"{bounds} ({FROM_TOLERANCE} ±{tolerance:g} around the reruns' mean)"
        return f"{bounds} ({confidence:.0%} {FROM_PREDICTION} for a single run)"


def consistency(values: Sequence[float], recorded: float, *, tolerance: float | None = None,
                confidence: float = 0.95, expected_runs: int | None = None) -> Consistency:
    """Is `recorded` (the row's value) consistent with the reruns' `values`? Within
    `tolerance` of their mean where one is declared, else inside their prediction interval
    for a single run at `confidence`; see the module docstring for the edge cases."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return Consistency(TOO_FEW_RUNS, None, None, "", "no run reported this metric")
    if expected_runs is not None and n < expected_runs:
        return Consistency(TOO_FEW_RUNS, None, None, "",
                           f"only {n} of {expected_runs} runs reported this metric")
    if n == 1:
        return Consistency(TOO_FEW_RUNS, None, None, "", "one run says nothing about the spread")
    mean = math.fsum(values) / n
    if tolerance is not None:
        low, high, source = mean - tolerance, mean + tolerance, FROM_TOLERANCE
    else:
        interval = prediction_interval(values, confidence)
        if interval is None:
            return Consistency(TOO_FEW_RUNS, None, None, "",
                               f"the {n} runs gave identical values and no tolerance is "
                               "declared, so there is no spread to judge by")
        (low, high), source = interval, FROM_PREDICTION
    # the bounds are sums of floats: a value on a bound must not fall out by rounding
    slack = 1e-12 * max(1.0, abs(mean))
    inside = low - slack <= recorded <= high + slack
    where = "inside" if inside else "outside"
    return Consistency(CONSISTENT if inside else NOT_REPRODUCED, low, high, source,
                       f"recorded {recorded:.6g} is {where} [{low:.6g}, {high:.6g}] ({source})")
