"""A per-model effective ridge for the paper's full-batch GD: equal degrees of freedom (research).

Gradient descent from theta = 0 for a time t on a quadratic loss with Hessian H is the spectral
filter 1 - exp(-t lambda) on H's eigenvalues; ridge at l2 is the filter lambda / (lambda + l2).
The map chooses, per model, the ridge whose filter has the same trace over H's spectral law mu
(equal degrees of freedom):

    D_gd(t)   = int (1 - exp(-t lambda)) dmu(lambda)
    D_ridge   = int lambda / (lambda + l2) dmu(lambda) = 1 - l2 m(-l2)
    l2_eff:     D_ridge(l2_eff) = D_gd(t),

m(z) = int dmu(lambda) / (lambda - z) the Stieltjes transform.  H = (1/n) sum_i tau_i x_i x_i^T
(x_i in R^d with i.i.d. N(0, 1) entries, the theory's normalisation: the mean loss's Hessian,
tau_i = loss''(h_i) the per-sample curvature); as n, d -> infinity with gamma = d / n its law
solves the generalised Marchenko-Pastur (Silverstein) equation

    m(z) = 1 / (-z + E_tau[tau / (1 + gamma tau m(z))]).

At z = -l2 this is the GCM fixed point's own prior equation (alpha V = m(-l2), Vh = alpha
E[tau / (1 + V tau)] with tau = loss''(h*), h* the proximal margins; ``docs/theory.md`` 4.3), so
the law with the proximal curvatures is the Hessian's at the ridge solution.  The GD trace
int exp(-t lambda) dmu is the inverse Laplace transform of s -> m(-s) at t, computed on Talbot's
contour (Weideman & Trefethen's parameters), where m is evaluated off the spectrum.

Which curvatures (``curvature``): 'init' takes tau = (a + k) / 4, the loss's curvature at h = 0
where GD starts (CE and the T^2-scaled KL both have sigma'(0) = 1/4); 'solution' takes the
proximal curvatures of the ridge fixed point at l2_eff itself, found self-consistently
(l2 -> fixed point -> curvatures -> spectrum -> l2).  Ridge and GD filters are compared on the
same Hessian, as in the quadratic case where the filter picture is exact.

Definition fixed before any comparison on the benchmark families (:func:`gd_ridges`): curvature
'solution', self-consistent; one ridge per model (teacher, no-KD student, KD student: the KD
student's own, not the no-KD student's), each at the hyperplane's mean shares; t = 2 lr steps.
Why 'solution' and not 'init' (checks off the families, numpy GD from 0 vs Newton ridge logistic,
d = 100, 4 seeds, the ridge minimising E||theta_GD - theta_ridge(l2)||^2, against the map):

    alpha = n/d, rho       measured teacher / KD(k=0.5)   'solution' map     'init' map    1/t
    1.3, 0.4               0.0019 / 0.0021                0.0023 / 0.0022    0.0008        0.005
    2.0, 0.4               0.0024 / 0.0019                0.0019 / 0.0010    2e-5          0.005
    2.0, ~0.67             0.0022 / 0.0019                0.0021 / 0.0018    2e-5          0.005
    4.0, 0.4               0.0004 / ~0.0001               ~1e-5  / ~0        6e-9          0.005

At h = 0 the quadratic GD has converged on the whole spectrum by t = 200 (t tau lambda_min = 4 at
alpha = 2), so 'init' all but removes the ridge; the logistic loss flattens as the margins grow,
and the curvatures at the solution (mean ~0.03-0.13 here) put the spectrum's lower part near
1/t, where the two filters differ.  Off-family simulation (docs/theory.md 4.6, 4,4,4,2 + 3
shared non-decisive, 30/50 channels, n = 100, 150 seeds): gain -1.09 +- 0.15 simulated, -0.44
with l2 = 1/t for every model, -0.93 with this map (ridges 0.00058 / 0.0020 / 0.0011).
Where the map is weak: at alpha >~ 4 it gives ridges far below those measured (GD's filter is
then ~1 on the whole spectrum in this picture, while GD on the logistic loss is not converged).

Measured afterwards (``benchmarks/theory_family.py compare --gd-map equal-dof``, GD at 300 seeds;
the one-ridge map l2 = 1/t in brackets): the benchmark family (seed 20261201) gain RMSE 0.27 pt
(0.26) over 39 of 40 configs (one NaN), worst 0.82 (1.11), Spearman 0.97 (0.96), sign 32/33
(30/33), levels within target 38/40 (40/40); the held-out family (seed 20261202) RMSE 0.33 pt
(0.29) over 35 of 40 (five NaN), worst 0.76 (0.75), Spearman 0.92 (0.97), sign 25/27 (31/31),
gains within target 34/40 (39/40), levels 35/40 (40/40).  Not better on the held-out family: not
the default.  The NaN are configs at n/d >~ 6 where the map's ridge is ~0 and a hyperplane node's
fixed point (separable at that node's share) does not converge; at n/d ~ 1.3-2.5 the map turns
the one-ridge map's over-predicted gains (mean error +0.16 / +0.21 pt below n_train 100) into
under-predicted ones on the benchmark family (-0.20) and unbiased ones on the held-out (-0.01),
without lowering the RMSE there (0.34 -> 0.32, 0.38 -> 0.36).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import brentq

#: Talbot contour nodes (error ~ exp(-1.36 N) for a transform analytic off the negative axis).
TALBOT_NODES = 32


def _check_law(gamma, tau, weight):
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma={gamma!r} is not allowed: it must be a finite number > 0 (d / n)")
    tau = np.atleast_1d(np.asarray(tau, dtype=np.float64))
    weight = np.ones_like(tau) / tau.size if weight is None else np.atleast_1d(np.asarray(weight, np.float64))
    if tau.shape != weight.shape or not (np.all(tau >= 0) and np.all(np.isfinite(tau))):
        raise ValueError(f"tau={tau!r} is not allowed: finite curvatures >= 0, one weight each")
    if not (np.all(weight >= 0) and weight.sum() > 0):
        raise ValueError(f"weight={weight!r} is not allowed: weights >= 0 with a positive sum")
    return float(gamma), tau, weight / weight.sum()


def stieltjes(z, gamma, tau, weight=None, *, tol: float = 1e-13, max_iter: int = 20000) -> np.ndarray:
    """m(z) = (1/d) tr (H - z)^{-1} of H = (1/n) sum tau_i x_i x_i^T in the limit, for z off [0, inf).

    Solves m = 1 / (-z + E[tau / (1 + gamma tau m)]) (tau with ``weight``) by a damped iteration
    from m = -1/z, which stays on the branch with Im m of the sign of Im z (the Stieltjes branch).
    """
    gamma, tau, weight = _check_law(gamma, tau, weight)
    z = np.asarray(z, dtype=np.complex128)
    m = -1.0 / z
    for _ in range(max_iter):
        new = 1.0 / (-z + (weight * tau / (1.0 + gamma * tau * m[..., None])).sum(-1))
        new = 0.5 * m + 0.5 * new
        if np.max(np.abs(new - m) / np.abs(new)) < tol:
            return new
        m = new
    raise RuntimeError("the Silverstein iteration did not converge")


def gd_trace(t: float, gamma, tau, weight=None, nodes: int = TALBOT_NODES) -> float:
    """int exp(-t lambda) dmu(lambda) = (1/d) tr exp(-t H): Talbot inversion of s -> m(-s) at t."""
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"t={t!r} is not allowed: it must be a finite time > 0")
    theta = -math.pi + (np.arange(nodes) + 0.5) * 2.0 * math.pi / nodes
    c = nodes / t
    s = c * (-0.6122 + 0.5017 * theta / np.tan(0.6407 * theta) + 0.2645j * theta)
    ds = c * (0.5017 / np.tan(0.6407 * theta) - 0.5017 * 0.6407 * theta / np.sin(0.6407 * theta) ** 2
              + 0.2645j)
    value = np.sum(np.exp(s * t) * stieltjes(-s, gamma, tau, weight) * ds) / (1j * nodes)
    return float(value.real)


def ridge_dof(l2: float, gamma, tau, weight=None) -> float:
    """int lambda / (lambda + l2) dmu = 1 - l2 m(-l2) (per channel)."""
    return float(1.0 - l2 * stieltjes(-l2, gamma, tau, weight).real)


def gd_dof(t: float, gamma, tau, weight=None) -> float:
    """int (1 - exp(-t lambda)) dmu (per channel)."""
    return 1.0 - gd_trace(t, gamma, tau, weight)


def equal_dof_l2(t: float, gamma, tau, weight=None) -> float:
    """The ridge l2 whose degrees of freedom over mu equal GD's at time t (see the module doc).

    D_ridge falls from D(0+) to 0 as l2 grows and D_gd(t) lies strictly between (GD's filter is
    below 1 and above 0 on every eigenvalue > 0), so the root is unique; brentq in log l2.
    """
    if not np.all(np.isfinite(tau)):
        return math.nan  # curvatures of a fixed point that did not converge
    target = gd_dof(t, gamma, tau, weight)
    f = lambda u: ridge_dof(math.exp(u), gamma, tau, weight) - target
    lo, hi = math.log(1e-6 / t), math.log(1e3 / t)
    if f(lo) <= 0:  # GD has fitted every direction as far as a ridge below 1e-6 / t would
        return math.exp(lo)
    return math.exp(brentq(f, lo, hi, xtol=1e-10))


def _rule_weights(kd_on: bool):
    from mfh_sim.theory import gcm

    xl, wl = gcm._half_line_rule(gcm.LABEL_NODES)
    _, wo = gcm._gauss_hermite(gcm.OMEGA_NODES)
    wt = gcm._gauss_hermite(gcm.LOGIT_NODES)[1] if kd_on else np.ones(1)
    rule = (gcm.LABEL_NODES, gcm.LOGIT_NODES, gcm.OMEGA_NODES)
    return (wl[:, None, None] * wt[None, :, None] * wo[None, None, :]).ravel(), rule


def proximal_curvatures(ch, fp, kd_on: bool):
    """loss''(h*) at the fixed point ``fp`` of the GCM channel ``ch``, with their weights.

    One more evaluation of the channel (:func:`mfh_sim.theory.gcm._channel`) at the solution
    (m, q, V); its Newton solves leave the proximal points' curvatures on the label-then-logit-
    then-field rule, both label signs.  Returns (tau, weight), shape (P, nodes) each.
    """
    from mfh_sim.theory import gcm

    cache: dict = {}
    gcm._channel(ch, fp.m, fp.q, fp.V, kd_on, cache, None, fp.vh_st)
    w, rule = _rule_weights(kd_on)
    P = fp.q.shape[0]
    tau = np.concatenate([cache[("s", y, y, rule, "gp")].reshape(P, -1) for y in (1.0, -1.0)], axis=1)
    weight = np.concatenate([w, w])
    return tau, np.broadcast_to(weight, tau.shape)


def _self_consistent(map_of, t: float, tol: float = 1e-3) -> float:
    """The l2 with l2 = map_of(l2) (map_of: l2 -> equal-dof ridge of the fixed point at l2).

    F(u) = log map_of(e^u) - u is < 0 at u = log(1/t) (GD's filter is sharper than the ridge's on
    every spectrum, so map_of < 1/t) and >= 0 at the floor log(1e-6 / t) of :func:`equal_dof_l2`:
    brentq in between.  Where the fixed point at e^u does not exist or does not converge (separable
    data at a vanishing ridge: ||theta|| -> infinity, the curvatures -> 0, so GD's equal-dof ridge
    is far above e^u) F counts as positive.
    """
    def f(u):
        value = map_of(math.exp(u))
        return math.log(value) - u if np.isfinite(value) and value > 0 else 50.0

    lo, hi = math.log(1e-6 / t), math.log(1.0 / t)
    f_hi = f(hi)
    if f_hi >= 0:
        return 1.0 / t
    if f(lo) <= 0:
        return math.exp(lo)
    return math.exp(brentq(f, lo, hi, xtol=tol))


def _logistic_channel(rho: float, alpha: float, l2: float):
    from mfh_sim.theory import gcm

    one = np.ones(1)
    return gcm.Channel(alpha=alpha * one, l2=l2 * one, omega=np.full((1, 1, 1), max(rho, 1e-12)),
                       s_lt=0 * one, s_tt=one, ce=one, kd=0 * one, temperature=one)


def logistic_l2(rho: float, alpha: float, t: float, curvature: str = "solution") -> float:
    """Equal-dof ridge of GD at time t for plain logistic ERM at visible share rho, alpha = n/d.

    'init': tau = 1/4; 'solution': the proximal curvatures of the ridge fixed point at the returned
    l2 (self-consistent).
    """
    if curvature == "init":
        return equal_dof_l2(t, 1.0 / alpha, 0.25)
    if curvature != "solution":
        raise ValueError(f"curvature={curvature!r} is not allowed: use 'init' or 'solution'")

    return _self_consistent_ridge(lambda l2: _logistic_channel(rho, alpha, l2), False, t, alpha)


def _self_consistent_ridge(channel_at, kd_on: bool, t: float, alpha: float) -> float:
    """The l2 whose fixed point's proximal curvatures give back l2 as GD's equal-dof ridge;
    ``channel_at(l2)`` builds the model's GCM channel at a trial ridge."""
    from mfh_sim.theory import gcm

    def map_of(l2):
        ch = channel_at(l2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a trial ridge too small: see _self_consistent
            fp = gcm.solve(ch)
        if not fp.converged[0]:
            return math.nan
        tau, w = proximal_curvatures(ch, fp, kd_on)
        return equal_dof_l2(t, 1.0 / alpha, tau[0], w[0])

    return _self_consistent(map_of, t)


def _kd_channel(p_g, p_a, p_b, fp_t, v_t, alpha, l2, shared_channels, dim_a, ce, k, temperature):
    """The GCM channel of :func:`mfh_sim.theory.gcm.kd_erm` for one KD student (same construction)."""
    from mfh_sim.theory import gcm

    one = np.ones(1)
    m_t, q_t = float(fp_t.m[0, 0]), float(fp_t.q[0])
    c_t, nu_s = gcm.teacher_projection(m_t * one, q_t * one, (p_g + p_a) * one, p_g * one,
                                       shared_channels * one, dim_a * one)
    omega = np.empty((1, 2, 2))
    omega[:, 0, 0] = max(p_g + p_b, 1e-12)
    omega[:, 0, 1] = omega[:, 1, 0] = c_t * p_g
    omega[:, 1, 1] = c_t**2 * p_g + nu_s
    v = v_t * one
    return gcm.Channel(alpha * one, l2 * one, omega, m_t * one, max(q_t, 1e-12) * one, ce * one, k * one,
                       temperature * one, v, v * shared_channels / dim_a)


def kd_l2(p_g, p_a, p_b, *, l2_teacher, alpha_teacher, alpha, shared_channels, dim_a, ce, k, temperature,
          same_sample, t, curvature: str = "solution") -> float:
    """Equal-dof ridge of the KD student (loss a CE + k T^2 KL) trained by GD for a time t.

    The teacher is the ridge fixed point at (rho_T = p_G + p_A, alpha_teacher, l2_teacher).
    'init': tau = (a + k)/4; 'solution': the student's proximal curvatures at its own fixed point.
    """
    from mfh_sim.theory import gcm

    if curvature == "init":
        return equal_dof_l2(t, 1.0 / alpha, 0.25 * (ce + k))
    if curvature != "solution":
        raise ValueError(f"curvature={curvature!r} is not allowed: use 'init' or 'solution'")
    fp_t = gcm.solve(_logistic_channel(p_g + p_a, alpha_teacher, l2_teacher))
    v_t = float(fp_t.V[0]) if same_sample else 0.0

    return _self_consistent_ridge(
        lambda l2: _kd_channel(p_g, p_a, p_b, fp_t, v_t, alpha, l2, shared_channels, dim_a, ce, k, temperature),
        True, t, alpha)


def gd_ridges(config, curvature: str = "solution") -> dict[str, float]:
    """Per-model effective ridges of the paper's GD for ``config`` (keys teacher, no_kd, kd).

    t = margin learning rate (2 x learning_rate, two logits) x steps.  Each model's ridge is
    :func:`logistic_l2` / :func:`kd_l2` at the hyperplane's *mean* shares (E p_X = X / (G + A + B
    + U) for both hyperplanes), one ridge per model for all hyperplane nodes: the theory's Problem
    carries one ridge per model.  The KD student's teacher is the ridge fixed point at the
    teacher's own effective ridge.
    """
    from mfh_sim.theory.api import _check_config

    config = _check_config(config)
    if getattr(config, "optimizer", "sgd") != "sgd":
        raise ValueError(f"optimizer={config.optimizer!r} is not allowed: the GD map is for optimizer='sgd'")
    t = 2.0 * config.learning_rate * config.steps
    v = config.venn
    total = float(v.shared + v.a_only + v.b_only + v.unseen)
    p_g, p_a, p_b = v.shared / total, v.a_only / total, v.b_only / total
    n = float(config.n_train)
    l2_t = logistic_l2(p_g + p_a, n / v.dim_a, t, curvature)
    l2_s = logistic_l2(p_g + p_b, n / v.dim_b, t, curvature)
    k = config.kd_weight / (2.0 if config.kd_reduction == "paper" else 1.0)
    l2_kd = kd_l2(p_g, p_a, p_b, l2_teacher=l2_t, alpha_teacher=n / v.dim_a, alpha=n / v.dim_b,
                  shared_channels=float(v.shared + v.shared_nondecisive), dim_a=float(v.dim_a),
                  ce=config.ce_weight, k=k, temperature=config.temperature,
                  same_sample=not config.fresh_student_sample, t=t, curvature=curvature)
    return {"teacher": l2_t, "no_kd": l2_s, "kd": l2_kd}


def predict_gd(config, curvature: str = "solution") -> dict[str, float]:
    """Finite-sample accuracies of the paper's GD with the per-model ridges of :func:`gd_ridges`.

    Two evaluations of :func:`mfh_sim.theory.highdim.finite_accuracies` (whose Problem has one
    student ridge): (teacher, no-KD student) at their ridges, then the KD student at its own with
    the teacher at the teacher's.  Keys teacher_acc, no_kd_acc, kd_acc, delta (fractions) and the
    three ridges l2_teacher, l2_no_kd, l2_kd.
    """
    from mfh_sim.theory.api import blocks_of, problem_of
    from mfh_sim.theory.highdim import finite_accuracies

    ridges = gd_ridges(config, curvature)
    base = problem_of(config)
    blocks = blocks_of(config)
    plain = finite_accuracies(blocks, config.hyperplane,
                              base._replace(l2_teacher=ridges["teacher"], l2_student=ridges["no_kd"]))
    kd = finite_accuracies(blocks, config.hyperplane,
                           base._replace(l2_teacher=ridges["teacher"], l2_student=ridges["kd"]))
    out = {"teacher_acc": plain["teacher_acc"], "no_kd_acc": plain["no_kd_acc"], "kd_acc": kd["kd_acc"]}
    out["delta"] = out["kd_acc"] - out["no_kd_acc"]
    out.update(l2_teacher=ridges["teacher"], l2_no_kd=ridges["no_kd"], l2_kd=ridges["kd"])
    return out
