"""The converged C-class softmax ERM solver (mfh_sim.erm.softmax_newton_solve) against independent solvers."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from mfh_sim import erm


def _objective(v, x, y, t, l2, k, T, C, mse):
    """R(W, b) of the solver's docstring on the full (d, C) weights and (C,) biases, float64."""
    n, d = x.shape
    W, b = v[: d * C].reshape(d, C), v[d * C :]
    logits = x @ W + b
    ce = -log_softmax(logits, axis=1)[np.arange(n), y]
    if mse:
        diff = logits - t
        diff -= diff.mean(axis=1, keepdims=True)
        kd = (diff**2).sum(axis=1)
    else:
        q = softmax(t / T, axis=1)
        kd = T**2 * (q * (np.log(q) - log_softmax(logits / T, axis=1))).sum(axis=1)
    return np.mean(ce + k * kd) + l2 * np.sum(W**2)


@pytest.mark.slow  # two compilations of the solver and two L-BFGS solves: ~30 s on a loaded machine
@pytest.mark.parametrize("kd_loss", ["kl", "mse"])
def test_softmax_solver_matches_lbfgs_on_the_full_weights(kd_loss):
    rng = np.random.default_rng(1)
    n, d, C = 150, 20, 4
    x, y, t = rng.standard_normal((n, d)), rng.integers(0, C, n), 2.0 * rng.standard_normal((n, C))
    l2, k, T = 0.01, 0.3, 2.0
    # The simulator's float32 (converged to max|grad R| <= 1e-4): weights within 2e-3 of float64 L-BFGS.
    fit = erm.softmax_newton_solve(jnp.asarray(x, jnp.float32), jnp.asarray(y), jnp.asarray(t, jnp.float32), l2, 1.0,
                                   k, T, C, kd_loss=kd_loss)
    weights, bias = np.asarray(fit.weights, np.float64), np.asarray(fit.bias, np.float64)
    assert bool(fit.converged)
    ref = minimize(_objective, np.zeros(d * C + C), args=(x, y, t, l2, k, T, C, kd_loss == "mse"),
                   method="L-BFGS-B", options=dict(maxiter=5000, gtol=1e-10, ftol=1e-15))
    W, b = ref.x[: d * C].reshape(d, C), ref.x[d * C :]
    # Softmax ignores a common shift: compare the sum-zero parts (the solver's are sum-zero).
    assert weights == pytest.approx(W - W.mean(axis=1, keepdims=True), abs=2e-3)
    assert bias == pytest.approx(b - b.mean(), abs=2e-3)
    assert np.abs(weights.sum(axis=1)).max() < 1e-5


def test_two_classes_give_the_margin_solver_and_three_converge():
    rng = np.random.default_rng(2)
    n, d = 120, 15
    x, y, t = (np.asarray(a, np.float32) for a in (rng.standard_normal((n, d)), rng.integers(0, 2, n),
                                                    rng.standard_normal(n)))
    margin = erm.newton_solve(jnp.asarray(x), jnp.asarray(y), jnp.asarray(t), 0.02, 1.0, 0.3, 1.5)
    two = erm.softmax_newton_solve(jnp.asarray(x), jnp.asarray(y.astype(np.int32)),
                                   jnp.asarray(np.stack([-t / 2, t / 2], 1)), 0.02, 1.0, 0.3, 1.5, 2)
    # l2 ||W||^2 is (l2/2) ||w_1 - w_0||^2 at the optimum; the KL of two logits is the margin's.
    assert np.asarray(two.weights[:, 1] - two.weights[:, 0]) == pytest.approx(np.asarray(margin.theta), abs=2e-4)
    assert float(two.bias[1] - two.bias[0]) == pytest.approx(float(margin.bias), abs=2e-4)
    fit = erm.softmax_newton_solve(jnp.asarray(x, jnp.float32), jnp.asarray(y.astype(np.int32)),
                                   jnp.zeros((n, 3), jnp.float32),
                                   0.01, 1.0, 0.0, 1.0, 3)
    assert bool(fit.converged) and int(fit.iterations) < 20


def test_effective_kd_weight_matches_the_simulators_losses():
    # 'paper' KL is averaged over the C classes; the logit MSE's mean over C logits.
    assert erm.softmax_effective_kd_weight(1.5, 3, "paper", "kl") == pytest.approx(0.5)
    assert erm.softmax_effective_kd_weight(1.5, 3, "batchmean", "kl") == pytest.approx(1.5)
    assert erm.softmax_effective_kd_weight(1.5, 3, "paper", "mse") == pytest.approx(0.5)
    assert erm.softmax_effective_kd_weight(1.0, 2, "paper", "kl") == erm.effective_kd_weight(1.0, "paper", "kl")
    with pytest.raises(ValueError, match="kd_reduction="):
        erm.softmax_effective_kd_weight(1.0, 3, "sum", "kl")
