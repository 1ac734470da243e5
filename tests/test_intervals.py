"""Coverage of the package's intervals on distributions whose true value is known.

An interval is right when it contains the true value as often as its level says, not when it
contains its own point estimate (that holds by construction).  Each test draws many samples from
a known distribution (fixed seeds), builds the interval the package builds, and counts how often
it covers the truth; the count is binomial, so the tolerance is a few binomial standard errors of
a 95% rate.  Where the coverage can be computed exactly (Wilson's interval) it is.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mfh_sim.stats import bootstrap_spearman, partial_spearman, summarize, wilson_interval


def _binomial_band(rate: float, trials: int, z: float = 4.0) -> tuple[float, float]:
    """rate +- z binomial standard errors of a rate over ``trials``."""
    se = math.sqrt(rate * (1 - rate) / trials)
    return rate - z * se, rate + z * se


def test_t_interval_of_a_mean_covers_at_its_level():
    # Normal data: the t-interval covers the mean in exactly 95% of samples at any n.  At n = 5 a
    # normal-quantile (z) interval would cover only ~88%, one with SE = SD / n or the wrong t
    # quantile other rates: 2,500 samples put the binomial SE at 0.0044, the band at +-0.017.
    trials, mean, n = 2500, 0.7, 5
    rng = np.random.default_rng(5)
    draws = rng.normal(mean, 0.05, size=(trials, n))
    summaries = [summarize(row) for row in draws]
    low = np.array([s.low for s in summaries])
    high = np.array([s.high for s in summaries])
    covered = (low <= mean) & (mean <= high)
    lower, upper = _binomial_band(0.95, trials)
    assert lower < covered.mean() < upper, covered.mean()
    # Misses fall on both sides equally (each 2.5%).
    assert abs((low > mean).mean() - (high < mean).mean()) < 4 * math.sqrt(0.05 / trials)
    # The other levels too: a 50% interval covers half the time.
    half = np.array([(lambda s: s.low <= mean <= s.high)(summarize(row, level=0.5)) for row in draws[:1000]])
    lower, upper = _binomial_band(0.5, 1000)
    assert lower < half.mean() < upper


def test_interval_of_a_paired_accuracy_gain_covers_the_true_gain():
    # The shape of the simulator's own data: per-seed test accuracies (binomial over 1000 test
    # points) of two paired models over 200 seeds, their gain summarised by its t-interval.
    trials, seeds, n_test = 2000, 200, 1000
    rng = np.random.default_rng(12)
    skill = rng.beta(20, 8, size=(trials, seeds))  # the seed's difficulty, shared by both models
    base = rng.binomial(n_test, skill) / n_test
    treated = rng.binomial(n_test, np.clip(skill + 0.01, 0, 1)) / n_test
    true_gain = np.mean(np.clip(skill + 0.01, 0, 1) - skill)  # ~0.01; computed, not assumed
    covered = []
    for row in range(trials):
        s = summarize(treated[row] - base[row])
        covered.append(s.low <= true_gain <= s.high)
    lower, upper = _binomial_band(0.95, trials)
    assert lower < np.mean(covered) < upper


@pytest.mark.parametrize("n", [20, 60])
def test_wilson_interval_coverage_is_exact_and_near_its_level(n):
    # Exact coverage: the sum of binomial probabilities of the counts whose interval holds p.
    # Wilson's interval averages 95% over p with its worst dips above 92% (Brown, Cai and
    # DasGupta 2001); the Wald interval p +- 1.96 sqrt(p(1-p)/n) averages 87% at n = 20 and
    # falls to 33% near the edges, so these bounds tell the two apart.
    counts = np.arange(n + 1)
    intervals = np.array([wilson_interval(int(k), n) for k in counts])
    coverage = []
    for p in np.linspace(0.02, 0.98, 97):
        holds = (intervals[:, 0] <= p) & (p <= intervals[:, 1])
        coverage.append(scipy_stats.binom.pmf(counts[holds], n, p).sum())
    coverage = np.array(coverage)
    assert 0.94 < coverage.mean() < 0.965, coverage.mean()
    assert coverage.min() > 0.92, coverage.min()
    assert all(math.isnan(v) for v in wilson_interval(0, 0))  # no trials, no interval


def test_spearman_bootstrap_interval_covers_the_population_rho():
    # Bivariate normal with correlation r: Spearman's population rho is (6 / pi) arcsin(r / 2).
    # 300 samples of 80 pairs: binomial SE of the coverage 0.013; the percentile bootstrap is
    # nearly exact here.  The upper bound keeps the interval from being uselessly wide.
    trials, n, r = 300, 80, 0.6
    truth = 6 / math.pi * math.asin(r / 2)
    rng = np.random.default_rng(3)
    hits = widths = 0.0
    for trial in range(trials):
        x = rng.normal(size=n)
        y = r * x + math.sqrt(1 - r * r) * rng.normal(size=n)
        _, low, high = bootstrap_spearman(x, y, n_boot=400, seed=trial)
        hits += low <= truth <= high
        widths += high - low
    lower, _ = _binomial_band(0.95, trials)
    assert lower < hits / trials <= 0.99, hits / trials
    # The asymptotic SE of Spearman's rho at rho ~ 0.58 is about 0.078 here: width ~ 2 x 1.96 x SE.
    assert 0.2 < widths / trials < 0.4


def test_partial_spearman_interval_covers_zero_when_only_the_control_links_them():
    # x and y depend on each other only through z: the population partial correlation is 0.
    trials, n = 150, 150
    rng = np.random.default_rng(5)
    hits = 0
    for trial in range(trials):
        z = rng.normal(size=n)
        x = z + 0.5 * rng.normal(size=n)
        y = z + 0.5 * rng.normal(size=n)
        _, low, high = partial_spearman(x, y, [z], n_boot=200, seed=trial)
        hits += low <= 0.0 <= high
    lower, _ = _binomial_band(0.95, trials)
    assert lower < hits / trials <= 0.995, hits / trials


def test_the_bootstrap_helper_resamples_pairs_with_the_documented_generator():
    # scipy.stats.bootstrap underneath, but the same resamples as drawing
    # default_rng(seed).integers(0, n, (n_boot, n)) by hand, and NaN resamples left out: the
    # intervals the statistics reported before the helper existed are unchanged.
    from mfh_sim.stats import _spearman_rows, bootstrap_interval

    rng = np.random.default_rng(5)
    x = rng.normal(size=25)
    y = 0.5 * x + rng.normal(size=25)
    x[:22] = 0.0  # ties: some resamples are constant in x and give NaN
    index = np.random.default_rng(7).integers(0, 25, size=(400, 25))
    draws = _spearman_rows(x[index], y[index])
    assert np.isnan(draws).any()
    expected = np.nanpercentile(draws, [2.5, 97.5])
    got = bootstrap_interval(lambda a, b, axis: _spearman_rows(a, b), x, y, n_boot=400, seed=7)
    np.testing.assert_array_equal(got, expected)
