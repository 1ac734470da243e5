"""Statistics: summaries over seeds (means, standard deviations, t-intervals, paired
differences) and, across configs, Spearman and partial Spearman correlations with bootstrap
intervals, cross-fitted sign agreement and Wilson intervals (the hypothesis studies' scores);
for real data, intervals over resampled splits of one data set that hold their level and a
cluster bootstrap for rows that share tasks and views (their section says more).

Accuracies are fractions in [0, 1].  Runs that diverged carry NaN and are left out of every
summary (with a warning that says how many), never averaged in.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri, stdtrit

from mfh_sim.validation import require_integer, require_ratio


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation, standard error and a two-sided t confidence interval."""

    mean: float
    std: float
    sem: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f} (95% CI {self.low:.4f} to {self.high:.4f}, n={self.n})"

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


def summarize(values: np.ndarray, level: float = 0.95, name: str = "values") -> Summary:
    """Summary of the finite entries of ``values`` (1-D) with a ``level`` t-interval for the mean."""
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    dropped = values.size - finite.size
    if dropped:
        warnings.warn(
            f"{name}: {dropped} of {values.size} runs diverged (non-finite loss) and are excluded",
            RuntimeWarning,
            stacklevel=2,
        )
    n = finite.size
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, math.nan, math.nan, 0, level)
    mean = float(finite.mean())
    if n == 1:
        return Summary(mean, math.nan, math.nan, math.nan, math.nan, 1, level)
    std = float(finite.std(ddof=1))
    sem = std / math.sqrt(n)
    half = float(stdtrit(n - 1, 0.5 + level / 2.0)) * sem  # Student's t quantile
    return Summary(mean, std, sem, mean - half, mean + half, n, level)


# ------------------------------------------------------------- rank correlations and signs
def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of x, y (shape (rows, n)); NaN where a row is constant."""
    from scipy.stats import rankdata  # scipy.stats costs a second to import: only where ranks are

    rx = rankdata(x, axis=-1)
    ry = rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((rx**2).sum(-1) * (ry**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(-1) / denominator, np.nan)


def bootstrap_interval(
    statistic, *samples: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Paired percentile bootstrap interval of ``statistic`` over the samples' last axis.

    ``scipy.stats.bootstrap`` draws ``n_boot`` resamples of the n paired observations (indices
    ``np.random.default_rng(seed).integers(0, n, (n_boot, n))``) and evaluates
    ``statistic(*resampled, axis=-1)`` on all of them at once (it must be vectorised over leading
    axes); the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of those
    values, the resamples where the statistic is undefined (NaN, e.g. a constant resample) left
    out.  Returns (low, high), NaN if every resample is undefined.
    """
    import inspect

    from scipy.stats import bootstrap

    seeded = np.random.default_rng(seed)
    # scipy >= 1.15 takes the generator as `rng`, older versions as `random_state`.
    generator = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    with warnings.catch_warnings():
        # The interval scipy computes itself propagates NaN draws; ours leaves them out.
        warnings.simplefilter("ignore")
        result = bootstrap(samples, statistic, n_resamples=n_boot, paired=True, vectorized=True, axis=-1,
                           method="percentile", confidence_level=level, **{generator: seeded})
    draws = np.asarray(result.bootstrap_distribution, np.float64)
    if not np.isfinite(draws).any():
        return (math.nan, math.nan)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return (float(low), float(high))


def bootstrap_spearman(
    x: np.ndarray, y: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Spearman's rho of (x, y) and a percentile bootstrap interval (resampling pairs).

    Pairs with a NaN are left out (infinite values rank as the largest or smallest).  Returns
    (rho, low, high); NaN if fewer than 3 pairs or either variable is constant.
    """
    n_boot = require_integer("n_boot", n_boot, minimum=10)
    level = require_ratio("level", level)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    keep = ~np.isnan(x) & ~np.isnan(y)
    x, y = x[keep], y[keep]
    if x.size < 3:
        return (math.nan, math.nan, math.nan)
    rho = float(_spearman_rows(x[None], y[None])[0])
    if not math.isfinite(rho):
        return (math.nan, math.nan, math.nan)
    low, high = bootstrap_interval(lambda a, b, axis: _spearman_rows(a, b), x, y, n_boot=n_boot, level=level,
                                   seed=seed)
    return (rho, low, high)


def _partial_rows(x: np.ndarray, y: np.ndarray, controls: np.ndarray) -> np.ndarray:
    """Partial Spearman of rows: Pearson correlation of the ranks of x and y after the ranks of
    the controls (shape (rows, k, n)) are regressed out by least squares (with an intercept)."""
    from scipy.stats import rankdata

    rank = lambda a: rankdata(a, axis=-1)
    rx, ry = rank(x), rank(y)
    design = np.concatenate([np.ones(x.shape[:-1] + (1, x.shape[-1])), rank(controls)], axis=-2)
    gram = design @ np.swapaxes(design, -1, -2)  # (rows, k+1, k+1)

    def residual(r):
        coefficients = np.linalg.solve(gram, (design @ r[..., None]))  # (rows, k+1, 1)
        return r - (np.swapaxes(design, -1, -2) @ coefficients)[..., 0]

    ex, ey = residual(rx), residual(ry)
    denominator = np.sqrt((ex**2).sum(-1) * (ey**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 1e-9, (ex * ey).sum(-1) / denominator, np.nan)


def partial_spearman(
    x: np.ndarray, y: np.ndarray, controls: list[np.ndarray] | np.ndarray, n_boot: int = 2000,
    level: float = 0.95, seed: int = 0,
) -> tuple[float, float, float]:
    """Partial Spearman correlation of x and y given ``controls``, with a percentile bootstrap interval.

    The ranks of x and y are each regressed (least squares, with intercept) on the ranks of the
    controls, and the residuals correlated: how much x tells about y beyond what the controls
    already tell.  Rows with a NaN anywhere are left out.  Returns (rho, low, high).
    """
    n_boot = require_integer("n_boot", n_boot, minimum=10)
    level = require_ratio("level", level)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    controls = np.atleast_2d(np.asarray(controls, np.float64))
    keep = ~np.isnan(x) & ~np.isnan(y) & ~np.isnan(controls).any(axis=0)
    x, y, controls = x[keep], y[keep], controls[:, keep]
    if x.size < controls.shape[0] + 3:
        return (math.nan, math.nan, math.nan)
    # Each control is a sample of its own (scipy broadcasts samples against each other); the rows
    # function takes them stacked as (resamples, k, n).
    statistic = lambda a, b, *c, axis: _partial_rows(a, b, np.stack(c, axis=-2))
    try:
        rho = float(_partial_rows(x[None], y[None], controls[None])[0])
        low, high = bootstrap_interval(statistic, x, y, *controls, n_boot=n_boot, level=level, seed=seed)
    except np.linalg.LinAlgError:  # a constant control
        return (math.nan, math.nan, math.nan)
    return (rho, low, high)


def sign_agreement(
    predictor: np.ndarray, gain: np.ndarray, folds: int = 5, seed: int = 0
) -> tuple[float, float, int]:
    """Cross-fitted sign agreement of a threshold rule, and the majority-sign baseline.

    For each of ``folds`` folds, the rule "KD helps (gain > 0) iff o (predictor - t) > 0" whose
    threshold t and orientation o in {+1, -1} agree best with the other folds is applied to the
    held-out fold.  Returns (rate, baseline_rate, n): the fraction of held-out configs whose sign
    the rule gets right, the same for "always the other folds' majority sign", and the number of
    configs with a value (NaN left out; infinite values are allowed).
    """
    folds = require_integer("folds", folds, minimum=2)
    x, g = np.asarray(predictor, np.float64), np.asarray(gain, np.float64)
    keep = ~np.isnan(x) & np.isfinite(g)
    x, helps = x[keep], g[keep] > 0
    n = x.size
    if n < folds:
        return (math.nan, math.nan, n)
    fold_of = np.random.default_rng(seed).permutation(n) % folds
    right = right_baseline = 0
    for fold in range(folds):
        train, test = fold_of != fold, fold_of == fold
        values = np.unique(x[train])
        with np.errstate(invalid="ignore"):
            middles = (values[:-1] + values[1:]) / 2  # inf where the upper value is inf
        thresholds = np.concatenate([[-np.inf], middles, [np.inf]])
        above = x[train][None, :] > thresholds[:, None]  # (thresholds, train)
        score_up = (above == helps[train][None, :]).mean(axis=1)  # o = +1
        score_down = (~above == helps[train][None, :]).mean(axis=1)  # o = -1
        best_up, best_down = int(np.argmax(score_up)), int(np.argmax(score_down))
        if score_up[best_up] >= score_down[best_down]:
            predicted = x[test] > thresholds[best_up]
        else:
            predicted = ~(x[test] > thresholds[best_down])
        right += int((predicted == helps[test]).sum())
        majority = helps[train].mean() > 0.5
        right_baseline += int((helps[test] == majority).sum())
    return (right / n, right_baseline / n, n)


def wilson_interval(successes: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion successes / n."""
    if n == 0:
        return (math.nan, math.nan)
    z = float(ndtri(0.5 + level / 2))  # the normal quantile
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


# ---------------------------------------------------------------------------- predictors


# ------------------------------------------------------------------------ resampled splits
# The mean of a gain over J random splits of one data set, and intervals that hold their level
# although the splits share samples: the corrected resampled t of Nadeau and Bengio ("Inference
# for the generalization error", Machine Learning 52, 2003; Bouckaert and Frank, PAKDD 2004)
# inflates the split-to-split variance s^2 to (1/J + n_test/n_train) s^2 (J - 1 degrees of
# freedom); the uncorrected :func:`split_t_interval` is kept to show that it fails
# (:func:`split_coverage`, tests/test_real_statistics.py).  For rows that share tasks and views,
# :func:`cluster_bootstrap` resamples whole clusters of several factors at once (the pigeonhole
# bootstrap of Owen, "The pigeonhole bootstrap", Annals of Applied Statistics 1(2), 2007), with
# the weighted rank correlations :func:`weighted_spearman` and :func:`weighted_partial_spearman`.


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
        half = stdtrit(np.maximum(count - 1, 1), 0.5 + level / 2) * np.sqrt(
            (1.0 / count + n_test / n_train) * var)
    half = np.where(count >= 2, half, np.nan)
    return mean, mean - half, mean + half


def split_t_interval(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high): the t interval that treats the J splits as independent, mean +-
    t_{J-1} s / sqrt(J).  Too narrow for splits of one data set (it shrinks as J grows)."""
    level = require_ratio("level", level)
    mean, var, count = _split_summary(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stdtrit(np.maximum(count - 1, 1), 0.5 + level / 2) * np.sqrt(var / count)
    half = np.where(count >= 2, half, np.nan)
    return mean, mean - half, mean + half


# ------------------------------------------------ rank correlations of clustered, weighted rows
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


def weighted_spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Spearman's rho of (x, y) over the rows (each counted ``weights`` times); NaN rows left out."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & (w > 0)
    if keep.sum() < 3:
        return math.nan
    x, y, w = x[keep], y[keep], w[keep]
    return _weighted_corr(_weighted_ranks(x, w), _weighted_ranks(y, w), w)


def weighted_partial_spearman(x: np.ndarray, y: np.ndarray, control: np.ndarray,
                              weights: np.ndarray | None = None) -> float:
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
