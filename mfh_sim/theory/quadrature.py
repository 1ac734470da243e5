"""Quadrature rules: expectations over Gaussian hyperplanes and over one Gaussian variable.

Every accuracy of the theory depends on the hyperplane ``w`` only through the shares of its
squared norm that fall in each decisive block,

    p_G = ||w_G||^2 / ||w||^2,  p_A, p_B, p_U likewise   (p_G + p_A + p_B + p_U = 1).

For ``w ~ N(0, I_K)`` these shares are Dirichlet(|G|/2, |A|/2, |B|/2, |U|/2).  By the aggregation
property of the Dirichlet law they factor into three *independent* Beta variables

    X = p_G + p_A ~ Beta((|G|+|A|)/2, (|B|+|U|)/2)   the teacher's share (rho_T^2)
    f = p_G / X   ~ Beta(|G|/2, |A|/2)               the shared part of the teacher's share
    h = p_B / (1 - X) ~ Beta(|B|/2, |U|/2)           the student's part of the rest

so an expectation over hyperplanes is a product Gauss-Jacobi rule in (X, f, h): no sampling.  A
block of size 0 makes its Beta variable a constant (0 or 1).  Block sizes may be real numbers
(the rule interpolates between Venn diagrams, which the crossover solver uses).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import roots_jacobi

PHI0 = 1.0 / math.sqrt(2.0 * math.pi)  # standard normal density at 0
DEFAULT_NODES = 24  # Gauss-Jacobi nodes per Beta variable (24^3 = 13,824 points at most)


class Blocks(NamedTuple):
    """Sizes (>= 0, real allowed) of the decisive blocks G, A, B, U."""

    g: float
    a: float
    b: float
    u: float

    @property
    def total(self) -> float:
        return self.g + self.a + self.b + self.u


class SplitRule(NamedTuple):
    """Quadrature points of the shares (p_G, p_A, p_B, p_U), flattened, with weights summing to 1.

    ``x`` is p_G + p_A (kept separately because the teacher's scale depends on it alone).
    """

    p_g: np.ndarray
    p_a: np.ndarray
    p_b: np.ndarray
    p_u: np.ndarray
    x: np.ndarray
    weight: np.ndarray


def beta_rule(a: float, b: float, nodes: int = DEFAULT_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi rule for E[f(V)], V ~ Beta(a, b) (a, b >= 0; a zero parameter is a point mass).

    Beta(a, b) has density proportional to v^(a-1) (1-v)^(b-1) on [0, 1]; with v = (1+t)/2 the
    weight is (1-t)^(b-1) (1+t)^(a-1), the Jacobi weight with parameters (b-1, a-1).
    """
    if a <= 0.0 and b <= 0.0:
        return np.zeros(1), np.ones(1)  # both blocks empty: the value is irrelevant, use 0
    if a <= 0.0:
        return np.zeros(1), np.ones(1)
    if b <= 0.0:
        return np.ones(1), np.ones(1)
    t, w = roots_jacobi(nodes, b - 1.0, a - 1.0)
    return (1.0 + t) / 2.0, w / w.sum()


def split_rule(blocks: Blocks, hyperplane: str, nodes: int = DEFAULT_NODES) -> SplitRule:
    """Quadrature over hyperplanes: 'gaussian' (Dirichlet shares) or 'ones' (shares = sizes / K)."""
    total = blocks.total
    if total <= 0:
        raise ValueError("the decisive blocks are all empty: there is no label direction")
    if hyperplane == "ones":
        p = np.array([blocks.g, blocks.a, blocks.b, blocks.u], dtype=np.float64)[:, None] / total
        return SplitRule(p[0], p[1], p[2], p[3], p[0] + p[1], np.ones(1))
    if hyperplane != "gaussian":
        raise ValueError(f"hyperplane={hyperplane!r} is not allowed: use 'gaussian' or 'ones'")
    x, wx = beta_rule((blocks.g + blocks.a) / 2.0, (blocks.b + blocks.u) / 2.0, nodes)
    f, wf = beta_rule(blocks.g / 2.0, blocks.a / 2.0, nodes)
    h, wh = beta_rule(blocks.b / 2.0, blocks.u / 2.0, nodes)
    X, F, H = (v.ravel() for v in np.meshgrid(x, f, h, indexing="ij"))
    W = (wx[:, None, None] * wf[None, :, None] * wh[None, None, :]).ravel()
    return SplitRule(X * F, X * (1.0 - F), (1.0 - X) * H, (1.0 - X) * (1.0 - H), X, W)


# ----------------------------------------------------------- one-dimensional Gaussian expectations
_GH_T, _GH_W = np.polynomial.hermite_e.hermegauss(96)
_GH_W = _GH_W / _GH_W.sum()
# Trapezoid grid for the logistic-density representation (analytic integrand: exponential accuracy).
_X_GRID = np.linspace(-60.0, 60.0, 2401)
_X_STEP = _X_GRID[1] - _X_GRID[0]
_LOGISTIC_DENSITY = 0.25 / np.cosh(_X_GRID / 2.0) ** 2


def logistic_slope(scale: np.ndarray | float) -> np.ndarray:
    """E[sigma'(s xi)] for xi ~ N(0, 1), elementwise in s >= 0 (sigma the logistic function).

    For s <= 2 by Gauss-Hermite quadrature in xi; for s > 2 as the integral of sigma'(x)
    phi(x/s)/s over x (trapezoid rule on an analytic integrand), which stays accurate as s grows.
    Limits: 1/4 at s = 0, and phi(0)/s as s -> infinity.
    """
    s = np.atleast_1d(np.asarray(scale, dtype=np.float64))
    out = np.empty_like(s)
    small = s <= 2.0
    if small.any():
        z = s[small, None] * _GH_T[None, :]
        out[small] = (0.25 / np.cosh(z / 2.0) ** 2) @ _GH_W
    big = ~small & np.isfinite(s)
    if big.any():
        sb = s[big, None]
        gauss = np.exp(-0.5 * (_X_GRID[None, :] / sb) ** 2) * PHI0 / sb
        out[big] = (gauss * _LOGISTIC_DENSITY[None, :]).sum(axis=1) * _X_STEP
    out[np.isinf(s)] = 0.0
    return out.reshape(np.shape(scale))


def logistic_slope_times_scale(scale: np.ndarray | float) -> np.ndarray:
    """s E[sigma'(s xi)] = integral of sigma'(x) phi(x/s) dx: increasing from 0 to phi(0) (s = inf)."""
    s = np.asarray(scale, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = s * logistic_slope(s)
    return np.where(np.isinf(s), PHI0, out)


def _slope_curvature(s: np.ndarray) -> np.ndarray:
    """E[sigma'(s xi) xi^2] for xi ~ N(0, 1), s > 0: the derivative of s E[sigma'(s xi)] in s.

    The same two rules as :func:`logistic_slope` (Gauss-Hermite for s <= 2, the trapezoid rule on
    integral sigma'(x) phi(x/s) x^2 / s^3 dx above), so Newton's method sees the derivative of the
    function it solves; only the step, never the root, depends on it.
    """
    out = np.empty_like(s)
    small = s <= 2.0
    if small.any():
        z = s[small, None] * _GH_T[None, :]
        out[small] = (0.25 / np.cosh(z / 2.0) ** 2) @ (_GH_W * _GH_T**2)
    big = ~small
    if big.any():
        sb = s[big, None]
        u = _X_GRID[None, :] / sb
        gauss = np.exp(-0.5 * u**2) * PHI0 * u**2 / sb
        out[big] = (gauss * _LOGISTIC_DENSITY[None, :]).sum(axis=1) * _X_STEP
    return out


def solve_teacher_scale(rho: np.ndarray | float) -> np.ndarray:
    """Standard deviation s of the population logistic teacher's logit, for visible share rho.

    The population minimiser of the cross-entropy of a linear logistic model on Gaussian inputs,
    with labels y = 1[w.z > 0] of which the model sees the part rho = ||w_S|| / ||w|| in [0, 1],
    is theta = s w_S / ||w_S|| with s solving (Stein's lemma, see docs/theory.md)

        s E[sigma'(s xi)] = phi(0) rho.

    The left side increases from 0 to phi(0), so s is unique; s = 0 at rho = 0 and s = inf at
    rho = 1 (separable data: the logistic minimiser does not exist).  Solved in u = log s by
    Newton's method inside a bisection bracket (a step leaving the bracket bisects instead): the
    root of the same discretised left side that 80 plain bisections found before, to ~1e-15
    relative, in about a tenth of the evaluations (this solve was ~90% of predict_limit's time).
    """
    rho = np.atleast_1d(np.asarray(rho, dtype=np.float64))
    target = PHI0 * rho
    inner = (rho > 0.0) & (rho < 1.0)
    low = np.full(int(inner.sum()), -30.0)
    high = np.full_like(low, 40.0)
    goal = target[inner]
    # A start near the root: s phi(0) / sqrt(1 + (pi/8) s^2)... inverted (probit approximation of
    # the logistic slope), clipped into the bracket.
    ratio = np.clip(goal / PHI0, 0.0, 1.0 - 1e-16)
    u = np.log(np.maximum(ratio / np.sqrt(np.maximum(1.0 - ratio**2, 1e-300) * math.pi / 8.0), 1e-13))
    u = np.clip(u, -29.0, 39.0)
    todo = np.arange(low.size)
    for _ in range(100):
        if todo.size == 0:
            break
        s = np.exp(u[todo])
        value = logistic_slope_times_scale(s) - goal[todo]
        above = value > 0
        high[todo] = np.where(above, u[todo], high[todo])
        low[todo] = np.where(above, low[todo], u[todo])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = u[todo] - value / (s * _slope_curvature(s))
        mid = 0.5 * (low[todo] + high[todo])
        ok = np.isfinite(step) & (step >= low[todo]) & (step <= high[todo])
        new = np.where(ok, step, mid)
        moved = np.abs(new - u[todo]) > 1e-14 * np.maximum(1.0, np.abs(u[todo]))
        u[todo] = new
        # Where the left side is flat (large s) its rounding noise, not the root, sets the step:
        # stop once the residual is at that noise level.
        todo = todo[moved & (high[todo] - low[todo] > 1e-14) & (np.abs(value) > 1e-15 * goal[todo])]
    s = np.zeros_like(rho)
    s[inner] = np.exp(u)
    s = np.where(rho >= 1.0, np.inf, s)
    return s
