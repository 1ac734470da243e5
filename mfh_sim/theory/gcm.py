"""Exact high-dimensional theory of ridge-regularised linear ERM on the simulator's data.

Replica / Gaussian-covariate-model (GCM) fixed point (Aubin, Maillard, Barbier, Krzakala, Macris,
Zdeborova, NeurIPS 2020; Loureiro, Gerbelot, Cui, Goldt, Krzakala, Mezard, Zdeborova, NeurIPS
2021), written in the simulator's *natural units* (derivation: ``docs/theory.md``).

Setting.  Inputs x in R^d with i.i.d. N(0, 1) entries; the margin is h = theta . x (no intercept:
by symmetry it vanishes in the limit).  The estimator minimises

    (1/n) sum_i loss(y_i, theta . x_i, t_i)  +  (l2 / 2) ||theta||^2                    (ERM)

(mean over the n samples, ridge on the weights only).  The per-sample loss is

    loss(y, h, t) = a * log(1 + exp(-y h))  +  k T^2 KL(sigma(t/T) || sigma(h/T))  +  c (h - t)^2,

the two-class margin form of ce_weight * CE + kd_weight * T^2 * KL (k = kd_weight / 2 for the
'paper' reduction, kd_weight for 'batchmean'; c = 0) or of ce_weight * CE + kd_weight * logit-MSE
(c = kd_weight / 4, k = 0; docs/theory.md 4.4b); y in {-1, +1}, t the teacher's margin.

Label model.  L = w . z with ||w|| = 1 (so Var L = 1), y = sign(L).  The model's inputs see the
directions u_1, ..., u_K in R^d (Gram matrix Omega = U^T U, O(1) entries); u_1 is the visible
part of w (Omega_11 = rho, the visible share of ||w||^2), u_2 (KD only) the part of the teacher's
weights that falls on channels the model shares with the teacher.  Everything else in L and t is
independent of x (probit-like noise).  The channel sees the pair (L, T) (T = t, KD only) with
covariance ``S`` = [[1, Cov(L, t)], [Cov(L, t), Var t]] and Cov(h, (L, T)) = m = U^T theta.

Order parameters (n, d -> infinity, alpha = n / d fixed; lam' = alpha * l2):

    prior:    V = 1 / (lam' + Vh),  m = V Omega mh,  q = V^2 (mh^T Omega mh + qh)
    channel:  omega ~ N(0, q);  (L, T) | omega ~ N(m omega / q, C),  C = S - m m^T / q;
              h* = prox_{V loss(y, ., t)}(omega),  f = (h* - omega) / V = -loss'(h*)
              Vh = alpha E[loss''(h*) / (1 + V loss''(h*))]
              qh = alpha E[f^2]
              mh = alpha C^{-1} E[((L, T) - m omega / q) f]

m = U^T theta are the overlaps of the weights with the directions, q = ||theta||^2 and V the
linear response.  The test accuracy is 1 - arccos(m_1 / sqrt(q)) / pi (Sheppard: corr(h, L) =
m_1 / sqrt(q), the label latent having unit variance).  The expectation over (omega, T) is a
Gauss-Hermite product rule; the label is integrated in closed form given (omega, T).
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from scipy.special import expit

from mfh_sim.memory import kept_memory
from mfh_sim.theory.channel import Channel, conjugates, gaussian_conditionals

SQRT2PI = math.sqrt(2.0 * math.pi)
#: Gauss-Hermite nodes for the cavity field omega and for the teacher's logit given omega.
OMEGA_NODES = 12
LOGIT_NODES = 6
#: Gauss-Legendre nodes for the label latent on each half-line.
LABEL_NODES = 16


@functools.cache
def _gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    x, w = x, w / w.sum()
    x.flags.writeable = w.flags.writeable = False
    return x, w


class FixedPoint(NamedTuple):
    """Solution of the fixed point, one entry per problem. ``accuracy`` is a fraction in [0, 1]."""

    m: np.ndarray  # (P, K)
    q: np.ndarray  # (P,)
    V: np.ndarray  # (P,)
    mh: np.ndarray  # (P, K)
    qh: np.ndarray
    Vh: np.ndarray
    qh_st: np.ndarray  # same-sample KD: alpha E[f_S f_T] (zeros otherwise)
    accuracy: np.ndarray
    converged: np.ndarray
    vh_st: np.ndarray | None = None  # same-sample KD: the response conjugate Vh_ST (zeros otherwise)


#: |F| below which a point is solved where it stands, and below which one more Newton step solves
#: it: Newton's error after a step is ~ V l3 e^2 / (2 (1 + V l2)) <= V e^2 / 20 (l2, l3 the loss's
#: second and third derivatives, |l3| <= (a + k) / 10; e <= |F|), so a step taken from
#: |F| < ACCEPT_AFTER_STEP lands within ~1e-15 V of the root.
SOLVED = 1e-11
ACCEPT_AFTER_STEP = 1e-7


def _prox(omega, y, t, V, a, k, T, iters: int = 40, start=None, c=None):
    """h* = argmin_h (h - omega)^2 / (2V) + loss(y, h, t), elementwise; returns (h*, loss''(h*)).

    Safeguarded Newton on F(h) = h - omega + V loss'(h), strictly increasing; |loss'| <= a + k T
    gives the initial bracket, and a Newton step leaving the bracket is replaced by bisection.
    ``c`` (None or all zero: no such term) adds the margin MSE c (h - t)^2: loss' gains 2c (h - t)
    and loss'' gains 2c, and since the rest of loss' lies in [-(a + k T), a + k T], the root lies
    within V (a + k T) / (1 + 2 c V) of (omega + 2 c V t) / (1 + 2 c V), the initial bracket then.
    A point stops where it stands once |F| < SOLVED, or after the Newton step taken from
    |F| < ACCEPT_AFTER_STEP (quadratic convergence: that step lands far below SOLVED, and
    checking it would cost a full step); loss'' is then evaluated at the accepted points once.

    Cost: the per-problem arguments (V, a, k, T of shape (P, 1, 1, 1)) broadcast rather than being
    copied to every point, and the working set is gathered (to the points still unsolved) only
    once a quarter of it is done: with a good start most points finish in the first step, and
    gathering a dozen arrays each step cost more than the arithmetic it saved.
    """
    shape = np.broadcast_shapes(np.shape(omega), np.shape(t), np.shape(V), np.shape(a),
                                np.shape(k), np.shape(T), np.shape(start) if start is not None else ())
    as_f64 = lambda v: np.asarray(v, dtype=np.float64)
    omega = np.broadcast_to(as_f64(omega), shape)
    t, V, a, k, T = (as_f64(v) for v in (t, V, a, k, T))
    mse_on = c is not None and bool(np.any(as_f64(c) != 0))
    kd_on = bool(np.any(k != 0))
    if not mse_on:
        span = V * (a + k * T) + 1e-12
        lo, hi = omega - span, omega + span
        centre = omega
    else:
        c2 = 2.0 * as_f64(c)
        shrink = 1.0 + c2 * V
        centre = np.broadcast_to((omega + c2 * V * t) / shrink, shape)
        span = V * (a + k * T) / shrink + 1e-12
        lo, hi = centre - span, centre + span
    # Warm start (the previous fixed-point iteration's solution) when given and inside the bracket.
    h = centre.copy() if start is None else np.clip(np.broadcast_to(as_f64(start), shape), lo, hi)
    # At T = 1, sigma(h/T) is sigma(y h) up to a reflection and both curvatures are s (1 - s): one
    # logistic per Newton step instead of two.
    unit_t = kd_on and not mse_on and bool(np.all(T == 1.0))
    if mse_on:
        # The MSE term's gradient 2c h - 2c t and curvature 2c, after the KL's columns if any.
        cols = ([-y * a, a, k, T, k * T * expit(t / T)] if kd_on else [-y * a, a]) + [c2, c2 * t]
    elif not kd_on:
        cols = [-y * a, a]
    elif unit_t:
        cols = [-y * a, a + k, k, k * expit(t)]
    else:
        cols = [-y * a, a, k, T, k * T * expit(t / T)]

    def derivatives(h, cols, need_g=True):
        s = expit(-y * h)
        curv = s * (1.0 - s)
        if mse_on:
            c2_i, target_c = cols[-2], cols[-1]
            g = cols[0] * s + c2_i * h - target_c if need_g else None
            gp = cols[1] * curv + c2_i
            if kd_on:
                k_i, T_i = cols[2], cols[3]
                sh = expit(h / T_i)
                g = g + k_i * T_i * sh - cols[4] if need_g else None
                gp = gp + k_i * sh * (1.0 - sh)
            return g, gp
        if not kd_on:
            return (cols[0] * s if need_g else None), cols[1] * curv
        if unit_t:
            g = cols[0] * s + cols[2] * (1.0 - s if y > 0 else s) - cols[3] if need_g else None
            return g, cols[1] * curv
        _, a_i, k_i, T_i, target_i = cols
        sh = expit(h / T_i)
        g = cols[0] * s + k_i * T_i * sh - target_i if need_g else None
        return g, a_i * curv + k_i * sh * (1.0 - sh)

    cols_all = cols
    gp_out = np.empty(shape)
    stepped = np.zeros(shape, bool)  # accepted after a step: loss'' still to evaluate there
    h_flat, gp_flat, stepped_flat = h.reshape(-1), gp_out.reshape(-1), stepped.reshape(-1)
    idx = None  # flat positions of the working set (None: every point, in ``shape``)
    hh, ll, uu, om, vv = h, lo, hi, omega, V
    held = held_stepped = None  # points done but still in the working set (... after a step)
    for _ in range(iters):
        g, gp = derivatives(hh, cols)
        F = hh - om + vv * g
        absF = np.abs(F)
        ll = np.where(F < 0, hh, ll)
        uu = np.where(F > 0, hh, uu)
        step = hh - F / (1.0 + vv * gp)
        # Newton inside the bracket, bisection otherwise (Newton can cycle across the inflection
        # of the logistic).
        inside = (step > ll) & (step < uu) & (np.abs(step - hh) < 0.5 * (uu - ll))
        solved = absF < SOLVED
        close = inside & (absF < ACCEPT_AFTER_STEP) & ~solved
        new = np.where(inside, step, 0.5 * (ll + uu))
        stay = solved if held is None else solved | held
        new = np.where(stay, hh, new)
        if held is not None:
            close &= ~held
            close |= held_stepped
        done = stay | close
        n_done = int(np.count_nonzero(done))
        if 4 * n_done < done.size:
            held = done if n_done else None
            held_stepped = close if n_done else None
            hh = new
            continue
        pos = np.flatnonzero(done) if idx is None else idx[done]
        h_flat[pos] = new[done]
        gp_flat[pos] = np.broadcast_to(gp, done.shape)[done]  # replaced below where stepped
        stepped_flat[pos] = close[done]
        keep = ~done
        if not keep.any():
            idx = np.zeros(0, dtype=np.intp)
            break
        grab = lambda v, keep=keep: np.broadcast_to(v, keep.shape)[keep] if np.ndim(v) else v
        idx = np.flatnonzero(keep) if idx is None else idx[keep]
        hh, ll, uu, om, vv = (grab(v) for v in (new, ll, uu, om, vv))
        cols = [grab(c) for c in cols]
        held = held_stepped = None
    else:
        # Out of steps: the points still unsolved keep their last iterate.
        if idx is None:
            h_flat[:] = np.broadcast_to(hh, shape).reshape(-1)
            gp_flat[:] = np.broadcast_to(derivatives(hh, cols, need_g=False)[1], shape).reshape(-1)
            stepped_flat[:] = False
        elif idx.size:
            h_flat[idx] = hh
            gp_flat[idx] = derivatives(hh, cols, need_g=False)[1]
            stepped_flat[idx] = False
        if held_stepped is not None:
            stepped_flat[idx if idx is not None else slice(None)] = held_stepped.reshape(-1)
    if stepped.any():
        sub = [np.broadcast_to(c, shape)[stepped] if np.ndim(c) else c for c in cols_all]
        gp_out[stepped] = derivatives(h[stepped], sub, need_g=False)[1]
    return h, gp_out


@functools.cache
def _half_line_rule(n: int, top: float = 8.5) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[g(|L|) ; L > 0], L ~ N(0, 1): Gauss-Legendre on (0, top)."""
    x, w = np.polynomial.legendre.leggauss(n)
    x = 0.5 * top * (x + 1.0)
    w = 0.5 * top * w * np.exp(-0.5 * x**2) / SQRT2PI
    x.flags.writeable = w.flags.writeable = False
    return x, w


def _channel(ch: Channel, m: np.ndarray, q: np.ndarray, V: np.ndarray, kd_on: bool, cache: dict,
             nodes: tuple[int, int, int] | None = None, vh_st: np.ndarray | None = None,
             resp: np.ndarray | None = None):
    """Conjugates (Vh, qh, mh, qh_ST, Vh_ST) from (m, q, V, Vh_ST) for every problem; mh is (P, K).

    The label latent L is integrated first, on each half-line separately (y = sign L exactly, so
    the integrand is smooth on each), then the teacher's logit T given L (KD only), then the cavity
    field omega given (L, T): all Gaussian conditionals of the covariance
    [[1, s_lt, m_1], [s_lt, s_tt, m_2], [m_1, m_2, q]].  Integrating omega first would leave a step
    of width ~sqrt(1 - m^2/q) in the integrand, which a Gauss-Hermite rule misses once the labels
    are nearly deterministic given the model's view (high accuracy, large n).

    ``nodes`` = (label, logit, omega) rule sizes (default LABEL_NODES, LOGIT_NODES, OMEGA_NODES).
    ``cache`` carries, per rule and label sign, the previous call's proximal points, fields and
    curvatures (leading axis: the problems), from which each call's Newton solves start.

    Same-sample KD: the student's leave-one-out field on a training sample is its Gaussian cavity
    field omega moved by the teacher's fit of that sample, omega - V xi Vh_ST f_T (f_T the
    teacher's residual there, Vh_ST = alpha E[loss_ht / ((1 + V loss'') (1 + V_T CE''_T))] <= 0;
    section 4.5 of docs/theory.md); the prox and f are taken at the moved field, the Gaussian
    projections (Stein) at omega.  ``resp`` (default V) replaces V in that shift for anisotropic
    inputs (the trace tau(R) of the prior's resolvent, docs/theory.md 4.12).

    Label noise (``ch.label_noise`` = eps > 0): the observed label is the true one with probability
    1 - eps and the other with probability eps; the loss (and the teacher's in-sample fit) uses
    the observed label, the Gaussian projections the true latent L.
    """
    if ch.n_classes is not None:
        # The symmetric C-class channel (a Channel built with n_classes = 2 takes it too: a check
        # of it against the two-class quadrature).
        from mfh_sim.theory.multiclass import channel as multiclass_channel

        return multiclass_channel(ch, m, q, V, kd_on, cache, nodes, vh_st, resp)
    n_label, n_logit, n_omega = nodes if nodes is not None else (LABEL_NODES, LOGIT_NODES, OMEGA_NODES)
    xl, wl = _half_line_rule(n_label)
    xo, wo = _gauss_hermite(n_omega)
    xt, wt = _gauss_hermite(n_logit) if kd_on else (np.zeros(1), np.ones(1))
    P = q.shape[0]
    q, m1, m2, s_lt, v_t, b_l, b_t, sig2, c_ll, c_lt, c_tt = gaussian_conditionals(ch, m, q, kd_on)
    ex = lambda v: v[:, None, None, None]
    weight = (wl[:, None, None] * wt[None, :, None] * wo[None, None, :]).ravel()
    Vb, a, k, T = ex(V), ex(ch.ce), ex(ch.kd), ex(ch.temperature)
    c = ex(ch.mse) if ch.mse is not None and bool(np.any(ch.mse != 0)) else None
    same = kd_on and ch.v_t is not None and bool(np.any(ch.v_t > 0))
    # Weighted sums over the rule, row by row (a BLAS matrix-vector product would round a row by
    # its position in the batch).
    wsum = lambda v: (v.reshape(P, -1) * weight).sum(axis=1)
    vh = np.zeros(P)
    qh = np.zeros(P)
    qh_st = np.zeros(P)
    vh_st_new = np.zeros(P)
    e_l = np.zeros(P)  # E[(L - m_1 omega / q) f]
    e_t = np.zeros(P)  # E[(T - m_2 omega / q) f]
    rule = (n_label, n_logit, n_omega)
    noisy = ch.label_noise is not None and bool(np.any(ch.label_noise > 0))
    if noisy:
        eps = ch.label_noise
        branches = ((1.0, 1.0, 1.0 - eps), (1.0, -1.0, eps), (-1.0, -1.0, 1.0 - eps), (-1.0, 1.0, eps))
    else:
        branches = ((1.0, 1.0, None), (-1.0, -1.0, None))
    share_sum = (lambda v, share: wsum(v)) if not noisy else (lambda v, share: wsum(v) * share)
    for y_true, y, share in branches:
        L = y_true * xl[None, :, None, None]
        t = ex(s_lt) * L + ex(np.sqrt(v_t)) * xt[None, None, :, None]
        omega = ex(b_l) * L + ex(b_t) * t + ex(np.sqrt(sig2)) * xo[None, None, None, :]
        if same:
            # The teacher's in-sample logit: its cavity field moved by its own fit (V_T > 0).  It
            # depends on the teacher only, so it is solved once per problem.
            if ("t", y_true, y, rule) not in cache:
                vt = ex(ch.v_t)
                cache[("t", y_true, y, rule)], _ = _prox(t, y, t, vt, np.ones_like(vt), np.zeros_like(vt),
                                                         np.ones_like(vt), iters=60)
            t_in = cache[("t", y_true, y, rule)]
            f_t = (t_in - t) / ex(ch.v_t)
            if ("ht", y_true, y, rule) not in cache:
                # The teacher-only part of the response's weight, also solved once per problem:
                # loss_ht = d^2 loss / dh dt of the KD term (KL: -k sigma'(t/T); MSE: -2c) over
                # 1 + V_T CE''_T at the teacher's in-sample logit.
                s_t = expit(t_in / T)
                loss_ht = -k * s_t * (1.0 - s_t) - (2.0 * c if c is not None else 0.0)
                s_y = expit(-y * t_in)
                cache[("ht", y_true, y, rule)] = loss_ht / (1.0 + ex(ch.v_t) * s_y * (1.0 - s_y))
            # The student's field answers the teacher's fit of this very sample: the teacher's
            # logits on the other samples moved with it (by V_T f_T x^a_i . x^a_j / (1 + V_T CE''_j)
            # each), and the student followed them through the shared channels.
            coef = Vb if resp is None else ex(resp)
            field = omega - coef * ex(ch.xi * vh_st) * f_t if vh_st is not None else omega
        else:
            t_in = t
            field = omega
        key = ("s", y_true, y, rule)
        if key + ("h",) in cache:
            # First-order predictor from the previous call's solution (h_0, omega_0, V_0, f_0,
            # loss''_0): F(h) = h - omega + V loss'(h) = 0 moves by dh (1 + V loss'') = d omega + f dV
            # (f = -loss'), so Newton starts an order of the change closer and usually accepts its
            # first step.
            h0, om0, v0, f0, gp0 = (cache[key + (part,)] for part in ("h", "omega", "V", "f", "gp"))
            start = h0 + (field - om0 + f0 * (Vb - v0)) / (1.0 + Vb * gp0)
            h, gp = _prox(field, y, t_in, Vb, a, k, T, start=start, c=c)
        else:
            h, gp = _prox(field, y, t_in, Vb, a, k, T, iters=40, c=c)
        f = (h - field) / Vb
        for part, value in (("h", h), ("omega", field), ("V", Vb), ("f", f), ("gp", gp)):
            cache[key + (part,)] = value
        vh += share_sum(gp / (1.0 + Vb * gp), share)
        qh += share_sum(f * f, share)
        e_l += share_sum((L - ex(m1 / q) * omega) * f, share)
        if kd_on:
            e_t += share_sum((t - ex(m2 / q) * omega) * f, share)
        if same:
            qh_st += share_sum(f * f_t, share)
            vh_st_new += share_sum(cache[("ht", y_true, y, rule)] / (1.0 + Vb * gp), share)
    return conjugates(ch.alpha, kd_on, vh, qh, e_l, e_t, qh_st, vh_st_new, c_ll, c_lt, c_tt)


#: Anderson mixing of the outer iteration: memory (past residuals) and Tikhonov weight of its
#: least-squares problem (relative to the residuals' scale).
ANDERSON_MEMORY = 5
ANDERSON_REG = 1e-10
#: A problem whose q = ||theta||^2 or V exceeds this is declared divergent (NaN, with the warning).
DIVERGED = 1e12


def _anderson_step(x, g, dx_hist, df_hist, damping):
    """Anderson (type II) update for every problem: x, g (P, D) the iterate and its image.

    dx_hist, df_hist (P, D, M): differences of past iterates and of past residuals f = g - x.
    Falls back to the damped step where the mixing is not finite.
    """
    f = g - x
    beta = 1.0 - damping
    plain = x + beta * f
    if dx_hist.shape[-1] == 0:
        return plain
    gram = np.einsum("pdi,pdj->pij", df_hist, df_hist)
    scale = np.einsum("pii->p", gram)[:, None, None] / gram.shape[-1] + 1e-300
    gram = gram + ANDERSON_REG * scale * np.eye(gram.shape[-1])
    rhs = np.einsum("pdi,pd->pi", df_hist, f)
    with np.errstate(all="ignore"):
        gamma = np.linalg.solve(gram, rhs[..., None])[..., 0]
        step = plain - np.einsum("pdi,pi->pd", dx_hist + beta * df_hist, gamma)
    ok = np.isfinite(step).all(axis=1)
    return np.where(ok[:, None], step, plain)


#: Rule sizes (label, logit, omega) of the coarse first phase of :func:`solve`, and the relative
#: change at which it hands over to the full rule.  The coarse fixed point is within ~1e-3 of the
#: full one, so the full rule starts next to its fixed point and needs a few iterations instead of
#: a dozen; the answer is the full rule's fixed point either way (to ``tol``).
COARSE_NODES = (8, 4, 6)
COARSE_TOL = 1e-3


def _initial_conjugates(P: int, K: int) -> np.ndarray:
    """(Vh, qh, mh_1..mh_K, qh_ST, Vh_ST) to start from, one row a problem."""
    x = np.empty((P, K + 4))
    x[:, 0] = 1.0
    x[:, 1] = 1.0
    x[:, 2:2 + K] = 0.5
    x[:, 2 + K:] = 0.0
    return x


def solve(
    ch: Channel,
    *,
    tol: float = 1e-6,
    max_iter: int = 3000,
    damping: float = 0.2,
    label: str | list = "",
    anderson: int = ANDERSON_MEMORY,
    coarse: tuple[int, int, int] | bool | None = True,
) -> FixedPoint:
    """Iterate prior and channel equations to the fixed point for a batch of problems.

    Problems that do not converge within ``max_iter`` (for example the unregularised MLE where the
    data are separable: ||theta|| grows without bound) get NaN accuracy and one warning naming
    ``label`` (a string for the batch, or one string per problem: the warning names the failing
    problems' labels).  Anderson-mixed iteration (memory ``anderson``; 0: the plain damped
    iteration, weight ``damping`` on the old conjugates) on the conjugates (Vh, qh, mh, qh_ST, Vh_ST);
    convergence when the relative change of (m, q, V) between two iterations is below ``tol``
    for every problem.  Each problem's iteration is independent of the others in the batch, to
    the last bit: problems are iterated in batches of one kind (:func:`_kinds`) of about
    :data:`SOLVE_POINTS` rule points (C-class ones one thread a core), and every value is the same however a
    call groups its problems (tests/test_theory_gcm.py).

    ``coarse`` (label, logit, omega rule sizes; True: COARSE_NODES, read at call time; False or
    None: off): iterate first with that cheaper rule to a relative change of COARSE_TOL and start
    the full rule from there, with the coarse Anderson secants (a speed-up only: the result is the
    full rule's fixed point, to ``tol``; measured within 2e-8 of the single-phase solve's
    accuracies).
    """
    if coarse is True:
        coarse = COARSE_NODES
    if coarse is False:
        coarse = None
    P = ch.alpha.shape[0]
    K = ch.omega.shape[-1]
    x, m, q, V = np.empty((P, K + 4)), np.empty((P, K)), np.empty(P), np.empty(P)
    done = np.zeros(P, bool)
    # Problems are iterated in batches of one kind (the channel takes its branches for a whole
    # batch) and small enough for the rule's working arrays to stay in cache: a problem's values
    # then depend on that problem alone, not on what else was asked in the same call.
    size = max(1, SOLVE_POINTS // _rule_points(ch))
    kinds = np.unique(_kinds(ch), axis=0, return_inverse=True)[1].ravel()
    # The C-class channel's arrays are large enough for numpy's loops (which release the
    # interpreter) to dominate: one thread a core, at least one batch each.  The two-class
    # channel's are not (measured: two threads took 1.5x the CPU time for the same wall time).
    threads = min(cores(), P) if ch.n_classes is not None else 1
    batches = []
    for kind in np.unique(kinds):
        members = np.flatnonzero(kinds == kind)
        step = size if members.size <= size else min(size, -(-members.size // threads))
        batches += [members[start:start + step] for start in range(0, members.size, step)]
    solve_rows = lambda rows: _solve_batch(Channel(*(None if f is None else f[rows] for f in ch)), tol, max_iter,
                                           damping, anderson, coarse)
    # The iteration frees and re-creates its temporaries thousands of times a second: the
    # allocator keeps that memory meanwhile rather than faulting it in afresh (mfh_sim/memory.py).
    with kept_memory():
        if len(batches) > 1 and threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                # Each batch under the caller's context (numpy's error state lives there).
                solved = list(pool.map(lambda rows: contextvars.copy_context().run(solve_rows, rows), batches))
        else:
            solved = [solve_rows(rows) for rows in batches]
    for rows, (x_, m_, q_, v_, done_) in zip(batches, solved):
        x[rows], m[rows], q[rows], V[rows], done[rows] = x_, m_, q_, v_, done_
    vh, qh, mh, qh_st, vh_st = x[:, 0], x[:, 1], x[:, 2:2 + K], x[:, 2 + K], x[:, 3 + K]
    if ch.n_classes is not None and int(ch.n_classes[0]) > 2:
        from mfh_sim.theory.multiclass import accuracy as multiclass_accuracy

        with np.errstate(invalid="ignore"):
            acc = multiclass_accuracy(m[:, 0] / np.sqrt(np.maximum(q, 1e-300)), int(ch.n_classes[0]))
    else:
        acc = 1.0 - np.arccos(np.clip(m[:, 0] / np.sqrt(np.maximum(q, 1e-300)), -1, 1)) / math.pi
    ok = done & np.isfinite(acc)
    if not ok.all():
        if isinstance(label, str):
            names = label
        else:
            names = "; ".join(dict.fromkeys(str(label[i]) for i in np.flatnonzero(~ok)))
        warnings.warn(
            f"GCM fixed point did not converge for {int((~ok).sum())} of {P} problems ({names}): "
            "NaN returned (separable data without ridge, or an extreme setting)",
            RuntimeWarning,
            stacklevel=2,
        )
    acc = np.where(ok, acc, np.nan)
    return FixedPoint(m, q, V, mh, qh, vh, qh_st, acc, ok, vh_st)


#: Rule points (times classes) per batch of :func:`solve`'s iteration: the batches' working arrays
#: then stay in the cores' caches.  Measured on the head-to-head family's theory (benchmarks/RESULTS.md).
SOLVE_POINTS = 1 << 17


def cores() -> int:
    """CPU cores this process may run on (the C-class theory's threads)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return os.cpu_count() or 1


def _kinds(ch: Channel) -> np.ndarray:
    """(P, 5) booleans a problem: the switches a batch's channel and prox take for all of it (KL
    term, MSE term, same-sample response, label noise, unit temperature)."""
    P = ch.alpha.shape[0]
    flag = lambda v: np.zeros(P, bool) if v is None else np.asarray(v) != 0
    return np.stack([ch.kd != 0, flag(ch.mse), flag(ch.v_t), flag(ch.label_noise), ch.temperature == 1.0], axis=1)


def _rule_points(ch: Channel) -> int:
    """Quadrature points (times classes) one problem of ``ch`` carries through the channel."""
    if ch.n_classes is not None:
        from mfh_sim.theory.multiclass import points_for

        return points_for(int(ch.n_classes[0])) * int(ch.n_classes[0])
    kd_on = bool(np.any(ch.kd > 0)) or (ch.mse is not None and bool(np.any(ch.mse > 0)))
    return 2 * LABEL_NODES * OMEGA_NODES * (LOGIT_NODES if kd_on else 1)


def _solve_batch(ch: Channel, tol: float, max_iter: int, damping: float, anderson: int, coarse):
    """:func:`solve`'s two phases for one batch of problems: (x, m, q, V, converged)."""
    P = ch.alpha.shape[0]
    K = ch.omega.shape[-1]
    x0 = _initial_conjugates(P, K)
    if coarse is not None:
        with np.errstate(all="ignore"):
            xc, _, qc, vc, done_c, (hx, hf) = _iterate(ch, x0.copy(), tuple(coarse), COARSE_TOL, max_iter,
                                                       damping, anderson)
        # A problem the coarse rule did not settle (diverging: separable data without ridge) starts
        # the full rule from scratch, so it runs off to DIVERGED and is reported as before.
        usable = (done_c & (qc < 1e6) & (vc < 1e6) & np.isfinite(xc).all(axis=1) & (xc[:, 0] > 0) & (xc[:, 1] >= 0)
                  & np.isfinite(hx).all(axis=(1, 2)) & np.isfinite(hf).all(axis=(1, 2)))
        x0[usable] = xc[usable]
        # The coarse map's secant pairs approximate the full map's Jacobian: the full rule's
        # Anderson steps start from them instead of from a damped plain step.
        history = (np.where(usable[:, None, None], hx, 0.0), np.where(usable[:, None, None], hf, 0.0))
    else:
        history = None
    x, m, q, V, done, _ = _iterate(ch, x0, None, tol, max_iter, damping, anderson, history)
    return x, m, q, V, done


def _iterate(ch: Channel, x: np.ndarray, nodes, tol: float, max_iter: int, damping: float, anderson: int,
             history=None):
    """The fixed-point iteration of :func:`solve` from conjugates ``x`` (P, K + 4), in place.

    ``history``: initial Anderson secant pairs (dx, df), each (P, K + 4, anderson), zero columns
    where there are none (the regularised least squares gives them zero weight).  Returns
    (x, m, q, V, done, history): the final conjugates, order parameters, the converged mask and
    every problem's secant pairs when it stopped.
    """
    # Either distillation term makes the teacher's logit a second direction of the problem.
    kd_on = bool(np.any(ch.kd > 0)) or (ch.mse is not None and bool(np.any(ch.mse > 0)))
    P = ch.alpha.shape[0]
    K = ch.omega.shape[-1]
    lam = ch.alpha * ch.l2
    D = K + 4
    xi = ch.xi if ch.xi is not None else np.zeros(P)
    prev = np.full((P, K + 2), np.nan)
    done = np.zeros(P, bool)
    caches: dict = {}
    active = np.arange(P)
    m = np.zeros((P, K))
    q = np.zeros(P)
    V = np.zeros(P)
    resp = np.zeros(P)
    memory = max(int(anderson), 0)
    if history is None or memory == 0:
        dx_hist = np.zeros((P, D, 0))
        df_hist = np.zeros((P, D, 0))
    else:
        dx_hist, df_hist = (h[..., -memory:].copy() for h in history)
    out_dx = np.zeros((P, D, memory))
    out_df = np.zeros((P, D, memory))

    def keep_history(leaving):
        # Right-aligned, zero-padded: the layout ``history`` takes.
        width = dx_hist.shape[-1]
        if width and leaving.size:
            rows = active[leaving]
            out_dx[rows, :, memory - width:] = dx_hist[leaving]
            out_df[rows, :, memory - width:] = df_hist[leaving]

    last_x = last_f = None  # previous iterate and residual of the active problems

    spectral = ch.spec_lam is not None

    def prior(xa, sub_omega, sub_lam, sub_xi, sub_spec=None):
        vh, qh, mh, qh_st = xa[:, 0], xa[:, 1], xa[:, 2:2 + K], xa[:, 2 + K]
        om = np.einsum("pij,pj->pi", sub_omega, mh)
        if sub_spec is None:
            V_ = 1.0 / (sub_lam + vh)
            tau_r, tau_rr, noise = V_, V_**2, V_**2
        else:
            # Anisotropic inputs: the resolvent R = (lam' + Vh Omega)^-1 in the spectral atoms.
            lam_a, w_a, s_a = sub_spec
            r = 1.0 / (sub_lam[:, None] + vh[:, None] * lam_a)
            V_ = np.sum(w_a * lam_a * r, axis=1)
            noise = np.sum(w_a * (lam_a * r) ** 2, axis=1)
            tau_r = np.sum(s_a * r, axis=1)
            tau_rr = np.sum(s_a * lam_a * r**2, axis=1)
        m_ = tau_r[:, None] * om
        if sub_spec is None:
            q_ = V_**2 * (np.einsum("pi,pi->p", mh, om) + qh)
        else:
            q_ = tau_rr * np.einsum("pi,pi->p", mh, om) + noise * qh
        if K == 2:
            # Same sample: the student's noise is correlated with the teacher's on shared channels.
            m_[:, 1] += tau_r * sub_xi * qh_st
            q_ += tau_rr * 2.0 * mh[:, 1] * sub_xi * qh_st
        return m_, q_, V_, tau_r

    for _ in range(max_iter):
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging problem goes non-finite
            ma, qa, Va, ra = prior(x[active], ch.omega[active], lam[active], xi[active],
                                   (ch.spec_lam[active], ch.spec_w[active], ch.spec_s[active]) if spectral else None)
        m[active], q[active], V[active], resp[active] = ma, qa, Va, ra
        state = np.concatenate([m, q[:, None], V[:, None]], axis=1)
        with np.errstate(invalid="ignore"):
            rel = np.max(np.abs(state - prev) / (np.abs(state) + 1e-10), axis=1)
        done = rel < tol
        prev = state
        # Iterate only the problems still moving (and finite): one slow problem must not make
        # the whole batch pay for its iterations.
        # q = ||theta||^2 or the response V past DIVERGED (natural units: O(1) at the fixed
        # points met in practice, V <= 1 / (alpha l2) with a ridge) means the estimator runs off
        # to infinity (separable data without ridge): stop there, NaN.
        still = ~done & np.isfinite(state).all(axis=1) & (q < DIVERGED) & (V < DIVERGED)
        if not still.any():
            keep_history(np.arange(active.size))
            break
        if not np.array_equal(np.flatnonzero(still), active):
            keep = np.flatnonzero(still)
            pos = np.searchsorted(active, keep)
            keep_history(np.setdiff1d(np.arange(active.size), pos))
            caches = {key: value[pos] for key, value in caches.items()}
            dx_hist, df_hist = dx_hist[pos], df_hist[pos]
            last_x = None if last_x is None else last_x[pos]
            last_f = None if last_f is None else last_f[pos]
            active = keep
        sub = Channel(*(None if f is None else f[active] for f in ch))
        new_vh, new_qh, new_mh, new_qh_st, new_vh_st = _channel(sub, m[active], q[active], V[active], kd_on,
                                                                caches, nodes, x[active, 3 + K],
                                                                resp[active] if spectral else None)
        if new_mh.shape[1] < K:
            # No KD term (k = 0) in a two-direction problem: the loss ignores the teacher, so the
            # teacher direction's conjugate is 0 (the student is the plain logistic one).
            new_mh = np.concatenate([new_mh, np.zeros((new_mh.shape[0], K - new_mh.shape[1]))], axis=1)
        g = np.concatenate([new_vh[:, None], new_qh[:, None], new_mh, new_qh_st[:, None], new_vh_st[:, None]],
                           axis=1)
        xa = x[active]
        fa = g - xa
        if memory and last_x is not None:
            dx_hist = np.concatenate([dx_hist, (xa - last_x)[..., None]], axis=2)[..., -memory:]
            df_hist = np.concatenate([df_hist, (fa - last_f)[..., None]], axis=2)[..., -memory:]
        last_x, last_f = xa, fa
        new_x = _anderson_step(xa, g, dx_hist, df_hist, damping)
        # The conjugates Vh, qh must stay positive: where the mixing leaves that cone, restart
        # the problem's history from the damped step.
        bad = ~((new_x[:, 0] > 0) & (new_x[:, 1] >= 0) & np.isfinite(new_x).all(axis=1))
        if bad.any():
            new_x[bad] = xa[bad] + (1.0 - damping) * fa[bad]
            dx_hist[bad] = 0.0
            df_hist[bad] = 0.0
        x[active] = new_x
    else:
        keep_history(np.arange(active.size))
    return x, m, q, V, done, (out_dx, out_df)


def _extras(P: int, label_noise, n_classes, spectrum) -> dict:
    """The optional Channel fields (label noise, classes, spectral atoms) broadcast to P problems."""
    extra: dict = {}
    if label_noise is not None:
        eps = np.broadcast_to(np.asarray(label_noise, dtype=np.float64), (P,)).copy()
        if np.any(eps > 0):
            extra["label_noise"] = eps
    if n_classes is not None and int(np.max(n_classes)) > 2:
        extra["n_classes"] = np.full(P, int(np.max(n_classes)))
    if spectrum is not None:
        lam, w, s_ = (np.broadcast_to(np.asarray(v, dtype=np.float64), np.broadcast_shapes(
            np.shape(spectrum[0]), (P, np.shape(spectrum[0])[-1]))).copy() for v in spectrum)
        extra.update(spec_lam=lam, spec_w=w, spec_s=s_)
    return extra


def logistic_erm(rho, alpha, l2, *, label_noise=None, n_classes=None, spectrum=None, **kw) -> FixedPoint:
    """Ridge logistic regression (no KD) seeing the visible share ``rho`` in [0, 1] of ||w||^2.

    Arrays broadcast; ``alpha`` = n / d > 0, ``l2`` >= 0 in the (ERM) normalisation.  Optional:
    ``label_noise`` eps (labels replaced by another class), ``n_classes`` C > 2 (the symmetric
    softmax channel of :mod:`mfh_sim.theory.multiclass`; then ``l2`` is the ridge per sum-zero logit
    direction, (l2/2) ||Theta||^2), ``spectrum`` (lam, w, s) atoms of anisotropic inputs, each
    (P, A) (:mod:`mfh_sim.theory.mixing`).
    """
    rho, alpha, l2 = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (rho, alpha, l2))
    rho, alpha, l2 = np.broadcast_arrays(rho, alpha, l2)
    rho, alpha, l2 = (v.ravel().copy() for v in (rho, alpha, l2))
    P = rho.size
    ch = Channel(
        alpha=alpha, l2=l2, omega=rho[:, None, None].copy(), s_lt=np.zeros(P), s_tt=np.ones(P),
        ce=np.ones(P), kd=np.zeros(P), temperature=np.ones(P), **_extras(P, label_noise, n_classes, spectrum),
    )
    # A student that sees nothing has m = 0 and accuracy 1/2 exactly; keep rho > 0 for the algebra.
    ch = ch._replace(omega=np.maximum(ch.omega, 1e-12))
    return solve(ch, **kw)
def _flat(*values):
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values))
    return [a.ravel().copy() for a in arrays]


def teacher_projection(m_t, q_t, rho_t, p_g, shared_channels, dim_a, directions=1):
    """How a trained teacher's weights look from the student's channels.

    The teacher's weights are c_T w_T + nu with c_T = m_T / rho_T (w_T its visible part of w,
    ||w_T||^2 = rho_T) and nu isotropic in the (dim_a - 1) directions orthogonal to w_T, of squared
    norm q_T - m_T^2 / rho_T.  A share (shared_channels - p_G / rho_T) / (dim_a - 1) of ||nu||^2
    falls on the channels the student also sees (its expectation under that isotropy).  With
    ``directions`` = C - 1 class directions (the symmetric multi-class case, per direction) the
    noise avoids the C - 1 directions of the teacher's class frame:
    (shared_channels - (C - 1) p_G / rho_T) / (dim_a - (C - 1)).

    Returns (c_T, ||nu_S||^2): the coefficient on w_G and the squared norm of the teacher's noise
    on shared channels.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        c_t = np.where(rho_t > 0, m_t / np.where(rho_t > 0, rho_t, 1.0), 0.0)
        noise = np.maximum(q_t - c_t * m_t, 0.0)
        share = np.where(
            dim_a > directions,
            (shared_channels - directions * np.where(rho_t > 0, p_g / np.where(rho_t > 0, rho_t, 1.0), 0.0))
            / np.maximum(dim_a - directions, 1.0),
            0.0,
        )
    return c_t, noise * np.clip(share, 0.0, 1.0)


def kd_erm(
    p_g, p_a, p_b, m_t, q_t, *, alpha, l2, shared_channels, dim_a, ce, kd, temperature,
    v_t=None, mse=None, label_noise=None, n_classes=None, spectrum=None, projection=None, **kw
) -> FixedPoint:
    """KD student trained by ridge ERM on a sample independent of the teacher's training sample.

    Shares p_G, p_A, p_B of ||w||^2 (fractions), the teacher's order parameters (m_T, q_T) from
    :func:`logistic_erm` at rho_T = p_G + p_A, the student's alpha = n / dim_b and l2, the number of
    channels shared with the teacher, the teacher's dim_a, and the loss weights a = ce, k = kd,
    T = temperature.  The teacher's test-time logit t = theta_T . x^a is jointly Gaussian with the
    label latent (Cov = m_T, Var = q_T) and with the student's inputs through two directions:
    u_1 = w_G + w_B (the label) and u_2 = c_T w_G + nu_S (the teacher on shared channels).

    ``v_t`` (the teacher's V_T) switches to the same-sample protocol: the student trains on the
    teacher's own sample, whose logits are t_i = prox_{V_T CE(y_i, .)}(omega_T,i) (cavity
    argument), and the student's noise on shared channels correlates with the teacher's through
    qh_ST = alpha E[f_S f_T] (coefficient xi = V_T shared_channels / dim_a): the two-stage
    replica structure of Takanami, Takahashi & Sakata (arXiv 2501.16226) on two views.

    ``mse`` (None: none) is the weight c of a margin-MSE distillation term c (h - t)^2 in the
    student's per-sample loss (logit-MSE KD: c = kd_weight / 4, with kd = 0; docs/theory.md 4.4b).

    ``label_noise``, ``n_classes``, ``spectrum``: as :func:`logistic_erm`.  ``projection``: the
    teacher's weights seen from the student's channels, (c_T p_G, c_T^2 p_G + ||nu_S||^2, xi) per
    problem, where the isotropic :func:`teacher_projection` does not apply (anisotropic inputs,
    :func:`mfh_sim.theory.mixing.teacher_projection`).
    """
    if v_t is None:
        v_t = 0.0
    with_mse = mse is not None
    p_g, p_a, p_b, m_t, q_t, alpha, l2, g_c, d_a, ce, kd, temperature, v_t, mse = _flat(
        p_g, p_a, p_b, m_t, q_t, alpha, l2, shared_channels, dim_a, ce, kd, temperature, v_t,
        mse if with_mse else 0.0,
    )
    P = p_g.size
    omega = np.empty((P, 2, 2))
    omega[:, 0, 0] = np.maximum(p_g + p_b, 1e-12)
    if projection is None:
        directions = int(np.max(n_classes)) - 1 if n_classes is not None else 1
        c_t, nu_s = teacher_projection(m_t, q_t, p_g + p_a, p_g, g_c, d_a, directions)
        omega[:, 0, 1] = omega[:, 1, 0] = c_t * p_g
        omega[:, 1, 1] = c_t**2 * p_g + nu_s
        xi = v_t * g_c / d_a
    else:
        cross, teacher_sq, xi = (np.broadcast_to(np.asarray(v, dtype=np.float64), (P,)) for v in projection)
        omega[:, 0, 1] = omega[:, 1, 0] = cross
        omega[:, 1, 1] = teacher_sq
        xi = np.where(v_t > 0, xi, 0.0)
    ch = Channel(alpha, l2, omega, m_t, np.maximum(q_t, 1e-12), ce, kd, temperature,
                 v_t, xi, mse if with_mse else None, **_extras(P, label_noise, n_classes, spectrum))
    return solve(ch, **kw)
