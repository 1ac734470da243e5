"""Statistics: summaries over seeds (means, standard deviations, t-intervals, paired
differences) and, across configs, Spearman and partial Spearman correlations with bootstrap
intervals, cross-fitted sign agreement and Wilson intervals (the hypothesis studies' scores).

Accuracies are fractions in [0, 1].  Runs that diverged carry NaN and are left out of every
summary (with a warning that says how many), never averaged in.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri, stdtrit

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
