"""Derived seeds, t intervals, prediction intervals and the two verdicts
(aisdp_log.domain.stats), against values computed by hand."""

from __future__ import annotations

import math

import pytest

from aisdp_log.domain.stats import (
    consistency,
    derive_seeds,
    judge,
    prediction_interval,
    t_interval,
)

#: t(0.975, 2) in closed form (for 2 degrees of freedom t_p = (2p - 1) * sqrt(2 / (4p(1 - p)))):
#: 0.95 * sqrt(2 / 0.0975) = 4.302652729749464; t(0.975, 4) = 2.7764451051977987 (tables).
T_975_2, T_975_4 = 0.95 * math.sqrt(2 / 0.0975), 2.7764451051977987
FIVE = [0.90, 0.92, 0.91, 0.93, 0.89]   # mean 0.91, squared deviations sum 0.001


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
    assert judge(interval, "max", 0.5).verdict == "fail"
    assert judge(interval, "max", None).verdict == "no threshold"


@pytest.mark.parametrize("goal, threshold, expected", [
    ("max", 0.85, "pass"),     # lower bound 0.8904 >= 0.85
    ("max", 0.90, "fail"),     # lower bound below 0.90 although the mean is above
    ("min", 0.95, "pass"),     # upper bound 0.9296 <= 0.95
    ("min", 0.92, "fail"),     # upper bound above 0.92 although the mean is below
    ("max", None, "no threshold"),   # nothing to meet, so nothing passed
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


def test_no_threshold_is_never_pass():
    for values in ([0.9, 0.91, 0.92], [0.9], [], [0.9, 0.9]):
        verdict = judge(t_interval(values, 0.95), "max", None)
        assert verdict.verdict == "no threshold" and not verdict.passed and not verdict.failed


def test_prediction_interval_matches_hand_computed_values():
    # [1, 2, 3]: mean 2, s = 1, n = 3: 2 +/- 4.302652729749464 * 1 * sqrt(1 + 1/3)
    #          = 2 +/- 4.968275423500661
    low, high = prediction_interval([1, 2, 3], 0.95)
    assert (low, high) == pytest.approx((2 - 4.968275423500661, 2 + 4.968275423500661),
                                        abs=1e-9)
    assert high - low == pytest.approx(2 * T_975_2 * math.sqrt(4 / 3), abs=1e-9)
    # FIVE: s = sqrt(0.001 / 4) = 0.015811388300841896;
    # half width = 2.7764451051977987 * 0.015811388300841896 * sqrt(1.2) = 0.04808943986628503
    assert T_975_4 * math.sqrt(0.001 / 4) * math.sqrt(1.2) == \
        pytest.approx(0.04808943986628503, abs=1e-15)
    low, high = prediction_interval(FIVE, 0.95)
    assert (low, high) == pytest.approx((0.91 - 0.04808943986628503,
                                         0.91 + 0.04808943986628503), abs=1e-9)
    # wider than the confidence interval of the mean by sqrt(n + 1) = sqrt(6)
    ci = t_interval(FIVE, 0.95)
    assert (high - low) / (ci.high - ci.low) == pytest.approx(math.sqrt(6), rel=1e-12)


def test_prediction_interval_needs_a_spread():
    assert prediction_interval([0.9], 0.95) is None
    assert prediction_interval([0.9, 0.9, 0.9], 0.95) is None
    assert prediction_interval([], 0.95) is None


@pytest.mark.parametrize("recorded, expected", [
    (0.91, "consistent"),                          # the mean
    (0.91 + 0.048089, "consistent"),               # just inside the upper bound
    (0.91 - 0.048089, "consistent"),               # just inside the lower bound
    (0.91 + 0.048090, "not reproduced"),           # just outside
    (0.995, "not reproduced"),                     # the lucky run
])
def test_consistency_by_the_prediction_interval(recorded, expected):
    agreement = consistency(FIVE, recorded, confidence=0.95)
    assert agreement.verdict == expected
    assert agreement.source == "prediction interval"
    assert (agreement.low, agreement.high) == pytest.approx(
        (0.91 - 0.04808943986628503, 0.91 + 0.04808943986628503), abs=1e-9)
    assert agreement.bounds_text(0.95) == \
        "[0.861911, 0.958089] (95% prediction interval for a single run)"


@pytest.mark.parametrize("tolerance, recorded, expected", [
    (0.01, 0.95, "not reproduced"),   # inside the interval, outside a narrower tolerance
    (0.01, 0.92, "consistent"),       # within 0.01 of the mean 0.91
    (0.10, 0.995, "consistent"),      # outside the interval, inside a wider tolerance
    (0.0, 0.91, "consistent"),        # a zero tolerance wants the mean itself
    (0.0, 0.9100001, "not reproduced"),
])
def test_a_declared_tolerance_decides_instead_of_the_interval(tolerance, recorded, expected):
    agreement = consistency(FIVE, recorded, tolerance=tolerance, confidence=0.95)
    assert agreement.verdict == expected and agreement.source == "declared tolerance"
    assert (agreement.low, agreement.high) == pytest.approx((0.91 - tolerance,
                                                             0.91 + tolerance), abs=1e-12)
    assert "declared tolerance ±" in agreement.bounds_text(0.95, tolerance)


def test_a_value_on_a_tolerance_bound_is_inside_despite_float_rounding():
    # mean 0.3 (0.1 + 0.2 rounding), tolerance 0.1: 0.4 is on the bound
    assert consistency([0.25, 0.35], 0.4, tolerance=0.1).consistent
    assert consistency([0.25, 0.35], 0.2, tolerance=0.1).consistent


@pytest.mark.parametrize("values, tolerance, expected_runs, reason", [
    ([0.9], None, None, "one run"),
    ([0.9], 0.5, None, "one run"),                          # a tolerance needs a mean of runs
    ([], None, None, "no run"),
    ([0.9, 0.9, 0.9], None, None, "identical"),             # zero variance, no tolerance
    ([0.9, 0.91], None, 3, "only 2 of 3"),                  # a run failed
    ([0.9, 0.91], 0.5, 3, "only 2 of 3"),
])
def test_too_few_runs_is_never_consistent(values, tolerance, expected_runs, reason):
    agreement = consistency(values, 0.9, tolerance=tolerance, confidence=0.95,
                            expected_runs=expected_runs)
    assert agreement.verdict == "too few runs" and not agreement.consistent
    assert reason in agreement.reason
    assert agreement.bounds_text(0.95).startswith("none: ")


def test_zero_variance_with_a_declared_tolerance_is_judged():
    assert consistency([0.9, 0.9, 0.9], 0.905, tolerance=0.01).verdict == "consistent"
    assert consistency([0.9, 0.9, 0.9], 0.95, tolerance=0.01).verdict == "not reproduced"
