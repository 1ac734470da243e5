"""Estimator v2 of a paired data set's Venn diagram: class separation with the chain rule.

For a set of channels S, the class separation is the (squared) Mahalanobis distance between
the class means under the pooled within-class covariance, Delta^2_S = d^T Sigma_w^-1 d (with more
than two classes, the Hotelling-Lawley trace tr(Sigma_w^-1 Sigma_b) scaled so that it equals
Delta^2 for two balanced classes).  It obeys the chain rule

    Delta^2_ab = Delta^2_a + Delta^2_{b|a},

the second term being what x^b adds to x^a, so the three separations of x^a, x^b and [x^a, x^b]
split the signal into a shared part and two view-specific parts.  Unlike an accuracy, Delta^2
keeps growing on views that are already 99% accurate: it does not saturate.

The separations are put on the scale of the simulator's signal shares.  In the generator
(label y = 1[w.z > 0], :func:`mfh_sim.generate`) a view that sees the share s of ||w||^2 has
Delta^2 = 8 s / (pi - 2 s) exactly (the class means differ by 2 s sqrt(2/pi) along the visible
part of w, whose within-class variance is s - 2 s^2 / pi), so s = pi Delta^2 / (8 + 2 Delta^2):

    s_a, s_b, s_ab  ->  p_G = s_a + s_b - s_ab,  p_A = s_ab - s_b,  p_B = s_ab - s_a,  p_U = 1 - s_ab,

gamma = p_G / s_ab, alpha = p_A / s_a, beta = p_B / s_b (the simulator's definitions).  Real data
may be more separated than the generator allows (s_ab > 1: Delta^2_ab > 8 / (pi - 2)); the shares
are then normalised by s_ab (p_U = 0) and the ratios are unchanged by it.

Estimation.  Each view is standardised and reduced to its leading principal components (at most
n / 6, so that the covariance is well estimated); Delta^2 is the classical unbiased estimate
(n - d - 3) / (n - 2) D^2 - d (1/n_0 + 1/n_1) of the sample distance D^2 (Lachenbruch and Mickey,
"Estimation of error rates in discriminant analysis", Technometrics 10, 1968), floored at 0.
Intervals: a bootstrap of the samples (the rows are resampled, the whole estimate recomputed);
the interval is the point estimate +- 1.96 bootstrap standard deviations on each share, clipped
to [0, 1] (the bootstrap's own distribution is shifted: duplicated rows inflate D^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy.special import ndtri

from mfh_sim.real.sources import check_paired
from mfh_sim.validation import require_integer, require_ratio

#: The ratios and shares an estimate reports.
QUANTITIES = ("gamma", "alpha", "beta", "p_g", "p_a", "p_b", "p_u")
#: The generator's largest separation (s = 1): 8 / (pi - 2).
DELTA2_MAX = 8.0 / (math.pi - 2.0)


@dataclass(frozen=True)
class VennEstimate:
    """An estimated Venn diagram: ratios and shares (fractions in [0, 1]) with ``_low`` /
    ``_high`` bounds of a ``level`` interval, the separations (``delta2_a``, ``delta2_b``,
    ``delta2_ab``), the principal components kept (``dims``), and ``at_boundary``: the point
    estimate sits on an edge of the Venn diagram's allowed region (a share of 0, or the
    concatenation adding nothing or everything) rather than inside it; ``beyond_ceiling``: the
    concatenation separates the classes more than the generator can (s_ab > 1, p_U set to 0)."""

    gamma: float
    alpha: float
    beta: float
    p_g: float
    p_a: float
    p_b: float
    p_u: float
    gamma_low: float
    gamma_high: float
    alpha_low: float
    alpha_high: float
    beta_low: float
    beta_high: float
    p_g_low: float
    p_g_high: float
    p_a_low: float
    p_a_high: float
    p_b_low: float
    p_b_high: float
    p_u_low: float
    p_u_high: float
    delta2_a: float
    delta2_b: float
    delta2_ab: float
    dims: tuple[int, int, int]
    at_boundary: bool
    beyond_ceiling: bool
    n_boot: int

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def share_of_separation(delta2: np.ndarray) -> np.ndarray:
    """The generator's signal share s with separation Delta^2: pi Delta^2 / (8 + 2 Delta^2), in [0, pi/2)."""
    delta2 = np.maximum(np.asarray(delta2, np.float64), 0.0)
    return math.pi * delta2 / (8.0 + 2.0 * delta2)


def shares_from_visible(s_a: np.ndarray, s_b: np.ndarray, s_ab: np.ndarray) -> dict[str, np.ndarray]:
    """p_G, p_A, p_B, p_U and gamma, alpha, beta from the visible shares of x^a, x^b, [x^a, x^b].

    s_ab is first projected onto max(s_a, s_b) <= s_ab <= s_a + s_b (what a Venn diagram allows),
    and all three are divided by max(1, s_ab).  A ratio with a zero denominator is 0.  Also
    ``p_u_unclipped`` = 1 - s_ab before that division (its spread gives p_U's interval width)."""
    s_a, s_b, s_ab = (np.asarray(v, np.float64) for v in (s_a, s_b, s_ab))
    s_ab = np.clip(s_ab, np.maximum(s_a, s_b), s_a + s_b)
    unseen = 1.0 - s_ab  # before the normalisation: negative beyond the generator's ceiling
    scale = np.maximum(s_ab, 1.0)
    s_a, s_b, s_ab = s_a / scale, s_b / scale, s_ab / scale
    p_g, p_a, p_b = s_a + s_b - s_ab, s_ab - s_b, s_ab - s_a
    ratio = lambda num, den: np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), 0.0)
    return {"gamma": ratio(p_g, s_ab), "alpha": ratio(p_a, s_a), "beta": ratio(p_b, s_b),
            "p_g": p_g, "p_a": p_a, "p_b": p_b, "p_u": 1.0 - s_ab, "p_u_unclipped": unseen}


def _components(x: np.ndarray, keep: int) -> np.ndarray:
    """The standardised ``x`` projected on its leading ``keep`` principal components (those of
    non-negligible variance only)."""
    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)
    z = z[:, std > 1e-12]
    if z.shape[1] == 0:
        return np.zeros((x.shape[0], 0))
    values, vectors = np.linalg.eigh(z.T @ z)
    order = np.argsort(values)[::-1]
    good = order[values[order] > 1e-9 * max(values[order[0]], 1e-300)][:keep]
    return z @ vectors[:, good]


def separation(x: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """The unbiased class separation Delta^2 of the columns of ``x`` (n, d) (module docstring)."""
    n, d = x.shape
    if d == 0:
        return 0.0
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    means = np.stack([x[y == c].mean(axis=0) for c in range(n_classes)])
    within = x - means[y]
    cov = within.T @ within / (n - n_classes)
    # Drop directions the pooled covariance does not resolve (duplicated channels of two views).
    values, vectors = np.linalg.eigh(cov)
    good = values > 1e-9 * max(values.max(), 1e-300)
    d = int(good.sum())
    whitened = (means - x.mean(axis=0)) @ vectors[:, good] / np.sqrt(values[good])
    if n_classes == 2:
        diff = whitened[1] - whitened[0]
        raw = float(diff @ diff)
        unbiased = (n - d - 3) / (n - 2) * raw - d * (1 / counts[0] + 1 / counts[1])
    else:
        # Hotelling-Lawley trace of the between-class scatter, scaled to Delta^2 for two balanced
        # classes (4 x the weighted mean squared distance of the class means from the centre).
        raw = float(4 * np.sum(counts[:, None] / n * whitened**2) * n_classes / (2 * (n_classes - 1)))
        unbiased = (n - d - 3) / (n - n_classes) * raw - d * n_classes**2 / (2 * (n_classes - 1)) / n
    return max(unbiased, 0.0)


def _from_components(za: np.ndarray, zb: np.ndarray, y: np.ndarray, n_classes: int
                     ) -> tuple[dict[str, float], tuple[float, float, float], tuple[int, int, int]]:
    zab = np.concatenate([za, zb], axis=1)
    d2 = (separation(za, y, n_classes), separation(zb, y, n_classes), separation(zab, y, n_classes))
    shares = shares_from_visible(*(share_of_separation(v) for v in d2))
    return {k: float(v) for k, v in shares.items()}, d2, (za.shape[1], zb.shape[1], zab.shape[1])


def estimate(x_a, x_b, y, *, seed: int = 0, n_boot: int = 100, level: float = 0.95,
             max_components: int | None = None) -> VennEstimate:
    """The Venn diagram of paired views ``x_a`` (n, d_a), ``x_b`` (n, d_b) with labels ``y`` (n,).

    Args:
        seed: the bootstrap's seed (>= 0).  n_boot: bootstrap resamples (>= 20).
        level: the intervals' level in (0, 1).
        max_components: principal components kept per view (default n / 6, at least 1).
    Returns a :class:`VennEstimate` (module docstring: the statistic, the scale, the intervals).
    """
    x_a, x_b, y = check_paired(x_a, x_b, y, min_samples=8)
    return estimate_views({"a": x_a, "b": x_b}, y, [("a", "b")], seed=seed, n_boot=n_boot, level=level,
                          max_components=max_components)[("a", "b")]


def estimate_views(views: dict[str, np.ndarray], y: np.ndarray, pairs, *, seed: int = 0, n_boot: int = 100,
                   level: float = 0.95, max_components: int | None = None) -> dict[tuple[str, str], VennEstimate]:
    """:func:`estimate` for several ``pairs`` of one task's ``views`` (name -> (n, d) float64) with
    labels ``y`` in 0..C-1, sharing each view's principal components and the bootstrap's resamples
    (every pair sees the same resampled rows)."""
    seed = require_integer("seed", seed, 0)
    n_boot = require_integer("n_boot", n_boot, 20)
    level = require_ratio("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is not allowed: give a level in (0, 1)")
    with single_thread_blas():
        return _estimate_views(views, np.asarray(y), pairs, seed, n_boot, level, max_components)


def single_thread_blas():
    """A context in which numpy's BLAS runs on one thread: the estimator's many small
    eigendecompositions are ten times slower when BLAS threads compete for the cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without threadpoolctl (the 'real' extra) the numbers are the same, only slower
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _estimate_views(views, y, pairs, seed, n_boot, level, max_components):
    n = y.size
    keep = max(n // 6, 1) if max_components is None else require_integer("max_components", max_components, 1)
    n_classes = int(y.max()) + 1
    names = sorted({v for pair in pairs for v in pair})
    comps = {v: _components(views[v], keep) for v in names}
    points = {pair: _from_components(comps[pair[0]], comps[pair[1]], y, n_classes) for pair in pairs}
    rng = np.random.default_rng(seed)
    boots = {pair: {k: [] for k in QUANTITIES} for pair in pairs}
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)
        if np.bincount(y[rows], minlength=n_classes).min() < 2:
            continue
        resampled = {v: _components(views[v][rows], keep) for v in names}
        for pair in pairs:
            values, _, _ = _from_components(resampled[pair[0]], resampled[pair[1]], y[rows], n_classes)
            for k in QUANTITIES:
                # p_U's spread on the unclipped scale: beyond the ceiling every resample's p_U is 0,
                # which would give an interval of zero width that the data do not pin.
                boots[pair][k].append(values["p_u_unclipped" if k == "p_u" else k])
    z = float(ndtri(0.5 + level / 2))
    out = {}
    for pair in pairs:
        point, d2, dims = points[pair]
        bounds = {}
        for k in QUANTITIES:
            draws = boots[pair][k]
            sd = float(np.std(draws, ddof=1)) if len(draws) > 1 else math.nan
            bounds[f"{k}_low"] = max(point[k] - z * sd, 0.0)
            bounds[f"{k}_high"] = min(point[k] + z * sd, 1.0)
        # On an edge of the allowed region: a ratio pinned at 0 or 1 (the concatenation adds
        # nothing to a view, or the views share nothing).
        at_boundary = bool(min(point["p_g"], point["p_a"], point["p_b"]) < 1e-9)
        out[pair] = VennEstimate(**{k: point[k] for k in QUANTITIES}, **bounds, delta2_a=d2[0], delta2_b=d2[1],
                                 delta2_ab=d2[2], dims=dims,
                                 at_boundary=at_boundary, beyond_ceiling=bool(share_of_separation(d2[2]) > 1.0),
                                 n_boot=len(boots[pair]["gamma"]))
    return out
