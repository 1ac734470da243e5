"""The multi-class channel of the GCM fixed point (n_classes = C > 2), symmetric in the classes.

The generator (:func:`mfh_sim.data.class_directions`) labels a sample by y = argmax_c (u . v_c),
u = Q^T z ~ N(0, I_{C-1}) the decisive latents seen through a random orthonormal frame Q and v_c
the vertices of a regular simplex, which form an orthonormal basis B of the sum-zero subspace of
R^C (``B = simplex_vertices(C)``).  So the label latent is L = B u, a standard Gaussian on the
sum-zero subspace, and y = argmax_c L_c: the argmax of C i.i.d. N(0, 1) variables once a common
shift (irrelevant to an argmax) is added.  A linear model's logits l = W^T x + b enter softmax
only through their sum-zero part g = B^T l in R^{C-1}.

Symmetry.  When the visible Gram of each block is isotropic (Q_S^T Q_S = p_S I; exact when the
blocks are large, see docs/theory.md 4.10), every order parameter of the fixed point is a multiple
of the identity on the sum-zero subspace: overlaps m I, norms q I, responses V I, conjugates
likewise.  The prior equations are then those of two classes, scalar, per direction; only the
channel changes.  In the C-dimensional representation the triples (L_c, t_c, omega_c) of label
latent, teacher logit and cavity field are i.i.d. across classes with the 3 x 3 covariance of the
two-class channel, and

    h* = prox_{V loss(y, ., t)}(omega)  (a C-dimensional prox; the sum mode decouples),
    f = (h* - omega) / V,
    Vh = alpha E[tr((I + V H)^-1 H)] / (C - 1),   qh = alpha E[|f|^2] / (C - 1),
    mh = alpha C^-1 (E[f . (L - m_1 omega / q)], E[f . (t - m_2 omega / q)]) / (C - 1),

H the loss's Hessian in the logits at h*.  The per-sample loss is the simulator's
a CE(y, l) + k T^2 KL(softmax(t / T) || softmax(l / T)) + c |P (l - t)|^2 (P the sum-zero
projector; k = kd_weight / C for the 'paper' reduction, kd_weight for 'batchmean'; logit MSE
c = kd_weight / C with k = 0).  The expectations are quasi-Monte Carlo sums over a fixed
scrambled Halton sample (the same points at every iteration, so the fixed point is a
deterministic function of the config), with the label latent's argmax swapped to class 0: the
classes other than the true one are exchangeable, so label noise (a uniformly drawn other class)
is class 1 with probability eps.

Test accuracy: with corr(h_c, L_c) = r = m_1 / sqrt(q) for i.i.d. pairs,
P(argmax h = argmax L) = C E[Phi_2(a, b; r)^(C - 1)], (a, b) a standard bivariate normal pair with
correlation r (:func:`accuracy`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import ndtr, ndtri, owens_t, softmax

from mfh_sim.theory.channel import conjugates, gaussian_conditionals

#: Quasi-Monte Carlo points of the channel: about POINTS_TIMES_DIRECTIONS / (C - 1) (a power of two
#: in [MIN_POINTS, MAX_POINTS]: each point averages over C - 1 directions, so fewer points carry the
#: same information as C grows), and an eighth of that (at least 256) in the coarse first phase of
#: :func:`mfh_sim.theory.gcm.solve`.  Measured integration error (against 8,192 points, C = 6 and
#: 10): ~0.05 points on the accuracies, ~0.02 on the KD gain.
POINTS_TIMES_DIRECTIONS = 8192
MIN_POINTS, MAX_POINTS = 1024, 4096


def points_for(n_classes: int, coarse: bool = False) -> int:
    """The quasi-Monte Carlo sample size of the C-class channel (see POINTS_TIMES_DIRECTIONS)."""
    full = 2 ** int(round(math.log2(POINTS_TIMES_DIRECTIONS / (n_classes - 1))))
    full = int(min(max(full, MIN_POINTS), MAX_POINTS))
    return max(full // 8, 256) if coarse else full
#: Seed of the scrambled quasi-random sequence (fixed: part of the theory's definition).
QMC_SEED = 20261203
#: Newton stops when max |F| is below this (F the prox's stationarity residual).
PROX_TOL = 1e-10


def _primes(count: int) -> list[int]:
    out: list[int] = []
    k = 2
    while len(out) < count:
        if all(k % p for p in out):
            out.append(k)
        k += 1
    return out


def scrambled_halton(points: int, dim: int, seed: int) -> np.ndarray:
    """(points, dim) quasi-random uniforms in (0, 1): the Halton sequence in the first ``dim`` prime
    bases from a random start, every digit of every base scrambled by its own random permutation
    (numpy seed ``seed``), each point at the centre of its finest cell.  Numpy only (scipy.stats'
    Sobol generator costs about a second to import).  Integration error of the C-class theory:
    at C = 2 against the exact quadrature <= 0.04 points (scrambled Sobol: <= 0.03), at C = 3-10
    within 0.08 points of 8,192 Sobol points."""
    rng = np.random.default_rng(seed)
    index = np.arange(points) + int(rng.integers(0, 2**20))  # a random start (Wang and Hickernell 2000)
    out = np.empty((points, dim))
    for j, base in enumerate(_primes(dim)):
        digits = int(math.ceil(math.log(int(index[-1]) + 1) / math.log(base))) + 1
        x = np.zeros(points)
        rest = index.copy()
        scale = 1.0 / base
        for _ in range(digits):
            x += rng.permutation(base)[rest % base] * scale
            rest //= base
            scale /= base
        out[:, j] = x + 0.5 * scale * base
    return out


@functools.cache
def normals(n_classes: int, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(L, zeta, xi), each (points, C): quasi-random standard normals (:func:`scrambled_halton`), the
    argmax of L swapped to column 0.  Read-only arrays; the same for every call (fixed seed)."""
    u = scrambled_halton(points, 3 * n_classes, QMC_SEED)
    z = ndtri(np.clip(u, 1e-12, 1.0 - 1e-12)).reshape(points, 3, n_classes)
    label, zeta, xi = z[:, 0].copy(), z[:, 1].copy(), z[:, 2].copy()
    top = np.argmax(label, axis=1)
    rows = np.arange(points)
    label[rows, top], label[rows, 0] = label[rows, 0], label[rows, top]
    for arr in (label, zeta, xi):
        arr.flags.writeable = False
    return label, zeta, xi


def _rowsum(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Sum over the (short) class axis by slices: numpy's reductions along a length-C last axis are
    several times slower than C - 1 elementwise additions."""
    out = x[..., 0].copy()
    for j in range(1, x.shape[-1]):
        out += x[..., j]
    return out[..., None] if keepdims else out


def _rowmax(x: np.ndarray) -> np.ndarray:
    out = x[..., 0].copy()
    for j in range(1, x.shape[-1]):
        np.maximum(out, x[..., j], out=out)
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - _rowmax(x)[..., None])
    return e / _rowsum(e, keepdims=True)


def _jacobian(p: np.ndarray) -> np.ndarray:
    """diag(p) - p p^T over the last axis (the softmax Jacobian), shape (..., C, C)."""
    return p[..., :, None] * (np.eye(p.shape[-1]) - p[..., None, :])


class _System:
    """(I + V H) for H = a J(p) + k J(r) + 2c P, in Woodbury form, per point.

    With J(p) = diag(p) - p p^T and 2c P = 2c I - (2c/C) 1 1^T: I + V H = diag(D) - U S U^T - (2cV/C) 1 1^T,
    D = 1 + 2cV + V (a p + k r), U = [p, r], S = diag(V a, V k).  Every vector it is applied to here
    is sum-zero except for a harmless sum mode, and H 1 = 0, so the 1 1^T term is dropped from the
    solves (the sum mode then relaxes by 1 / (1 + 2cV) per step instead of in one) and restored in
    the trace.  The 2 x 2 capacitance matrix is inverted in closed form.
    """

    def __init__(self, p, r, V, a, k, c2):
        self.D = 1.0 + V * (c2 + a * p + (k * r if r is not None else 0.0))
        self.P1 = p / self.D
        alpha = V * a  # (..., 1)
        self.two = r is not None
        pp = _rowsum(p * self.P1, keepdims=True)
        if not self.two:
            self.g11 = alpha / (1.0 - alpha * pp)
            return
        beta = V * k
        self.R1 = r / self.D
        pr = _rowsum(p * self.R1, keepdims=True)
        rr = _rowsum(r * self.R1, keepdims=True)
        # G^-1 = S (I - W S)^-1, W = U^T D^-1 U = [[pp, pr], [pr, rr]].
        m11, m12, m21, m22 = 1.0 - pp * alpha, -pr * beta, -pr * alpha, 1.0 - rr * beta
        det = m11 * m22 - m12 * m21
        inv11, inv12, inv21, inv22 = m22 / det, -m12 / det, -m21 / det, m11 / det
        self.g11, self.g12, self.g21, self.g22 = alpha * inv11, alpha * inv12, beta * inv21, beta * inv22
        self.p, self.r = p, r

    def solve(self, F, p):
        y = F / self.D
        py = _rowsum(p * y, keepdims=True)
        if not self.two:
            return y + self.P1 * (self.g11 * py)
        ry = _rowsum(self.r * y, keepdims=True)
        return y + self.P1 * (self.g11 * py + self.g12 * ry) + self.R1 * (self.g21 * py + self.g22 * ry)

    def trace(self, V, c2):
        """tr M, M = (I + V H)^-1 (the 1 1^T term restored: M 1 = 1)."""
        t = _rowsum(1.0 / self.D) + self.g11[..., 0] * _rowsum(self.P1 * self.P1)
        if self.two:
            t = t + (self.g12 + self.g21)[..., 0] * _rowsum(self.P1 * self.R1) \
                + self.g22[..., 0] * _rowsum(self.R1 * self.R1)
        if c2 is not None:
            t = t + (1.0 - 1.0 / (1.0 + V * c2))[..., 0]
        return t

    def inverse(self, V, c2):
        """M = (I + V H)^-1 as (..., C, C) (the 1 1^T term restored: M 1 = 1)."""
        C = self.D.shape[-1]
        M = np.zeros(self.D.shape + (C,))
        idx = np.arange(C)
        M[..., idx, idx] = 1.0 / self.D
        M += self.g11[..., None] * self.P1[..., :, None] * self.P1[..., None, :]
        if self.two:
            M += self.g12[..., None] * self.P1[..., :, None] * self.R1[..., None, :]
            M += self.g21[..., None] * self.R1[..., :, None] * self.P1[..., None, :]
            M += self.g22[..., None] * self.R1[..., :, None] * self.R1[..., None, :]
        if c2 is not None:
            # M' 1 = 1 / (1 + 2cV) without the dropped term; M 1 = 1 with it (H 1 = 0).
            shift = (1.0 - 1.0 / (1.0 + V * c2)) / C
            M += shift[..., None]
        return M


def prox(omega, label, t, V, a, k, T, c=None, start=None, iters: int = 60, need_inverse: bool = False):
    """h* = argmin_h |h - omega|^2 / (2V) + loss(label, h, t) over R^C, batched; returns
    (h*, tr(M H), M or None), M = (I + V H)^-1 (returned where ``need_inverse``).

    ``omega``, ``t`` (..., C); ``label`` an int class (the observed label); V, a, k, T, c arrays
    broadcasting against (..., 1).  loss = a CE(label, h) + k T^2 KL(softmax(t/T) || softmax(h/T))
    + c |P (h - t)|^2.  Newton on F(h) = h - omega + V grad loss(h), whose Jacobian I + V H is
    symmetric positive definite (solved in Woodbury form, :class:`_System`); a point whose |F|
    grew after a step goes back half way (up to 8 halvings).  H is the Hessian of the loss at h*;
    tr(M H) = (C - tr M) / V.

    Each point stops on its own, at the first iterate with max|F| < PROX_TOL (held there by a zero
    step until a quarter of the working set has settled, then gathered out of it): a point's
    answer depends on that point alone, not on which other points or problems share the batch,
    and the work shrinks as points settle (most need two or three steps from a warm start).
    """
    C = omega.shape[-1]
    shape = np.broadcast_shapes(omega.shape, t.shape)
    lead = shape[:-1]
    rows = math.prod(lead)
    onehot = np.zeros(C)
    onehot[label] = 1.0
    kd_on = bool(np.any(np.asarray(k) > 0))
    mse_on = c is not None and bool(np.any(np.asarray(c) > 0))
    unit_t = kd_on and bool(np.all(np.asarray(T) == 1.0))
    c2 = 2.0 * c if mse_on else None
    zero = np.zeros(1)

    def per_row(v):
        """``v`` (broadcasting against (..., 1) or (..., C)) as one contiguous row a point."""
        v = np.asarray(v, dtype=np.float64)
        return np.ascontiguousarray(np.broadcast_to(v, lead + (v.shape[-1],))).reshape(rows, -1)

    def probabilities(h, T):
        p = _softmax(h)
        return p, (None if not kd_on else (p if unit_t else _softmax(h / T)))

    def parts(h, a, k, T, target, t, c2):
        p, r = probabilities(h, T)
        g = a * (p - onehot)
        if kd_on:
            g = g + k * T * (r - target)
        if mse_on:
            diff = h - t
            g = g + c2 * (diff - _rowsum(diff, keepdims=True) / C)
        return p, r, g

    def system(p, r, V, a, k, c2):
        if kd_on and unit_t:
            # T = 1: both Jacobians are J(p), one rank-one term of weight a + k.
            return _System(p, None, V, a + k, zero, c2 if mse_on else zero)
        return _System(p, r, V, a, k if kd_on else zero, c2 if mse_on else zero)

    # The working set: one row a point, per-point copies of the per-problem arguments.
    h_out = per_row(omega if start is None else start).copy()
    om = per_row(omega)
    tt = per_row(t) if (mse_on or kd_on) else None
    target = _softmax(tt / per_row(T)) if kd_on else None
    tt = tt if mse_on else None
    args = {"V": per_row(V), "a": per_row(a), "k": per_row(k) if kd_on else None,
            "T": per_row(T) if kd_on else None, "c2": per_row(c2) if mse_on else None}
    idx = np.arange(rows)
    hh = h_out
    p, r, g = parts(hh, args["a"], args["k"], args["T"], target, tt, args["c2"])
    F = hh - om + args["V"] * g
    err = _rowmax(np.abs(F))
    for _ in range(iters):
        moving = err > PROX_TOL
        settled = None
        if not moving.all():
            n_moving = int(np.count_nonzero(moving))
            if 4 * n_moving > 3 * moving.size:
                # Fewer than a quarter settled: they stay in the working set, held where they
                # are (a zero step), until gathering pays for its copies.
                settled = ~moving
            else:
                h_out[idx[~moving]] = hh[~moving]
                if not n_moving:
                    break
                idx, hh, p, F, err, om = idx[moving], hh[moving], p[moving], F[moving], err[moving], om[moving]
                r = None if r is None else (p if unit_t else r[moving])
                target = None if target is None else target[moving]
                tt = None if tt is None else tt[moving]
                args = {name: None if v is None else v[moving] for name, v in args.items()}
        V_, a_, k_, T_, c2_ = args["V"], args["a"], args["k"], args["T"], args["c2"]
        step = system(p, r, V_, a_, k_, c2_).solve(F, p)
        if settled is not None:
            step = np.where(settled[:, None], 0.0, step)
        size = np.ones(err.shape + (1,))
        for _ in range(9):
            new = hh - size * step
            p_n, r_n, g_n = parts(new, a_, k_, T_, target, tt, c2_)
            F_n = new - om + V_ * g_n
            err_n = _rowmax(np.abs(F_n))
            worse = err_n > err
            if not np.any(worse):
                break
            size = np.where(worse[..., None], 0.5 * size, size)
        hh, p, r, F, err = new, p_n, r_n, F_n, err_n
    h_out[idx] = hh  # (out of steps: the points still moving keep their last iterate)
    h = h_out.reshape(shape)
    c2_full = c2 if mse_on else None
    p, r = probabilities(h, T)
    sys_ = system(p, r, V, a, k, c2_full)
    trace_mh = (C - sys_.trace(V, c2_full)) / V[..., 0]
    return h, trace_mh, (sys_.inverse(V, c2_full) if need_inverse else None)


def _mean(v: np.ndarray) -> np.ndarray:
    """Mean over the sample axis (the last but one after the class axis is reduced): (P, N) -> (P,)."""
    return v.mean(axis=-1)


def channel(ch, m, q, V, kd_on: bool, cache: dict, nodes=None, vh_st=None, resp=None):
    """Conjugates (Vh, qh, mh, qh_ST, Vh_ST) of the symmetric C-class channel, one row per problem.

    The counterpart of :func:`mfh_sim.theory.gcm._channel` (same arguments and returns, same
    same-sample response term and label noise); ``nodes`` not None selects the coarse rule.
    """
    C = int(ch.n_classes[0])
    points = points_for(C, coarse=nodes is not None)
    label, zeta, xi = normals(C, points)
    P = q.shape[0]
    q, m1, m2, s_lt, v_t, b_l, b_t, sig2, c_ll, c_lt, c_tt = gaussian_conditionals(ch, m, q, kd_on)
    ex = lambda v: np.asarray(v, dtype=np.float64)[:, None, None]
    L = label[None]
    t = ex(s_lt) * L + ex(np.sqrt(v_t)) * zeta[None]
    omega = ex(b_l) * L + ex(b_t) * t + ex(np.sqrt(sig2)) * xi[None]
    Vb = ex(V)
    a, k, T = ex(ch.ce), ex(ch.kd), ex(ch.temperature)
    c = ex(ch.mse) if ch.mse is not None and bool(np.any(ch.mse != 0)) else None
    same = kd_on and ch.v_t is not None and bool(np.any(ch.v_t > 0))
    noisy = ch.label_noise is not None and bool(np.any(ch.label_noise > 0))
    branches = ((0, 1.0 - ch.label_noise), (1, ch.label_noise)) if noisy else ((0, None),)
    vh, qh, qh_st, vh_st_new, e_l, e_t = (np.zeros(P) for _ in range(6))
    scale = 1.0 / (C - 1)
    for observed, share in branches:
        weigh = (lambda v: v) if share is None else (lambda v, share=share: v * share)
        if same:
            key_t = ("t", observed, points)
            if key_t not in cache:
                vt = ex(ch.v_t)
                ones = np.ones_like(vt)
                t_in, _, m_t = prox(t, observed, t, vt, ones, np.zeros_like(vt), ones, need_inverse=True)
                # The teacher-only factor of the response's weight: loss_ht (I + V_T CE''_T)^-1,
                # loss_ht = d^2 loss / dh dt = -k J(t/T) (KL) - 2c P (MSE).
                p_t = _softmax(t_in / T)
                loss_ht = -k[..., None] * _jacobian(p_t)
                if c is not None:
                    loss_ht = loss_ht - 2.0 * c[..., None] * (np.eye(C) - 1.0 / C)
                cache[key_t] = t_in
                cache[("ht", observed, points)] = loss_ht @ m_t
            t_in, ht = cache[key_t], cache[("ht", observed, points)]
            f_t = (t_in - t) / ex(ch.v_t)
            coef = Vb if resp is None else ex(resp)
            field = omega - coef * ex(ch.xi * vh_st) * f_t if vh_st is not None else omega
        else:
            t_in, field = t, omega
        key = ("s", observed, points)
        h, trace_mh, M = prox(field, observed, t_in, Vb, a, k, T, c, start=cache.get(key), need_inverse=same)
        cache[key] = h
        f = (h - field) / Vb
        vh += weigh(_mean(trace_mh) * scale)
        qh += weigh(_mean(_rowsum(f * f)) * scale)
        e_l += weigh(_mean(_rowsum((L - ex(m1 / q) * omega) * f)) * scale)
        if kd_on:
            e_t += weigh(_mean(_rowsum((t - ex(m2 / q) * omega) * f)) * scale)
        if same:
            qh_st += weigh(_mean(_rowsum(f * f_t)) * scale)
            vh_st_new += weigh(_mean(np.einsum("pnij,pnji->pn", M, ht)) * scale)
    return conjugates(ch.alpha, kd_on, vh, qh, e_l, e_t, qh_st, vh_st_new, c_ll, c_lt, c_tt)


# ------------------------------------------------------------------------------ test accuracy
_ACC_NODES = 64


@functools.cache
def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / w.sum()


def bivariate_cdf(h: np.ndarray, k: np.ndarray, r: float) -> np.ndarray:
    """Phi_2(h, k; r) = P(X < h, Y < k) for standard normals with correlation r in (-1, 1).

    Owen's formula: (Phi(h) + Phi(k)) / 2 - T(h, a_h) - T(k, a_k) - beta, with
    a_h = (k - r h) / (h sqrt(1 - r^2)), a_k likewise, beta = 1/2 where h k < 0 (or h k = 0 with
    h + k < 0), 0 otherwise.  h, k must be nonzero where used (the callers' nodes are).
    """
    s = math.sqrt(1.0 - r * r)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_h = (k - r * h) / (h * s)
        a_k = (h - r * k) / (k * s)
    beta = np.where((h * k < 0) | ((h * k == 0) & (h + k < 0)), 0.5, 0.0)
    return 0.5 * (ndtr(h) + ndtr(k)) - owens_t(h, a_h) - owens_t(k, a_k) - beta


def _direct_accuracy(r: np.ndarray, n_classes: int) -> np.ndarray:
    """C E[Phi_2(a, b; r)^(C - 1)] by a 64 x 64 Gauss-Hermite rule, for r in (-1, 1), vectorised."""
    x, w = _hermite(_ACC_NODES)
    r = np.asarray(r, dtype=np.float64)[:, None, None]
    a = np.broadcast_to(x[None, :, None], (r.shape[0], x.size, x.size))
    b = r * x[None, :, None] + np.sqrt(1.0 - r * r) * x[None, None, :]
    b = np.where(b == 0.0, 1e-300, b)
    s = np.sqrt(1.0 - r * r)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_h = (b - r * a) / (a * s)
        a_k = (a - r * b) / (b * s)
    beta = np.where(a * b < 0, 0.5, 0.0)
    cdf = np.clip(0.5 * (ndtr(a) + ndtr(b)) - owens_t(a, a_h) - owens_t(b, a_k) - beta, 0.0, 1.0)
    return n_classes * np.einsum("i,j,nij->n", w, w, cdf ** (n_classes - 1))


#: Chebyshev nodes of the accuracy's interpolant in theta = arccos(r) on [0, pi/2].
_CHEB_NODES = 48


@functools.cache
def _interpolant(n_classes: int) -> np.ndarray:
    """Chebyshev coefficients of acc_C(cos theta) on theta in [0, pi/2] (exact at both ends)."""
    k = np.arange(_CHEB_NODES)
    u = np.cos(np.pi * (k + 0.5) / _CHEB_NODES)  # in (-1, 1)
    theta = (u + 1.0) * math.pi / 4.0
    values = _direct_accuracy(np.cos(theta), n_classes)
    return np.polynomial.chebyshev.chebfit(u, values, _CHEB_NODES - 1)


def accuracy(r, n_classes: int) -> np.ndarray:
    """P(argmax_c h_c = argmax_c L_c) for i.i.d. pairs (h_c, L_c) with correlation ``r`` in [-1, 1].

    = C E[Phi_2(a, b; r)^(C - 1)] over a standard bivariate normal (a, b) with correlation r (the
    winning class's pair; Phi_2 by Owen's T function), a 64 x 64 Gauss-Hermite rule; for r in
    [0, 1] through a 48-node Chebyshev interpolant in arccos(r) built once per C (its error
    against the rule is below 1e-9).  1 at r = 1, 1/C at r = 0; NaN stays NaN.
    """
    r = np.atleast_1d(np.asarray(r, dtype=np.float64))
    out = np.full(r.shape, np.nan)
    C = int(n_classes)
    ok = np.isfinite(r)
    rc = np.clip(r, -1.0, 1.0)
    pos = ok & (rc >= 0)
    if pos.any():
        theta = np.arccos(rc[pos])
        out[pos] = np.polynomial.chebyshev.chebval(theta * 4.0 / math.pi - 1.0, _interpolant(C))
    neg = ok & (rc < 0)
    if neg.any():
        out[neg] = _direct_accuracy(np.maximum(rc[neg], -1.0 + 1e-12), C)
    return out


# ------------------------------------------------------------------------ infinite-data limit
def _expected_max(n_classes: int) -> float:
    """E[max of C i.i.d. N(0, 1)] by quadrature (E max = C int x phi(x) Phi(x)^(C-1) dx)."""
    x, w = _hermite(160)
    return float(n_classes * np.sum(w * x * ndtr(x) ** (n_classes - 1)))


def label_stein(n_classes: int, label_noise: float = 0.0) -> float:
    """lambda_y: E[L e_y^T] = lambda_y P on the sum-zero subspace (P the projector), per unit latent.

    Without noise lambda_y = E[max_c L_c] / (C - 1); a label replaced by a uniformly drawn other
    class with probability eps scales it by 1 - eps C / (C - 1).
    """
    C = int(n_classes)
    return _expected_max(C) / (C - 1) * (1.0 - label_noise * C / (C - 1))


def mean_jacobian(scale: float, n_classes: int) -> float:
    """kappa(s) = E[tr J(s L)] / (C - 1), L ~ N(0, I_C) i.i.d. (J the softmax Jacobian).

    E[B^T J B] = kappa I on the sum-zero subspace by symmetry; by the channel's quasi-Monte Carlo
    points.  The two-class analogue is 2 E[sigma'(s sqrt(2) xi)].
    """
    L, _, _ = normals(n_classes, MAX_POINTS)
    p = softmax(scale * L, axis=-1)
    return float(np.mean(np.sum(p * (1.0 - p), axis=-1)) / (n_classes - 1))


def teacher_scale(share: float, n_classes: int, label_noise: float = 0.0) -> float:
    """The population softmax teacher's logit scale u (sd of each sum-zero logit coordinate).

    The population minimiser of the cross-entropy is Theta = (u / sqrt(X)) U_T (Brillinger: in the
    span of the visible class frame U_T, Gram X I), and Stein's lemma on the sum-zero subspace
    gives u kappa(u) = lambda_y sqrt(X) (:func:`mean_jacobian`, :func:`label_stein`): for two
    classes this is s E[sigma'(s xi)] = phi(0) sqrt(X) with s = sqrt(2) u.  inf where the teacher
    sees everything and the labels are clean (separable).
    """
    from scipy.optimize import brentq

    if share <= 0:
        return 0.0
    if share >= 1.0 and label_noise == 0.0:
        return math.inf
    goal = label_stein(n_classes, label_noise) * math.sqrt(share)
    f = lambda u: u * mean_jacobian(u, n_classes) - goal
    high = 1.0
    while f(high) < 0:
        high *= 2.0
        if high > 1e6:
            return math.inf
    return float(brentq(f, 0.0, high, xtol=1e-12))


def kd_population_rho(p_g, p_b, x_t, *, n_classes: int, ce: float, k: float, temperature: float,
                      mse: float = 0.0, label_noise: float = 0.0) -> np.ndarray:
    """Correlation with the label latent of the population KD student (symmetric C-class case).

    Stationarity (Stein's lemma on the sum-zero subspace, as in docs/theory.md section 3): the
    student's weights are c_G U_G + c_B U_B with c_B = a lambda_y and
    c_G = a lambda_y + k u_T kappa(u_T / T) / sqrt(X) (KL; = a lambda_y + k lambda_y at T = 1 for
    every teacher) + 2 c u_T / sqrt(X) (logit MSE), u_T the population teacher's logit scale
    (:func:`teacher_scale`, share X = p_G + p_A); the student's own curvature is a scalar and does
    not turn the direction.  rho = (c_G p_G + c_B p_B) / sqrt(c_G^2 p_G + c_B^2 p_B).
    """
    lam = label_stein(n_classes, label_noise)
    p_g, p_b, x_t = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (p_g, p_b, x_t))
    out = np.empty_like(p_g)
    scales: dict = {}
    for i, (pg, pb, xt) in enumerate(zip(p_g, p_b, x_t)):
        if xt not in scales:
            scales[xt] = teacher_scale(float(xt), n_classes, label_noise)
        u = scales[xt]
        coef = 0.0
        if xt > 0 and k > 0:
            # u kappa(u / T) -> T lambda_y as u -> inf (the teacher's own stationarity at X = 1).
            coef += k * (temperature * lam if not math.isfinite(u) else u * mean_jacobian(u / temperature, n_classes)) \
                / math.sqrt(xt)
        if xt > 0 and mse > 0:
            coef += 2.0 * mse * u / math.sqrt(xt) if math.isfinite(u) else math.inf
        c_b = ce * lam
        c_g = c_b + coef
        if not math.isfinite(c_g):
            out[i] = math.sqrt(pg)
            continue
        den = math.sqrt(c_g**2 * pg + c_b**2 * pb)
        out[i] = (c_g * pg + c_b * pb) / den if den > 0 else 0.0
    return out
