"""Finite-sample prediction: the least-squares surrogate of crossmodal KD (derivation: docs/theory.md).

The surrogate replaces logistic training by least squares on labels y in {-1, +1}:

* teacher: theta_T = argmin ||X_a theta - y||^2 on n samples of x^a (no intercept);
* student: theta = argmin ||X_b theta - u||^2 with target u = (1 - lam) y + lam X_a theta_T, on the
  teacher's own training sample (``same_sample=True``, the paper's Fig. 2/3) or on a fresh one.

lam = 0 is the no-KD student, lam = 1 pure logit matching; the population direction of the paper's
CE + KL recipe (w_ce = 1, effective KD weight k = w_kd / 2) is reached at lam = k / (w_ce + k) = 1/3
(see :func:`surrogate_lambda`).  Accuracies are Sheppard's formula applied to a plug-in correlation
rho = E[theta].w / sqrt(E||theta||^2) with Gaussian-design (inverse-Wishart) second moments; the
label residual is treated as independent noise of the right variance (it is uncorrelated with the
inputs but not independent of them, the one approximation besides the plug-in).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from mfh_sim.theory.population import sheppard_accuracy
from mfh_sim.theory.quadrature import DEFAULT_NODES, Blocks, SplitRule, split_rule

C2 = 2.0 / math.pi  # c^2 with c = E|xi| = sqrt(2/pi): E[x_j y] = c w_j for ||w|| = 1


def surrogate_lambda(ce_weight: float, kd_weight: float, kd_reduction: str = "paper") -> float:
    """The least-squares mixing weight lam in [0, 1] whose population direction is the CE + KD one.

    At temperature 1 the population KD student loads (w_ce + k) on w_G and w_ce on w_B
    (k = w_kd / 2 for the 'paper' reduction, w_kd for 'batchmean'); the least-squares student loads
    1 on w_G and (1 - lam) on w_B, so lam = k / (w_ce + k).
    """
    k = kd_weight / (2.0 if kd_reduction == "paper" else 1.0)
    if ce_weight + k <= 0:
        raise ValueError("ce_weight + kd_weight must be > 0: the student's loss would be zero")
    return k / (ce_weight + k)


def _check_sizes(n_train: float, dim_a: float, dim_b: float, shared_channels: float) -> None:
    for name, value in (("dim_a", dim_a), ("dim_b", dim_b)):
        if not value >= 1:
            raise ValueError(f"{name}={value!r} is not allowed: it must be >= 1")
    if not 0 <= shared_channels <= min(dim_a, dim_b):
        raise ValueError(
            f"shared_channels={shared_channels!r} is not allowed: it must be in [0, min(dim_a, dim_b)]"
        )
    if not n_train >= 2:
        raise ValueError(f"n_train={n_train!r} is not allowed: it must be >= 2")


def teacher_rho(rule: SplitRule, n_train: float, dim_a: float) -> np.ndarray:
    """Plug-in correlation of the least-squares teacher: c X / sqrt(c^2 X + sigma_T^2 d_a/(n-d_a-1))."""
    x = rule.x
    if n_train <= dim_a + 1:
        return np.full_like(x, np.nan)
    noise = (1.0 - C2 * x) * dim_a / (n_train - dim_a - 1.0)
    return _ratio(math.sqrt(C2) * x, C2 * x + noise)


def student_rho(
    rule: SplitRule,
    lam: float,
    *,
    n_train: float,
    dim_a: float,
    dim_b: float,
    shared_channels: float,
    same_sample: bool = True,
) -> np.ndarray:
    """Plug-in correlation with w.z of the least-squares student at mixing weight ``lam``.

    ``shared_channels`` = channels of x^b that show a latent x^a also shows (G and shared
    non-decisive latents).  Returns NaN where n_train <= dim + 1 (the inverse-Wishart mean does
    not exist).
    """
    p_g, p_a, p_b, x = rule.p_g, rule.p_a, rule.p_b, rule.x
    n, d_a, d_b, g_c = float(n_train), float(dim_a), float(dim_b), float(shared_channels)
    if n <= max(d_a, d_b) + 1:
        return np.full_like(p_g, np.nan)
    c = math.sqrt(C2)
    sigma_eta2 = 1.0 - C2 * (p_g + p_a + p_b)  # y's residual on every visible latent
    if same_sample:
        d_q = d_a - g_c  # teacher channels the student does not see
        r = d_b - g_c  # student channels the teacher does not see
        leak = d_q / (n - g_c)  # share of the student-only signal in the teacher's in-sample fit
        q_a = C2 * p_a * d_b / (n - d_b - 1.0)  # a-only signal: noise to the student either way
        e_eta = sigma_eta2 * d_b / (n - d_b - 1.0)  # label noise regressed on all of x^b
        v_a = sigma_eta2 * (g_c / max(n - g_c - 1.0, 1.0) + d_q * r / n**2)  # teacher-fitted noise
        leak_fluct = d_q * (r + 1.0) * C2 * p_b / n**2
        error = q_a + (1.0 - lam) ** 2 * e_eta + (1.0 - (1.0 - lam) ** 2) * v_a + lam**2 * leak_fluct
        b_weight = (1.0 - lam) + lam * leak
        signal = c * (p_g + b_weight * p_b)
        norm2 = C2 * (p_g + b_weight**2 * p_b) + error
        return _ratio(signal, norm2)
    # Independent teacher (fresh student sample): u regresses on x^b with a fixed teacher.
    teacher_noise = (1.0 - C2 * x) / (n - d_a - 1.0)  # per-channel variance of the teacher's error
    var_u = (1.0 - lam) ** 2 + lam**2 * (C2 * x + d_a * teacher_noise) + 2.0 * lam * (1.0 - lam) * C2 * x
    beta2 = (
        (1.0 - lam) ** 2 * C2 * (p_g + p_b)
        + lam**2 * (C2 * p_g + g_c * teacher_noise)
        + 2.0 * lam * (1.0 - lam) * C2 * p_g
    )
    sigma2 = np.clip(var_u - beta2, 0.0, None)
    signal = c * ((1.0 - lam) * (p_g + p_b) + lam * p_g)
    return _ratio(signal, beta2 + sigma2 * d_b / (n - d_b - 1.0))


def _ratio(signal: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm2 > 0, signal / np.sqrt(np.where(norm2 > 0, norm2, 1.0)), 0.0)


def least_squares_accuracies(
    rule: SplitRule,
    lam: float,
    *,
    n_train: float,
    dim_a: float,
    dim_b: float,
    shared_channels: float,
    same_sample: bool = True,
) -> dict[str, float]:
    """Expected accuracies (fractions) of the least-squares teacher, no-KD (lam=0) and KD student."""
    _check_sizes(n_train, dim_a, dim_b, shared_channels)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam={lam!r} is not allowed: it must be in [0, 1]")
    kw = dict(n_train=n_train, dim_a=dim_a, dim_b=dim_b, shared_channels=shared_channels,
              same_sample=same_sample)
    mean = lambda rho: float(np.sum(rule.weight * sheppard_accuracy(rho)))
    teacher = mean(teacher_rho(rule, n_train, dim_a))
    no_kd = mean(student_rho(rule, 0.0, **kw))
    kd = mean(student_rho(rule, lam, **kw))
    return {"teacher_acc": teacher, "no_kd_acc": no_kd, "kd_acc": kd, "delta": kd - no_kd}


# --------------------------------------------------------------------------- the Fig. 2 geometry
def fig2_blocks(overlap: float, n_student: float = 10.0, n_teacher: float = 10.0) -> Blocks:
    """Blocks of the paper's Fig. 2 at overlap o: x^b shows latents 0..9, x^a latents (10-o)..(19-o).

    G = o, A = n_teacher - o, B = n_student - o, U = o (the K = 20 decisive latents), so
    gamma = o / (n_student + n_teacher - o).  ``overlap`` may be real (the theory interpolates).
    """
    return Blocks(overlap, n_teacher - overlap, n_student - overlap, overlap)


def fig2_delta(
    overlap: float,
    *,
    n_train: float = 200,
    dim_a: float = 25,
    dim_b: float = 50,
    lam: float = 1.0 / 3.0,
    hyperplane: str = "gaussian",
    same_sample: bool = True,
    nodes: int = DEFAULT_NODES,
) -> float:
    """Predicted KD gain (fraction) of the least-squares surrogate in the Fig. 2 geometry."""
    rule = split_rule(fig2_blocks(overlap), hyperplane, nodes)
    return least_squares_accuracies(
        rule, lam, n_train=n_train, dim_a=dim_a, dim_b=dim_b, shared_channels=overlap,
        same_sample=same_sample,
    )["delta"]


def crossover_gamma(
    n_train: float = 200,
    dim_a: float = 25,
    dim_b: float = 50,
    lam: float = 1.0 / 3.0,
    *,
    hyperplane: str = "gaussian",
    same_sample: bool = True,
    nodes: int = DEFAULT_NODES,
) -> float:
    """The predicted crossover gamma* of the Fig. 2 geometry: KD helps for gamma > gamma*.

    Solves delta(o) = 0 for the real overlap o in (0, 10) (:func:`fig2_delta`, least-squares
    surrogate) and returns gamma* = o / (20 - o).  Returns 0.0 when KD is predicted to help at every
    overlap > 0, and NaN when it never helps (for example as n_train -> infinity).
    """
    if not 0.0 < lam <= 1.0:
        raise ValueError(f"lam={lam!r} is not allowed: it must be in (0, 1]")
    kw = dict(n_train=n_train, dim_a=dim_a, dim_b=dim_b, lam=lam, hyperplane=hyperplane,
              same_sample=same_sample, nodes=nodes)
    grid = np.linspace(0.0, 10.0, 41)
    deltas = np.array([fig2_delta(o, **kw) for o in grid])
    if np.isnan(deltas).any():
        return float("nan")
    positive = deltas[1:] > 0
    if positive.all():
        return 0.0
    # the last sign change from negative to positive
    changes = np.flatnonzero((deltas[1:-1] <= 0) & (deltas[2:] > 0)) + 1
    if changes.size == 0:
        return float("nan")
    i = changes[-1]
    o_star = brentq(lambda o: fig2_delta(o, **kw), grid[i], grid[i + 1], xtol=1e-10)
    return o_star / (20.0 - o_star)


def crossover_from_gains(overlaps: np.ndarray, gains: np.ndarray, n_decisive: float = 20.0) -> float:
    """gamma* where a measured Fig. 2 KD-gain curve turns positive (for simulated curves).

    ``gains`` has shape (len(overlaps),) or (len(overlaps), seeds) (then averaged over seeds).
    The last negative-to-positive change of the mean gain is located by linear interpolation in
    the overlap o and returned as gamma* = o / (n_decisive - o); NaN if the mean never changes sign
    that way.
    """
    overlaps = np.asarray(overlaps, dtype=np.float64)
    gains = np.asarray(gains, dtype=np.float64)
    mean = gains.mean(axis=1) if gains.ndim == 2 else gains
    if mean.shape != overlaps.shape:
        raise ValueError(f"gains has shape {gains.shape}: it must start with len(overlaps) = {overlaps.size}")
    hits = np.flatnonzero((mean[:-1] <= 0) & (mean[1:] > 0))
    if hits.size == 0:
        return float("nan")
    j = hits[-1]
    star = overlaps[j] + (overlaps[j + 1] - overlaps[j]) * (-mean[j]) / (mean[j + 1] - mean[j])
    return float(star / (n_decisive - star))
