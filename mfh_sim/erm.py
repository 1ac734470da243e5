"""Converged training: ridge-regularised logistic ERM with knowledge distillation, by damped Newton.

The paper trains its linear two-class models by 1,000 steps of full-batch gradient descent with no
ridge, which is neither the maximum-likelihood estimator nor any ridge ERM, so exact asymptotic
theory (the Gaussian covariate model, see ``/work/shared/theory-notes.md``) does not describe it.
This module trains the same models to the *exact minimiser* of a stated convex objective, so that
the theory has a well-defined target.

The model is written in margin form: a two-output softmax layer sees only the margin
h = l_1 - l_0, so it is the linear margin model h(x) = theta . x + b (see
:func:`mfh_sim.train.fit_linear_margin`).  With y in {0, 1}, sigma the logistic function, t_i the
teacher's margin on sample i and T > 0 the temperature, :func:`fit_erm` returns the minimiser of

    R(theta, b) = (1/n) sum_i [ c * l(y_i, h_i)  +  k * T^2 * KL( sigma(t_i/T) || sigma(h_i/T) ) ]
                  + (l2 / 2) * ||theta||^2,                     h_i = theta . x_i + b,

where l(y, h) = log(1 + e^h) - y h is the logistic loss (= two-class softmax cross-entropy),
KL(q || p) = q log(q/p) + (1 - q) log((1 - q)/(1 - p)) is the KL divergence between Bernoulli
distributions, c = ``ce_weight`` and k the *effective* KD weight of the simulator's loss
(:func:`mfh_sim.losses.kd_kl`): k = ``kd_weight`` / 2 for ``kd_reduction='paper'`` (PyTorch's
``KLDivLoss`` 'mean' averages over the two classes as well) and k = ``kd_weight`` for
``'batchmean'``.  The bias b is not penalised.  Replacing the KL by the soft-target cross-entropy
changes R by a constant (the teacher's entropy), so the minimiser is the same.

With ``kd_loss='mse'`` (the simulator's logit MSE, :func:`mfh_sim.losses.logit_mse`) the KD term
is k (h_i - t_i)^2 instead, with k = ``kd_weight`` / 4 whatever the reduction and temperature:
the mean over the two logits of (s - t)^2 is ((h - t)^2 + (sum - sum_T)^2) / 4 per sample, and the
logit sum's part never reaches the margin (docs/theory.md 4.4b).

R is strictly convex in (theta, b) for l2 > 0 (its Hessian in b is sum_i of positive weights), so
the minimiser exists and is unique.  With l2 = 0 it need not exist: on linearly separable data
(always the case without label noise once n_train <= dim, and often beyond) the loss can be driven
to 0 by scaling theta, so ``l2 > 0`` is required.

Everything is pure JAX: :func:`newton_solve` runs a ``lax.while_loop`` of damped Newton steps (a
Cholesky solve of the (d+1) x (d+1) Hessian, then a vectorised backtracking line search) and
jits and vmaps over seeds and over ``l2``/weights passed as arrays.  The paper's protocol
(:mod:`mfh_sim.protocols.paper`) trains with it when ``optimizer='erm'``: the same draws and test
accuracies as gradient training, every fit replaced by this minimiser.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim.losses import KD_REDUCTIONS

#: Maximum number of Newton steps.  From theta = 0, b = 0 the damped Newton method reached
#: max|grad| <= 1e-5 in at most 6 steps (mean 4.8) on 100 of the simulator's students (n = 300,
#: d = 50, l2 = 0.01); the cap only bounds pathological cases.
DEFAULT_ITERATIONS = 60
#: A fit has converged when the largest absolute entry of the gradient of R is at most this.  In
#: float32 the gradient's rounding floor is 1e-6 to 1e-5 on the simulator's problems (a mean of n
#: products of O(1) numbers), so the loop aims at ``tol * TARGET_FACTOR`` and stops early only when
#: the line search can no longer decrease R (float precision reached).  At 1e-4 the weights agree
#: with a float64 BFGS solve to 2e-4 (tests/test_erm.py).
DEFAULT_TOL = 1e-4
#: The loop keeps stepping until max|grad R| <= tol * TARGET_FACTOR (or it stalls).
TARGET_FACTOR = 0.01
#: Step sizes tried by the line search: 1, 1/2, ..., 2^-(LINE_SEARCH_STEPS - 1).
LINE_SEARCH_STEPS = 24
#: Armijo constant: accept step s if R(w + s dw) <= R(w) + ARMIJO * s * grad . dw.
ARMIJO = 1e-4


class ErmFit(NamedTuple):
    """A fitted margin model h(x) = x @ theta + bias and how the solve ended.

    theta: (d,) weights; bias: () intercept; converged: () bool, max|grad R| <= tol at the end;
    iterations: () int32 Newton steps taken; grad_norm: () float, max|grad R| at the end.
    """

    theta: jax.Array
    bias: jax.Array
    converged: jax.Array
    iterations: jax.Array
    grad_norm: jax.Array


#: The KD terms the solver knows: T^2 KL ('kl') and the margin MSE of the logit MSE ('mse').
ERM_KD_LOSSES = ("kl", "mse")


def effective_kd_weight(
    kd_weight: float | jax.Array, kd_reduction: str = "paper", kd_loss: str = "kl"
) -> float | jax.Array:
    """k of the objective.

    KL: ``kd_weight`` / 2 for 'paper' (KL averaged over 2 classes), else ``kd_weight``.  Logit
    MSE: ``kd_weight`` / 4 for either reduction (the simulator's MSE term has none; see the module
    docstring).
    """
    if kd_reduction not in KD_REDUCTIONS:
        raise ValueError(f"kd_reduction={kd_reduction!r} is not allowed: use one of {KD_REDUCTIONS}")
    if kd_loss not in ERM_KD_LOSSES:
        raise ValueError(f"kd_loss={kd_loss!r} is not allowed: use one of {ERM_KD_LOSSES}")
    if kd_loss == "mse":
        return kd_weight / 4.0
    return kd_weight / 2.0 if kd_reduction == "paper" else kd_weight


def _log_sigmoid(h: jax.Array) -> jax.Array:
    return -jnp.logaddexp(0.0, -h)


def pointwise_loss(
    h: jax.Array,
    y: jax.Array,
    t: jax.Array,
    ce_weight: float | jax.Array,
    k: float | jax.Array,
    temperature: float | jax.Array,
    kd_loss: str = "kl",
) -> jax.Array:
    """c l(y, h) + k T^2 KL(sigma(t/T) || sigma(h/T)) per sample (nats), stable for any margins.

    ``k`` is the effective KD weight (see :func:`effective_kd_weight`); with k = 0 the teacher
    margins ``t`` are ignored.  ``kd_loss='mse'``: c l(y, h) + k (h - t)^2 (T unused).
    """
    logistic = jnp.logaddexp(0.0, h) - y * h
    if kd_loss == "mse":
        return ce_weight * logistic + k * (h - t) ** 2
    q = jax.nn.sigmoid(t / temperature)
    log_q, log_1q = _log_sigmoid(t / temperature), _log_sigmoid(-t / temperature)
    log_p, log_1p = _log_sigmoid(h / temperature), _log_sigmoid(-h / temperature)
    kl = q * (log_q - log_p) + (1.0 - q) * (log_1q - log_1p)
    return ce_weight * logistic + k * temperature**2 * kl


def objective(
    theta: jax.Array,
    bias: jax.Array,
    x: jax.Array,
    y: jax.Array,
    *,
    l2: float | jax.Array,
    teacher_margins: jax.Array | None = None,
    ce_weight: float | jax.Array = 1.0,
    kd_weight: float | jax.Array = 0.0,
    temperature: float | jax.Array = 1.0,
    kd_reduction: str = "paper",
    kd_loss: str = "kl",
) -> jax.Array:
    """R(theta, b) of the module docstring (nats): the quantity :func:`fit_erm` minimises."""
    k = effective_kd_weight(kd_weight, kd_reduction, kd_loss)
    t = jnp.zeros_like(y, dtype=x.dtype) if teacher_margins is None else teacher_margins
    h = x @ theta + bias
    data = jnp.mean(pointwise_loss(h, y.astype(x.dtype), t, ce_weight, k, temperature, kd_loss))
    return data + 0.5 * l2 * jnp.sum(theta**2)


@partial(jax.jit, static_argnames=("iterations", "tol", "kd_loss"))
def newton_solve(
    x: jax.Array,
    y: jax.Array,
    teacher_margins: jax.Array,
    l2: float | jax.Array,
    ce_weight: float | jax.Array,
    k: float | jax.Array,
    temperature: float | jax.Array,
    iterations: int = DEFAULT_ITERATIONS,
    tol: float = DEFAULT_TOL,
    row_mask: jax.Array | None = None,
    kd_loss: str = "kl",
) -> ErmFit:
    """The jittable core of :func:`fit_erm`, no validation: minimise R by damped Newton from 0.

    ``x`` (n, d), ``y`` (n,) in {0, 1} (any float/int dtype), ``teacher_margins`` (n,) (ignored
    where ``k`` = 0), ``k`` the effective KD weight.  ``l2``, ``ce_weight``, ``k`` and
    ``temperature`` may be traced scalars; ``iterations`` and ``tol`` are Python numbers (static:
    the function is jitted, so calls differing only in the scalars share one compiled program).

    ``row_mask`` (n,) of 0/1 marks the real samples (default: all): the mean in R runs over
    them only, so a problem padded with masked rows (and with all-zero columns, whose weights the
    ridge holds at exactly 0) has the same minimiser as the unpadded one.  This lets problems of
    different sizes share one compiled program.

    ``kd_loss`` (static): 'kl' (above) or 'mse', where the KD term is k (h_i - t_i)^2 and
    ``temperature`` is unused: dR/dh_i gains 2 k (h_i - t_i) / n and d2R/dh_i^2 gains 2 k / n in
    place of the KL's terms.

    Each step solves H dw = -g with H, g the Hessian and gradient of R in w = (theta, b) (closed
    forms: dR/dh_i = [c (sigma(h_i) - y_i) + k T (sigma(h_i/T) - sigma(t_i/T))] / n and
    d2R/dh_i^2 = [c sigma'(h_i) + k sigma'(h_i/T)] / n), then takes the largest step 2^-j
    satisfying Armijo's condition (all candidates evaluated at once: R along the line costs O(n)
    once X dw is known).  The loop stops when max|g| <= tol * :data:`TARGET_FACTOR`, when no step
    decreases R (float precision reached) or after ``iterations`` steps; ``converged`` is
    max|g| <= tol.
    """
    n, d = x.shape
    dtype = x.dtype
    y = y.astype(dtype)
    t = teacher_margins.astype(dtype)
    mask = jnp.ones(n, dtype) if row_mask is None else row_mask.astype(dtype)
    n_real = jnp.sum(mask)
    x1 = jnp.concatenate([x, jnp.ones((n, 1), dtype)], axis=1)
    # Ridge on theta only: the intercept is not penalised.
    penalty = jnp.concatenate([jnp.ones(d, dtype), jnp.zeros(1, dtype)]) * l2
    q = jax.nn.sigmoid(t / temperature)
    steps = 2.0 ** -jnp.arange(LINE_SEARCH_STEPS, dtype=dtype)

    def total(h: jax.Array, w: jax.Array) -> jax.Array:
        # h (..., n), w (..., d + 1): R for each leading index.
        data = jnp.sum(mask * pointwise_loss(h, y, t, ce_weight, k, temperature, kd_loss), axis=-1) / n_real
        return data + 0.5 * jnp.sum(penalty * w**2, axis=-1)

    def gradient(w: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        if kd_loss == "mse":
            dh = ce_weight * (jax.nn.sigmoid(h) - y) + 2.0 * k * (h - t)
        else:
            dh = ce_weight * (jax.nn.sigmoid(h) - y) + k * temperature * (jax.nn.sigmoid(h / temperature) - q)
        dh = mask * dh
        return x1.T @ dh / n_real + penalty * w, dh

    def cond(state):
        _, _, it, gnorm, stalled = state
        return (it < iterations) & (gnorm > tol * TARGET_FACTOR) & ~stalled

    def body(state):
        w, h, it, _, _ = state
        g, _ = gradient(w, h)
        s = jax.nn.sigmoid(h)
        if kd_loss == "mse":
            curvature = ce_weight * s * (1.0 - s) + 2.0 * k
        else:
            st = jax.nn.sigmoid(h / temperature)
            curvature = ce_weight * s * (1.0 - s) + k * st * (1.0 - st)
        hess = (x1.T * (mask * curvature)) @ x1 / n_real + jnp.diag(penalty)
        chol = jax.scipy.linalg.cho_factor(hess, lower=True)
        dw = -jax.scipy.linalg.cho_solve(chol, g)
        dh = x1 @ dw
        values = total(h[None, :] + steps[:, None] * dh[None, :], w[None, :] + steps[:, None] * dw[None, :])
        slope = jnp.dot(g, dw)  # < 0 for a descent direction (H is positive definite)
        ok = values <= total(h, w) + ARMIJO * steps * slope
        # First (largest) accepted step; if none is accepted (only at float precision, where
        # the objective can no longer decrease) take the smallest, a negligible move.
        step = steps[jnp.minimum(jnp.argmax(ok), LINE_SEARCH_STEPS - 1)]
        step = jnp.where(jnp.any(ok), step, steps[-1])
        w = w + step * dw
        h = h + step * dh
        g_new, _ = gradient(w, h)
        return w, h, it + 1, jnp.max(jnp.abs(g_new)), ~jnp.any(ok)

    w0 = jnp.zeros(d + 1, dtype)
    h0 = jnp.zeros(n, dtype)
    g0, _ = gradient(w0, h0)
    state = (w0, h0, jnp.int32(0), jnp.max(jnp.abs(g0)), jnp.asarray(False))
    w, h, it, _, _ = jax.lax.while_loop(cond, body, state)
    # Recompute the gradient from w itself (not the running h) for an honest convergence flag.
    g_final, _ = gradient(w, x1 @ w)
    gnorm = jnp.max(jnp.abs(g_final))
    return ErmFit(w[:d], w[d], gnorm <= tol, it, gnorm)


def _is_concrete(value: Any) -> bool:
    return not isinstance(value, jax.core.Tracer)


def _check_real(name: str, value: Any, *, low: float, open_low: bool) -> None:
    """ValueError unless a concrete ``value`` is a finite number > low (>= low if not open_low)."""
    if not _is_concrete(value):
        return
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not allowed: it must be a finite number") from None
    bad = ~np.isfinite(array) | ((array <= low) if open_low else (array < low))
    if np.any(bad):
        bound = f"> {low}" if open_low else f">= {low}"
        raise ValueError(f"{name}={value!r} is not allowed: it must be a finite number {bound}")


def validate_erm_args(
    x: Any,
    y: Any,
    *,
    l2: Any,
    teacher_margins: Any = None,
    ce_weight: Any = 1.0,
    kd_weight: Any = 0.0,
    temperature: Any = 1.0,
    kd_reduction: str = "paper",
    iterations: Any = DEFAULT_ITERATIONS,
    tol: Any = DEFAULT_TOL,
    kd_loss: str = "kl",
) -> None:
    """Raise ValueError naming the first bad argument of :func:`fit_erm` (traced values pass)."""
    if l2 is None:
        raise ValueError("l2=None is not allowed: give a ridge strength > 0")
    if _is_concrete(l2):
        try:
            l2_array = np.asarray(l2, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"l2={l2!r} is not allowed: it must be a finite number > 0") from None
        if np.any(l2_array == 0):
            raise ValueError(
                "l2=0 is not allowed: without a ridge the minimiser of the logistic loss does not "
                "exist on linearly separable data (the loss tends to 0 as ||theta|| grows); give l2 > 0"
            )
    _check_real("l2", l2, low=0.0, open_low=True)
    _check_real("ce_weight", ce_weight, low=0.0, open_low=False)
    _check_real("kd_weight", kd_weight, low=0.0, open_low=False)
    _check_real("temperature", temperature, low=0.0, open_low=True)
    if kd_reduction not in KD_REDUCTIONS:
        raise ValueError(f"kd_reduction={kd_reduction!r} is not allowed: use one of {KD_REDUCTIONS}")
    if kd_loss not in ERM_KD_LOSSES:
        raise ValueError(f"kd_loss={kd_loss!r} is not allowed: use one of {ERM_KD_LOSSES}")
    if isinstance(iterations, (bool, np.bool_)) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"iterations={iterations!r} is not allowed: it must be an integer >= 1")
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, (int, float, np.floating)) or not (
        math.isfinite(tol) and tol > 0
    ):
        raise ValueError(f"tol={tol!r} is not allowed: it must be a finite number > 0")
    if getattr(x, "ndim", None) != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x of shape {getattr(x, 'shape', None)} is not allowed: it must be an (n, d) array")
    n = x.shape[0]
    if getattr(y, "shape", None) != (n,):
        raise ValueError(
            f"y of shape {getattr(y, 'shape', None)} is not allowed: it must be ({n},), one label per row of x"
        )
    if _is_concrete(y):
        labels = np.asarray(y)
        if not np.all((labels == 0) | (labels == 1)):
            raise ValueError("y is not allowed: labels must be 0 or 1")
    if teacher_margins is not None and getattr(teacher_margins, "shape", None) != (n,):
        raise ValueError(
            f"teacher_margins of shape {getattr(teacher_margins, 'shape', None)} is not allowed: "
            f"it must be ({n},), the teacher's margin on each row of x"
        )
    kd_on = not _is_concrete(kd_weight) or np.any(np.asarray(kd_weight) > 0)
    if teacher_margins is None and kd_on:
        raise ValueError(
            f"teacher_margins=None is not allowed with kd_weight={kd_weight!r}: the KD term needs "
            "the teacher's margins (or set kd_weight=0)"
        )
    if _is_concrete(ce_weight) and (teacher_margins is None or _is_concrete(kd_weight)):
        k = 0.0 if teacher_margins is None else np.asarray(kd_weight, np.float64)
        if np.any(np.asarray(ce_weight, np.float64) + k <= 0):
            raise ValueError(
                f"ce_weight={ce_weight!r} is not allowed with kd_weight={kd_weight!r}: the loss would be "
                "identically zero; give ce_weight + kd_weight > 0"
            )


def fit_erm(
    x: jax.Array,
    y: jax.Array,
    *,
    l2: float | jax.Array,
    teacher_margins: jax.Array | None = None,
    ce_weight: float | jax.Array = 1.0,
    kd_weight: float | jax.Array = 0.0,
    temperature: float | jax.Array = 1.0,
    kd_reduction: str = "paper",
    iterations: int = DEFAULT_ITERATIONS,
    tol: float = DEFAULT_TOL,
    kd_loss: str = "kl",
) -> ErmFit:
    """Minimise R(theta, b) of the module docstring exactly (to ``tol``) by damped Newton.

    Args:
        x: inputs (n, d), float32 or float64 (the solve runs in x's dtype).
        y: labels (n,) in {0, 1}.
        l2: ridge strength > 0 on theta (not on the bias); see the module docstring for why 0
            is refused.
        teacher_margins: the teacher's margins t (n,) on the rows of ``x`` (logit of class 1
            minus logit of class 0); required when ``kd_weight`` > 0.
        ce_weight: c >= 0, weight of the logistic (cross-entropy) loss on the hard labels.
        kd_weight: >= 0, the simulator's KD weight; the effective k is ``kd_weight`` / 2 under
            ``kd_reduction='paper'`` and ``kd_weight`` under ``'batchmean'``.
        temperature: T > 0 of the KD softmax (unused with ``kd_loss='mse'``).
        kd_loss: 'kl' (T^2 KL) or 'mse' (the logit MSE: margin term (kd_weight / 4) (h - t)^2).
        iterations: maximum Newton steps (>= 1); tol: > 0, converged means max|grad R| <= tol
            (the loop itself aims lower, see :func:`newton_solve`).

    Returns an :class:`ErmFit`; ``converged`` is False if ``iterations`` steps did not reach
    ``tol``.  Validation runs on concrete arguments; traced ones (inside jit or vmap) are taken
    as given.  Jit- and vmap-able: ``jax.vmap(lambda x, y: fit_erm(x, y, l2=0.01))(xs, ys)``.
    """
    validate_erm_args(x, y, l2=l2, teacher_margins=teacher_margins, ce_weight=ce_weight,
                      kd_weight=kd_weight, temperature=temperature, kd_reduction=kd_reduction,
                      iterations=iterations, tol=tol, kd_loss=kd_loss)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    x = jnp.asarray(x, dtype)
    if teacher_margins is None:
        teacher_margins, k = jnp.zeros(x.shape[0], dtype), 0.0
    else:
        k = effective_kd_weight(kd_weight, kd_reduction, kd_loss)
    return newton_solve(x, y, teacher_margins, l2, ce_weight, k, temperature, iterations, tol, kd_loss=kd_loss)


def fit_teacher(x_a: jax.Array, y: jax.Array, *, l2: float | jax.Array, **solver: Any) -> ErmFit:
    """The teacher: ridge-logistic ERM on its modality's inputs ``x_a`` (n, d_a) and labels (no KD)."""
    return fit_erm(x_a, y, l2=l2, **solver)


def fit_students(
    x_b: jax.Array,
    y: jax.Array,
    teacher_margins: jax.Array,
    *,
    l2: float | jax.Array,
    ce_weight: float | jax.Array = 1.0,
    kd_weight: float | jax.Array = 1.0,
    temperature: float | jax.Array = 1.0,
    kd_reduction: str = "paper",
    kd_loss: str = "kl",
    **solver: Any,
) -> tuple[ErmFit, ErmFit]:
    """(no-KD student, KD student) on ``x_b`` (n, d_b).

    The no-KD student minimises the logistic loss alone (weight 1, as the simulator's no-KD
    student does whatever ``ce_weight`` is); the KD student minimises R with ``ce_weight``,
    ``kd_weight``, ``temperature``, ``kd_reduction`` and ``kd_loss`` against ``teacher_margins`` (n,).  Both
    use the same ``l2``.
    """
    no_kd = fit_erm(x_b, y, l2=l2, **solver)
    kd = fit_erm(x_b, y, l2=l2, teacher_margins=teacher_margins, ce_weight=ce_weight,
                 kd_weight=kd_weight, temperature=temperature, kd_reduction=kd_reduction, kd_loss=kd_loss,
                 **solver)
    return no_kd, kd


# --------------------------------------------------------------------------- more than two classes
class SoftmaxErmFit(NamedTuple):
    """A fitted C-class linear model, logits = x @ weights + bias, and how the solve ended.

    weights: (d, C); bias: (C,) (both with rows summing to zero over the classes: the softmax
    ignores a common shift); converged: () bool, max|grad R| <= tol; iterations: () int32 Newton
    steps; grad_norm: () float, max|grad R| at the end.
    """

    weights: jax.Array
    bias: jax.Array
    converged: jax.Array
    iterations: jax.Array
    grad_norm: jax.Array


def softmax_effective_kd_weight(kd_weight, n_classes: int, kd_reduction: str = "paper", kd_loss: str = "kl"):
    """k of :func:`softmax_newton_solve`'s objective for the simulator's KD weight.

    KL: ``kd_weight`` / C for 'paper' (PyTorch's KLDivLoss 'mean' averages over the C classes too),
    ``kd_weight`` for 'batchmean'.  Logit MSE (mean over samples and the C logits of (s - t)^2):
    ``kd_weight`` / C on |l - t|^2, of which the solver keeps the sum-zero part |P (l - t)|^2 (the
    sum part never reaches the softmax).  Two classes give the margin form's weights back
    (kd_weight / 2 on the KL; kd_weight / 4 on the squared margin gap, since |P d|^2 = (d_1 - d_0)^2 / 2).
    """
    if kd_reduction not in KD_REDUCTIONS:
        raise ValueError(f"kd_reduction={kd_reduction!r} is not allowed: use one of {KD_REDUCTIONS}")
    if kd_loss not in ERM_KD_LOSSES:
        raise ValueError(f"kd_loss={kd_loss!r} is not allowed: use one of {ERM_KD_LOSSES}")
    if kd_loss == "mse" or kd_reduction == "paper":
        return kd_weight / n_classes
    return kd_weight


def _sum_zero_basis(n_classes: int) -> np.ndarray:
    """(C, C - 1) orthonormal basis of the sum-zero subspace of R^C (float64)."""
    centred = np.eye(n_classes) - 1.0 / n_classes
    basis, _ = np.linalg.qr(centred[:, : n_classes - 1])
    return basis


@partial(jax.jit, static_argnames=("n_classes", "iterations", "tol", "kd_loss"))
def softmax_newton_solve(
    x: jax.Array,
    labels: jax.Array,
    teacher_logits: jax.Array,
    l2: float | jax.Array,
    ce_weight: float | jax.Array,
    k: float | jax.Array,
    temperature: float | jax.Array,
    n_classes: int,
    iterations: int = DEFAULT_ITERATIONS,
    tol: float = DEFAULT_TOL,
    kd_loss: str = "kl",
) -> SoftmaxErmFit:
    """Converged ridge ERM of a C-class linear softmax model with knowledge distillation.

    Minimises, over logit weights W (d, C) and biases b (C,), with l_i = W^T x_i + b,

        R(W, b) = (1/n) sum_i [ c CE(y_i, l_i) + k T^2 KL(softmax(t_i/T) || softmax(l_i/T)) ]
                  + l2 ||W||_F^2,

    CE(y, l) = -log softmax(l)_y, t_i the teacher's logits (n, C), c = ``ce_weight``, k the
    effective KD weight (:func:`softmax_effective_kd_weight`); with ``kd_loss='mse'`` the KD term is
    k |P (l_i - t_i)|^2 (P the sum-zero projector; T unused).  The bias is not penalised.  For two
    classes the minimiser's margin weights w_1 - w_0 are :func:`newton_solve`'s theta at the same
    ``l2`` (l2 ||W||^2 = (l2/2) ||w_1 - w_0||^2 at the optimum w_0 = -w_1), so ``l2`` means the same
    as there.  R is invariant under a common shift of the logits; the solve runs in the sum-zero
    coordinates g = B^T l (B an orthonormal basis of the sum-zero subspace, W = Theta B^T,
    b = B beta), where R is strictly convex in (Theta, beta) for l2 > 0 and the ridge is
    l2 ||Theta||_F^2.

    Damped Newton as :func:`newton_solve`: the Hessian over the (d + 1)(C - 1) unknowns is
    (1/n) sum_i (x1_i x1_i^T) (x) B^T H_i B + 2 l2 (features only), H_i = c J(p_i) + k J(r_i)
    (+ 2k P for the MSE), J(p) = diag(p) - p p^T, p_i = softmax(l_i), r_i = softmax(l_i / T); the
    gradient in l is c (p_i - e_{y_i}) + k T (r_i - softmax(t_i / T)) (+ 2k P (l_i - t_i)).  A
    Cholesky solve, then the largest step 2^-j meeting Armijo's condition; stops at
    max|grad R| <= tol * TARGET_FACTOR, when no step decreases R, or after ``iterations`` steps.
    ``labels`` (n,) int in [0, C); ``n_classes``, ``iterations``, ``tol``, ``kd_loss`` static.
    """
    n, d = x.shape
    dtype = x.dtype
    C = n_classes
    basis = jnp.asarray(_sum_zero_basis(C), dtype)  # (C, C-1)
    x1 = jnp.concatenate([x, jnp.ones((n, 1), dtype)], axis=1)
    onehot = jax.nn.one_hot(labels, C, dtype=dtype)
    t = teacher_logits.astype(dtype)
    target = jax.nn.softmax(t / temperature, axis=-1)
    log_target = jax.nn.log_softmax(t / temperature, axis=-1)
    penalty = jnp.concatenate([jnp.ones(d, dtype), jnp.zeros(1, dtype)])[:, None] * l2  # (d+1, 1)
    size = (d + 1) * (C - 1)
    steps = 2.0 ** -jnp.arange(LINE_SEARCH_STEPS, dtype=dtype)

    def logits_of(w):  # w (..., d+1, C-1) -> (..., n, C)
        return jnp.einsum("ia,...ac,kc->...ik", x1, w, basis)

    def total(logits, w):
        ce = -jnp.sum(onehot * jax.nn.log_softmax(logits, axis=-1), axis=-1)
        if kd_loss == "mse":
            diff = logits - t
            diff = diff - jnp.mean(diff, axis=-1, keepdims=True)
            kd = jnp.sum(diff**2, axis=-1)
        else:
            log_s = jax.nn.log_softmax(logits / temperature, axis=-1)
            kd = temperature**2 * jnp.sum(target * (log_target - log_s), axis=-1)
        data = jnp.mean(ce_weight * ce + k * kd, axis=-1)
        return data + jnp.sum(penalty * w**2, axis=(-2, -1))

    def grad_logits(logits):
        p = jax.nn.softmax(logits, axis=-1)
        g = ce_weight * (p - onehot)
        if kd_loss == "mse":
            diff = logits - t
            g = g + 2.0 * k * (diff - jnp.mean(diff, axis=-1, keepdims=True))
        else:
            g = g + k * temperature * (jax.nn.softmax(logits / temperature, axis=-1) - target)
        return g, p

    def gradient(w, logits):
        g, p = grad_logits(logits)
        return x1.T @ (g @ basis) / n + 2.0 * penalty * w, p

    def jac(p):
        return p[:, :, None] * (jnp.eye(C, dtype=dtype) - p[:, None, :])

    def body(state):
        w, logits, it, _, _ = state
        g, p = gradient(w, logits)
        H = ce_weight * jac(p)
        if kd_loss == "mse":
            H = H + 2.0 * k * (jnp.eye(C, dtype=dtype) - 1.0 / C)
        else:
            H = H + k * jac(jax.nn.softmax(logits / temperature, axis=-1))
        hg = jnp.einsum("kc,ikl,le->ice", basis, H, basis)  # (n, C-1, C-1)
        hess = jnp.einsum("ia,ib,ice->acbe", x1, x1, hg).reshape(size, size) / n
        hess = hess + jnp.diag(jnp.broadcast_to(2.0 * penalty, (d + 1, C - 1)).reshape(-1))
        chol = jax.scipy.linalg.cho_factor(hess, lower=True)
        dw = -jax.scipy.linalg.cho_solve(chol, g.reshape(-1)).reshape(d + 1, C - 1)
        dlogits = logits_of(dw)
        values = total(logits[None] + steps[:, None, None] * dlogits[None], w[None] + steps[:, None, None] * dw[None])
        slope = jnp.sum(g * dw)
        ok = values <= total(logits, w) + ARMIJO * steps * slope
        step = steps[jnp.minimum(jnp.argmax(ok), LINE_SEARCH_STEPS - 1)]
        step = jnp.where(jnp.any(ok), step, steps[-1])
        w = w + step * dw
        logits = logits + step * dlogits
        g_new, _ = gradient(w, logits)
        return w, logits, it + 1, jnp.max(jnp.abs(g_new)), ~jnp.any(ok)

    def cond(state):
        _, _, it, gnorm, stalled = state
        return (it < iterations) & (gnorm > tol * TARGET_FACTOR) & ~stalled

    w0 = jnp.zeros((d + 1, C - 1), dtype)
    logits0 = jnp.zeros((n, C), dtype)
    g0, _ = gradient(w0, logits0)
    state = (w0, logits0, jnp.int32(0), jnp.max(jnp.abs(g0)), jnp.asarray(False))
    w, _, it, _, _ = jax.lax.while_loop(cond, body, state)
    g_final, _ = gradient(w, logits_of(w))
    gnorm = jnp.max(jnp.abs(g_final))
    weights = w[:d] @ basis.T
    bias = basis @ w[d]
    return SoftmaxErmFit(weights, bias, gnorm <= tol, it, gnorm)
