"""Unit tests of the equal-degrees-of-freedom GD map (mfh_sim.theory.gd_map): spectra and limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from mfh_sim.theory import gd_map


def _mp_pdf(x, gamma):
    lo, hi = (1 - math.sqrt(gamma)) ** 2, (1 + math.sqrt(gamma)) ** 2
    return math.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * math.pi * gamma * x), lo, hi


@pytest.mark.parametrize("gamma, tau, t", [(0.5, 0.25, 200.0), (0.77, 0.1, 50.0), (0.25, 1.0, 3.0)])
def test_constant_curvature_is_marchenko_pastur(gamma, tau, t):
    """tau constant: H = tau * Wishart, int exp(-t lambda) dmu and the ridge dof by quadrature."""
    _, lo, hi = _mp_pdf(1.0, gamma)
    pdf = lambda x: _mp_pdf(x, gamma)[0]
    trace = quad(lambda x: math.exp(-t * tau * x) * pdf(x), lo, hi, limit=200)[0]
    dof = quad(lambda x: tau * x / (tau * x + 0.003) * pdf(x), lo, hi, limit=200)[0]
    assert gd_map.gd_trace(t, gamma, tau) == pytest.approx(trace, rel=1e-7, abs=1e-12)
    assert gd_map.ridge_dof(0.003, gamma, tau) == pytest.approx(dof, rel=1e-9)


def test_small_time_moments_of_a_two_point_curvature_law():
    """(1/d) tr exp(-tH) = 1 - t E[tau] + t^2 (gamma E[tau^2] + E[tau]^2) / 2 + O(t^3)."""
    gamma, tau, weight = 0.6, np.array([0.02, 0.3]), np.array([0.3, 0.7])
    m1, m2 = float(weight @ tau), float(gamma * weight @ tau**2 + (weight @ tau) ** 2)
    t = 1e-2
    expansion = 1 - t * m1 + t**2 * m2 / 2
    # The next term is ~t^3 m3 / 6 < 1e-7: the second moment is what the tolerance checks.
    assert gd_map.gd_trace(t, gamma, tau, weight) == pytest.approx(expansion, abs=2e-7)
    assert abs(gd_map.gd_trace(t, gamma, tau, weight) - (1 - t * m1 + t**2 * m2 * 0.9 / 2)) > 2e-7


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_ridge_dof_vanishing_ridge_is_the_rank(gamma):
    """l2 -> 0: the ridge keeps every direction of H's range, rank / d = min(1, n/d)."""
    assert gd_map.ridge_dof(1e-9, gamma, 0.25) == pytest.approx(min(1.0, 1.0 / gamma), abs=1e-5)


@pytest.mark.parametrize("tau, t", [(0.25, 20.0), (0.25, 0.4), (2.0, 1.0)])
def test_isotropic_hessian_has_the_closed_form(tau, t):
    """gamma -> 0 (n >> d): H = tau I, and 1 - exp(-t tau) = tau / (tau + l2) gives
    l2 = tau exp(-t tau) / (1 - exp(-t tau)), which tends to 1/t (the one-ridge map) as t tau -> 0."""
    expected = tau * math.exp(-t * tau) / (-math.expm1(-t * tau))
    assert gd_map.equal_dof_l2(t, 1e-8, tau) == pytest.approx(expected, rel=1e-6)


def test_short_time_limit_is_the_one_ridge_map():
    assert gd_map.equal_dof_l2(1e-3, 0.5, 0.25) * 1e-3 == pytest.approx(1.0, rel=1e-3)


def test_equal_dof_solves_its_equation():
    gamma, tau, weight = 0.7, np.array([0.01, 0.05, 0.2]), np.array([0.2, 0.3, 0.5])
    l2 = gd_map.equal_dof_l2(200.0, gamma, tau, weight)
    assert 0 < l2 < 1 / 200.0  # GD's filter is sharper: less ridge than 1/t
    assert gd_map.ridge_dof(l2, gamma, tau, weight) == pytest.approx(gd_map.gd_dof(200.0, gamma, tau, weight),
                                                                     abs=1e-9)


def test_logistic_map_is_self_consistent():
    """The returned ridge reproduces itself through fixed point -> curvatures -> spectrum."""
    from mfh_sim.theory import gcm

    l2 = gd_map.logistic_l2(0.5, 2.0, 200.0)
    ch = gd_map._logistic_channel(0.5, 2.0, l2)
    tau, w = gd_map.proximal_curvatures(ch, gcm.solve(ch), False)
    assert np.all((tau >= 0) & (tau <= 0.25)) and w.sum() == pytest.approx(1.0, abs=1e-6)
    assert gd_map.equal_dof_l2(200.0, 0.5, tau[0], w[0]) == pytest.approx(l2, rel=3e-3)
    assert gd_map.logistic_l2(0.5, 2.0, 200.0, curvature="init") == pytest.approx(
        gd_map.equal_dof_l2(200.0, 0.5, 0.25))


@pytest.mark.parametrize("call, name", [
    (lambda: gd_map.gd_trace(0.0, 0.5, 0.25), "t="),
    (lambda: gd_map.ridge_dof(0.01, -1.0, 0.25), "gamma="),
    (lambda: gd_map.ridge_dof(0.01, 0.5, [-0.1]), "tau="),
    (lambda: gd_map.ridge_dof(0.01, 0.5, [0.1, 0.2], [0.0, 0.0]), "weight="),
    (lambda: gd_map.logistic_l2(0.5, 2.0, 200.0, curvature="end"), "curvature="),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ------------------------------------------------------- the held-out family's harness (no JAX)
def test_family_seed_draws_another_family_and_build_refuses_a_mixed_cache(tmp_path, theory_family):
    tf = theory_family
    held_out = tf.draw_family(tf.FAMILY_SEED + 1)
    assert held_out != tf.draw_family() and held_out == tf.draw_family(tf.FAMILY_SEED + 1)
    fresh = tf.load_cache(tmp_path / "none.json", family_seed=tf.FAMILY_SEED + 1)
    assert fresh["family_seed"] == tf.FAMILY_SEED + 1 and fresh["family"] == held_out
    path = tmp_path / "cache.json"
    tf.save_cache(fresh, path)
    with pytest.raises(ValueError, match="another family"):  # before any simulation
        tf.build(1, 0, 0, 0, path=path, log=lambda text: None)
