"""Statistics for real paired data that hold their level when splits share samples.

* :func:`corrected_t_interval`: the mean over J random splits of one data set, with the
  corrected resampled t interval of Nadeau and Bengio ("Inference for the generalization error",
  Machine Learning 52, 2003; Bouckaert and Frank, PAKDD 2004).  Splits of one data set share
  samples, so the split-to-split variance s^2 understates the variance of the mean; the
  correction uses (1/J + n_test/n_train) s^2 instead of s^2/J, with J - 1 degrees of freedom.
  :func:`split_t_interval` is the uncorrected interval (mfh-sim 0.3's), kept to show it fails.
* :func:`cluster_bootstrap`: percentile intervals of a statistic of rows that share tasks and
  views, resampling whole clusters (several factors at once: the pigeonhole bootstrap of Owen,
  "The pigeonhole bootstrap", Annals of Applied Statistics 1(2), 2007).
* :func:`spearman`, :func:`partial_spearman`: (weighted) rank correlations for it.
* :func:`split_coverage`: the coverage of an interval over random splits, by simulation with
  known truth (Gaussian classes, two nearest-centroid learners, exact population accuracies).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as scipy_stats
from scipy.special import ndtr

from mfh_sim.validation import require_integer, require_ratio


def _split_summary(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.asarray(values, np.float64)
    count = np.sum(np.isfinite(values), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(values, axis=-1) if values.size else np.zeros(values.shape[:-1])
        var = np.nanvar(values, axis=-1, ddof=1)
    return mean, var, count


def corrected_t_interval(values: np.ndarray, n_train: int, n_test: int, level: float = 0.95
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) over the last axis (J splits; NaN entries left out) with the corrected
    resampled t interval: mean +- t_{J-1} sqrt((1/J + n_test/n_train) s^2).

    ``n_train`` is the number of samples a split trains on (everything but the test set), ``n_test``
    the test set's; both >= 1.  Rows with fewer than 2 finite splits get NaN bounds."""
    n_train = require_integer("n_train", n_train, 1)
    n_test = require_integer("n_test", n_test, 1)
    level = require_ratio("level", level)
    mean, var, count = _split_summary(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = scipy_stats.t.ppf(0.5 + level / 2, np.maximum(count - 1, 1)) * np.sqrt(
            (1.0 / count + n_test / n_train) * var)
    half = np.where(count >= 2, half, np.nan)
    return mean, mean - half, mean + half


def split_t_interval(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high): the t interval that treats the J splits as independent, mean +-
    t_{J-1} s / sqrt(J).  Too narrow for splits of one data set (it shrinks as J grows)."""
    level = require_ratio("level", level)
    mean, var, count = _split_summary(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = scipy_stats.t.ppf(0.5 + level / 2, np.maximum(count - 1, 1)) * np.sqrt(var / count)
    half = np.where(count >= 2, half, np.nan)
    return mean, mean - half, mean + half


# ---------------------------------------------------------------- rank correlations
def _weighted_ranks(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mid-ranks of x among rows repeated ``weights`` times (the ranks of the expanded sample)."""
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], weights[order]
    _, start, counts = np.unique(xs, return_index=True, return_counts=True)
    cum = np.concatenate([[0.0], np.cumsum(ws)])
    ends = start + counts
    mid = (cum[start] + cum[ends] + 1) / 2  # mean rank of the tied group in the expanded sample
    ranks = np.empty_like(x, dtype=np.float64)
    ranks[order] = np.repeat(mid, counts)
    return ranks


def _weighted_corr(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    total = w.sum()
    a = a - np.sum(w * a) / total
    b = b - np.sum(w * b) / total
    denominator = math.sqrt(np.sum(w * a * a) * np.sum(w * b * b))
    return float(np.sum(w * a * b) / denominator) if denominator > 1e-12 else math.nan


def spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Spearman's rho of (x, y) over the rows (each counted ``weights`` times); NaN rows left out."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & (w > 0)
    if keep.sum() < 3:
        return math.nan
    x, y, w = x[keep], y[keep], w[keep]
    return _weighted_corr(_weighted_ranks(x, w), _weighted_ranks(y, w), w)


def partial_spearman(x: np.ndarray, y: np.ndarray, control: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Partial Spearman correlation of x and y given ``control``: the (weighted) correlation of
    the ranks of x and y after each is regressed on the control's ranks (with an intercept)."""
    x, y, c = (np.asarray(v, np.float64) for v in (x, y, control))
    w = np.ones_like(x) if weights is None else np.asarray(weights, np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(c) & (w > 0)
    if keep.sum() < 4:
        return math.nan
    x, y, c, w = x[keep], y[keep], c[keep], w[keep]
    rx, ry, rc = (_weighted_ranks(v, w) for v in (x, y, c))
    design = np.stack([np.ones_like(rc), rc], axis=1)
    gram = design.T @ (w[:, None] * design)
    if abs(np.linalg.det(gram)) < 1e-12:
        return math.nan
    residual = lambda r: r - design @ np.linalg.solve(gram, design.T @ (w * r))
    return _weighted_corr(residual(rx), residual(ry), w)


def cluster_bootstrap(statistic: Callable[[np.ndarray], float], factors: Sequence[np.ndarray], *,
                      n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(value, low, high): ``statistic(weights)`` on all rows (weights 1) and its percentile
    interval when the clusters of every factor are resampled with replacement.

    ``factors``: per factor an array (rows,) or (rows, k) of cluster labels (k columns when a row
    belongs to several clusters of one kind, e.g. its teacher view and its student view).  A
    resample draws each factor's clusters with replacement, independently across factors, and a
    row's weight is the product over its clusters of how often each was drawn (Owen 2007).  The
    statistic takes the (rows,) weights and returns a number (NaN where undefined)."""
    n_boot = require_integer("n_boot", n_boot, 10)
    level = require_ratio("level", level)
    factors = [np.asarray(f) for f in factors]
    rows = factors[0].shape[0]
    value = statistic(np.ones(rows))
    coded = []
    for f in factors:
        columns = f.reshape(rows, -1)
        labels, codes = np.unique(columns, return_inverse=True)
        coded.append((labels.size, codes.reshape(columns.shape)))
    rng = np.random.default_rng(seed)
    draws = np.full(n_boot, np.nan)
    for i in range(n_boot):
        weights = np.ones(rows)
        for size, codes in coded:
            counts = np.bincount(rng.integers(0, size, size), minlength=size).astype(np.float64)
            weights *= np.prod(counts[codes], axis=1)
        if weights.sum() > 0:
            draws[i] = statistic(weights)
    tail = 100 * (1 - level) / 2
    if np.isfinite(draws).sum() < 10:
        return value, math.nan, math.nan
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return value, float(low), float(high)


# ------------------------------------------------------------------ coverage by simulation
def split_coverage(interval: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]], splits: int, *,
                   n_datasets: int = 400, n_train: int = 150, n_test: int = 50, dim: int = 10,
                   separation: float = 1.2, seed: int = 0) -> float:
    """Share of simulated data sets whose interval over ``splits`` random splits covers the truth.

    Known truth: two classes N(+-mu, I) in ``dim`` channels (||mu|| = separation / 2 in the
    first half of the channels and in the second, so both halves carry signal); learners: a
    nearest-centroid classifier on all channels and one on the first half; the quantity is the
    difference of their test accuracies (a paired gain, like the KD gain), whose target is its
    expectation over training samples of ``n_train`` with exact population accuracies (Monte
    Carlo over 20,000 training samples).  ``interval(gains (n_datasets, splits), n_train=,
    n_test=)`` returns (mean, low, high) per data set."""
    splits = require_integer("splits", splits, 2)
    rng = np.random.default_rng(seed)
    half = dim // 2
    mu = np.zeros(dim)
    mu[:half] = separation / 2 / math.sqrt(2 * half)
    mu[half:] = separation / 2 / math.sqrt(2 * (dim - half))

    def population_gain(m1: np.ndarray, m0: np.ndarray) -> np.ndarray:
        acc = []
        for keep in (slice(None), slice(0, half)):
            w = (m1 - m0)[..., keep]
            c = -np.sum(w * (m1 + m0)[..., keep], axis=-1) / 2
            norm = np.linalg.norm(w, axis=-1)
            wm = np.sum(w * mu[keep], axis=-1)
            acc.append(0.5 * (ndtr((wm + c) / norm) + ndtr((wm - c) / norm)))
        return acc[0] - acc[1]

    def draw(shape: tuple[int, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.zeros(shape + (n,), bool)
        y[..., n // 2:] = True
        return rng.normal(size=shape + (n, dim)) + np.where(y[..., None], mu, -mu), y

    def centroids(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = y[..., None].astype(np.float64)
        return np.sum(x * y, -2) / np.sum(y, -2), np.sum(x * (1 - y), -2) / np.sum(1 - y, -2)

    x, y = draw((20000,), n_train)
    truth = float(np.mean(population_gain(*centroids(x, y))))
    n = n_train + n_test
    data, labels = draw((n_datasets,), n)
    gains = np.empty((n_datasets, splits))
    for j in range(splits):
        order = np.argsort(rng.random((n_datasets, n)), axis=1)
        take = lambda a, idx: np.take_along_axis(a, idx[..., None] if a.ndim == 3 else idx, axis=1)
        train, test = order[:, :n_train], order[:, n_train:]
        m1, m0 = centroids(take(data, train), take(labels, train))
        xt, yt = take(data, test), take(labels, test)
        accs = []
        for keep in (slice(None), slice(0, half)):
            w = (m1 - m0)[:, keep]
            c = -np.sum(w * (m1 + m0)[:, keep], axis=-1) / 2
            predicted = np.einsum("ntd,nd->nt", xt[..., keep], w) + c[:, None] > 0
            accs.append(np.mean(predicted == yt, axis=1))
        gains[:, j] = accs[0] - accs[1]
    _, low, high = interval(gains, n_train=n_train, n_test=n_test)
    return float(np.mean((low <= truth) & (truth <= high)))
