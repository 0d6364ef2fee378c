"""Derived seeds, t intervals and verdicts (aisdp_log.domain.stats)."""

from __future__ import annotations

import math

import pytest

from aisdp_log.domain.stats import derive_seeds, judge, t_interval


def test_derived_seeds_are_reproducible_distinct_and_in_range():
    seeds = derive_seeds(42, 20)
    assert seeds == derive_seeds(42, 20)
    assert len(set(seeds)) == 20 and 42 not in seeds
    assert all(0 <= s < 2**32 for s in seeds)
    assert derive_seeds(42, 3) == seeds[:3]          # more runs extend, never reshuffle
    assert derive_seeds(43, 3) != seeds[:3]


def test_t_interval_matches_the_textbook_values():
    # [1, 2, 3]: mean 2, s = 1, t(0.975, 2) = 4.302652729911275 -> 2 +/- 2.4841377...
    interval = t_interval([1, 2, 3], 0.95)
    assert interval.n == 3 and interval.mean == 2 and interval.std == 1
    assert interval.low == pytest.approx(2 - 4.302652729911275 / math.sqrt(3), abs=1e-9)
    assert interval.high == pytest.approx(2 + 4.302652729911275 / math.sqrt(3), abs=1e-9)
    # five accuracies, 95 %: scipy.stats.t.interval gives (0.890367568..., 0.929632431...)
    interval = t_interval([0.90, 0.92, 0.91, 0.93, 0.89], 0.95)
    assert (interval.low, interval.high) == pytest.approx((0.8903675683852244,
                                                           0.9296324316147755), abs=1e-12)
    # 90 % is narrower than 99 %
    narrow, wide = t_interval([1, 2, 3], 0.90), t_interval([1, 2, 3], 0.99)
    assert wide.low < narrow.low and narrow.high < wide.high


def test_zero_variance_collapses_to_the_mean():
    interval = t_interval([0.9, 0.9, 0.9], 0.95)
    assert (interval.mean, interval.std, interval.low, interval.high) == (0.9, 0.0, 0.9, 0.9)
    assert judge(interval, "max", 0.9).verdict == "pass"
    assert judge(interval, "max", 0.91).verdict == "fail"


def test_one_value_gives_no_interval_and_fails():
    interval = t_interval([0.93], 0.95)
    assert interval.n == 1 and interval.mean == 0.93
    assert interval.std is None and interval.low is None and not interval.exists
    verdict = judge(interval, "max", 0.5)
    assert verdict.verdict == "fail" and "one run" in verdict.reason


def test_no_values():
    interval = t_interval([], 0.95)
    assert interval.n == 0 and interval.mean is None
    assert judge(interval, "max", None).verdict == "fail"


@pytest.mark.parametrize("goal, threshold, expected", [
    ("max", 0.85, "pass"),     # lower bound 0.8904 >= 0.85
    ("max", 0.90, "fail"),     # lower bound below 0.90 although the mean is above
    ("min", 0.95, "pass"),     # upper bound 0.9296 <= 0.95
    ("min", 0.92, "fail"),     # upper bound above 0.92 although the mean is below
    ("max", None, "pass"),     # nothing to meet: an interval suffices
])
def test_the_worse_bound_decides(goal, threshold, expected):
    interval = t_interval([0.90, 0.92, 0.91, 0.93, 0.89], 0.95)
    assert judge(interval, goal, threshold).verdict == expected


def test_a_metric_missing_from_some_runs_fails():
    interval = t_interval([0.90, 0.92], 0.95)
    assert judge(interval, "max", 0.5, expected_runs=2).verdict == "pass"
    assert judge(interval, "max", 0.5, expected_runs=3).verdict == "fail"


def test_confidence_outside_zero_one_is_refused():
    with pytest.raises(ValueError):
        t_interval([1, 2], 1.0)
