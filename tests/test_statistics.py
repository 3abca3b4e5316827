"""Intervals over runs that respect the quantity (tpdynamics.statistics) and the runner's divergence threshold."""
import csv
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tpdynamics.statistics as stats
from analysis.reproduce import fmt_ci, mean_ci
from tpdynamics.statistics import DIVERGENCE_THRESHOLD, diverged, interval, mean_and_interval
from tpdynamics.training import RunHistory, TrainingResult, compare_methods

T_975_1 = 12.706204736174707  # t_{0.975, 1}: two runs
SMALL = dict(layers=(4, 4, 4), epochs=2, batches_per_epoch=20, n_test=50)


def _two_runs_with_t_interval(low, high):
    """Two values whose 95 % t interval is exactly [low, high]: m +- t_{0.975,1} |a - b| / 2."""
    m, half = (low + high) / 2, (high - low) / 2
    d = half / T_975_1
    return [m - d, m + d]


# -- the cases ------------------------------------------------------------------------------------------
def test_two_seeds_t_interval_of_a_positive_loss_goes_negative_and_the_log_interval_does_not():
    values = _two_runs_with_t_interval(-14.18, 36.26)  # the issue: 2 seeds, test MSE, [-14.18, 36.26]
    t = interval(values, "t")
    assert (t.low, t.high) == pytest.approx((-14.18, 36.26))
    log = interval(values, "log-t")
    g = math.sqrt(values[0] * values[1])
    assert log.centre == pytest.approx(g) and log.centre_name == "geometric mean"
    assert 0 < log.low < min(values) and max(values) < log.high
    spread = T_975_1 * abs(math.log(values[1] / values[0])) / 2  # t * s_log / sqrt(2), s_log = |diff| / sqrt(2)
    assert (log.low, log.high) == pytest.approx((g * math.exp(-spread), g * math.exp(spread)))


def test_large_spread_two_seeds_stay_positive_in_the_runner():
    runs = [RunHistory(seed=0, train_loss=[1.0, 1e-3], test_loss=[1.0, 1e-3]),
            RunHistory(seed=1, train_loss=[1.0, 1e3], test_loss=[1.0, 1e3])]
    result = TrainingResult(method="bp", hyperparameters={}, epochs=1, runs=runs)
    assert result.test_loss[1] == pytest.approx(1.0)  # geometric mean of 1e-3 and 1e3
    low, high = result.test_loss_ci[1]
    assert 0 < low < 1e-3 and 1e3 < high
    assert result.test_loss_ci[0] == (1.0, 1.0)  # equal values: the degenerate interval, exactly
    data = result.to_dict()
    assert data["interval"] == {"method": "log-t", "confidence": 0.95, "centre": "geometric mean"}
    assert data["test_loss_arithmetic_mean"][1] == pytest.approx(500.0005)


@pytest.mark.parametrize("method", ["t", "log-t", "bootstrap"])
def test_huge_and_tiny_values_never_raise(method):
    for values in ([1e186, 1.0, 3.0], [1e308, 1e308], [1e308, 1e-300], [1e-300, 2e-300, 5e-324], [1.7e308] * 3):
        iv = interval(values, method)
        assert iv.n == len(values) and not math.isnan(iv.centre)
        if method != "t":
            assert iv.low >= 0
    assert mean_and_interval([1e186, 1.0, 3.0])[0] == pytest.approx(1e186 / 3)  # the OverflowError


# -- properties -------------------------------------------------------------------------------------------------
# 12 decades: exp of the lower end cannot underflow (it would only beyond a multiplicative half-width of e^700)
positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(positive, min_size=2, max_size=8)


@settings(max_examples=200, deadline=None)
@given(samples)
def test_positive_values_give_a_positive_interval_containing_the_centre(values):
    for method in ("log-t", "bootstrap"):
        iv = interval(values, method)
        assert 0 < iv.low <= iv.centre <= iv.high, (method, iv)
        assert min(values) * (1 - 1e-12) <= iv.centre <= max(values) * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(samples, st.floats(min_value=1e-10, max_value=1e10))
def test_scale_equivariance(values, c):
    for method in ("t", "log-t", "bootstrap"):
        a, b = interval(values, method), interval([c * v for v in values], method)
        assert (b.centre, b.low, b.high) == pytest.approx((c * a.centre, c * a.low, c * a.high), rel=1e-9), method
    a, b = interval(values, "t"), interval([-c * v for v in values], "t")  # t: equivariant for any sign
    assert (b.centre, b.low, b.high) == pytest.approx((-c * a.centre, -c * a.high, -c * a.low), rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=-1e308, max_value=1e308), min_size=0, max_size=6))
def test_any_finite_signed_values_never_raise(values):
    iv = interval(values, "t")
    assert iv.n == len(values) and (iv.n < 2 or iv.low <= iv.centre <= iv.high or not math.isfinite(iv.high - iv.low))


def test_coverage_of_the_log_t_interval_on_a_lognormal_sample():
    """log X ~ N(mu, s^2) exactly, so the log-t interval covers the median exp(mu) 95 % of the time."""
    rng = np.random.default_rng(0)
    mu, sigma, n, reps = 1.5, 2.0, 4, 2000
    draws = np.exp(rng.normal(mu, sigma, size=(reps, n)))
    covered = [interval(row, "log-t").low <= math.exp(mu) <= interval(row, "log-t").high for row in draws]
    assert 0.935 < np.mean(covered) < 0.965  # 95 % +- 3 binomial standard deviations (0.0049)
    # the t interval on the raw values is the wrong tool: it leaves [0, inf) and misses the mean exp(mu + s^2/2)
    t = [interval(row, "t") for row in draws]
    assert np.mean([iv.low < 0 for iv in t]) > 0.5
    assert np.mean([iv.low <= math.exp(mu + sigma ** 2 / 2) <= iv.high for iv in t]) < 0.9


# -- small and degenerate cases, bad input ------------------------------------------------------------------------
def test_small_samples_non_finite_values_and_zeros():
    empty = interval([None, math.nan, math.inf], "log-t")
    assert empty.n == 0 and empty.n_excluded == 3 and math.isnan(empty.centre)
    one = interval([2.0, None], "log-t")
    assert one.centre == 2.0 and math.isnan(one.low) and math.isnan(one.high) and one.n_excluded == 1
    zero = interval([0.0, 1.0], "log-t")  # an underflowed loss: the geometric mean is 0, the log spread infinite
    assert (zero.centre, zero.low, zero.high) == (0.0, 0.0, math.inf)
    same = interval([3.0, 3.0, 3.0], "log-t")
    assert (same.centre, same.low, same.high) == (3.0, 3.0, 3.0)
    boot = interval([0.0, 0.0, 1.0, 2.0], "bootstrap")
    assert 0.0 <= boot.low <= boot.centre == 0.75 <= boot.high <= 2.0
    assert boot == interval([0.0, 0.0, 1.0, 2.0], "bootstrap")  # seeded: deterministic


def test_bad_input_names_the_argument_and_the_fix():
    with pytest.raises(ValueError, match=r"method='log-t' is for positive quantities.*-0.5.*method='t'"):
        interval([1.0, -0.5], "log-t")
    with pytest.raises(ValueError, match=r"confidence=1.5 must be a number in \(0, 1\)"):
        interval([1.0, 2.0], "t", confidence=1.5)
    with pytest.raises(ValueError, match=r"Unknown interval method method='normal'. Valid names: bootstrap, log-t, t"):
        interval([1.0, 2.0], "normal")


def test_formats_and_the_reproduce_helpers():
    assert interval([1.0, 2.0, 4.0], "log-t").format() == "2 [0.36, 11] (geometric mean, 95 % log-t interval, n = 3)"
    assert fmt_ci([1.0, 2.0, 3.0]) == "2 +- 2.5 (arithmetic mean, 95 % t interval, n = 3)"
    assert fmt_ci([1.0, 2.0, 4.0], method="log-t").startswith("2 [0.36, 11] (geometric mean")
    assert fmt_ci([5.0, math.nan]) == "5 (n = 1, no interval)" and fmt_ci([None]) == "n/a (no finite value)"
    mean, half = mean_ci([1.0, 2.0, 3.0, math.inf])
    assert (mean, half) == pytest.approx((2.0, 4.302652729911275 / math.sqrt(3)))
    assert math.isnan(mean_ci([5.0])[1])


# -- divergence ------------------------------------------------------------------------------------------------------
def test_divergence_threshold_is_where_a_square_overflows():
    assert DIVERGENCE_THRESHOLD ** 2 == pytest.approx(np.finfo(float).max)
    assert diverged(1e186) and diverged(math.inf) and diverged(math.nan) and diverged(None)
    assert not diverged(1e150) and not diverged(0.0)


def test_a_finite_loss_above_the_threshold_counts_as_diverged(monkeypatch, tmp_path):
    """The issue's run reached a finite 1e186; here the threshold is lowered so that a small run crosses it."""
    monkeypatch.setattr(stats, "DIVERGENCE_THRESHOLD", 50.0)  # the initial test MSE of these problems is ~ 1e2
    result = compare_methods(["bp"], seeds=2, **SMALL)
    for run in result["bp"].runs:
        assert run.status == "diverged" and "overflowing" in run.message
        assert all(math.isfinite(v) for v in run.test_loss)
    assert result["bp"].n_diverged == 2
    data = json.loads(result.write_json(tmp_path / "r.json").read_text())
    assert data["interval"]["method"] == "log-t" and data["n_diverged"] == 2
    rows = list(csv.DictReader(result.write_csv(tmp_path / "r.csv").open()))
    assert rows[0]["centre"] == "geometric mean" and rows[0]["interval"] == "log-t" and rows[0]["confidence"] == "0.95"


# -- paired comparisons ----------------------------------------------------------------------------------------
def test_paired_interval_is_per_problem_where_unpaired_medians_disagree():
    """13 problems: a is 10x better on six easy ones and 1.2x worse on seven hard ones."""
    from tpdynamics.statistics import paired_comparison

    b = [1.0] * 6 + [5.0] * 7
    a = [0.1] * 6 + [6.0] * 7
    assert np.median(a) > np.median(b)  # unpaired: a looks worse
    paired = paired_comparison(a, b)
    assert paired.n == 13 and paired.a_lower == 6
    assert paired.mean == pytest.approx((6 * math.log(0.1) + 7 * math.log(1.2)) / 13)
    assert paired.high < 0 and paired.ordering() is True  # paired: a is better, decided
    # the pairing is what decides it: the same values matched to other problems give no ordering
    shuffled = paired_comparison(a, b[6:] + b[:6])
    assert shuffled.ordering() is not True
    assert paired_comparison(b, a).ordering() is False  # the reverse claim is refuted, not inconclusive


def test_paired_comparison_inconclusive_excluded_and_deterministic():
    from tpdynamics.statistics import paired_comparison

    straddle = paired_comparison([1.0, 2.0, 1.0, 2.0], [2.0, 1.0, 2.0, 1.0])
    assert straddle.ordering() is None and straddle.low < 0 < straddle.high
    assert straddle.within(2.5) is True and straddle.within(1.5) is None
    diverged = paired_comparison([1.0, math.nan, float("inf"), 2.0], [2.0, 1.0, 1.0, 4.0])
    assert (diverged.n, diverged.n_excluded, diverged.a_lower) == (2, 2, 2)
    assert paired_comparison([1.0, 3.0, 2.0], [2.0, 2.5, 5.0]) == paired_comparison([1.0, 3.0, 2.0], [2.0, 2.5, 5.0])
    one = paired_comparison([1.0], [2.0])
    assert one.ordering() is None and math.isnan(one.low) and one.ratio == pytest.approx(0.5)
    assert paired_comparison([], []).n == 0 and "no problem" in paired_comparison([], []).format()
    assert "lower on 2 of 2" in diverged.format("A", "B") and diverged.to_dict()["ordering"] is True
    with pytest.raises(ValueError, match=r"one value per problem in the same order; got 2 and 1"):
        paired_comparison([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"confidence=1.5 must be a number in \(0, 1\)"):
        paired_comparison([1.0], [1.0], confidence=1.5)


def test_paired_difference_of_a_signed_quantity_and_bounds():
    from tpdynamics.statistics import paired_comparison

    cos_a, cos_b = [0.9, 0.8, 0.95, 0.7], [0.5, 0.6, 0.4, 0.65]
    diff = paired_comparison(cos_b, cos_a, difference=True)  # b - a: negative, b's alignment is worse
    assert diff.ordering() is True and diff.mean == pytest.approx(-0.3) and math.isnan(diff.ratio)
    assert "per problem: mean -0.3 " in diff.format("B", "A")
    ratio = paired_comparison([1.0, 1.1, 0.9], [10.0, 10.0, 10.0])  # ratios about 0.1
    assert ratio.below(0.2) is True and ratio.below(0.05) is False and ratio.below(0.105) is None
