"""Unit tests of the theory: formulas against independent computations, limits and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit, ndtr

import mfh_sim
from mfh_sim.theory import (
    complementarity,
    linear_student,
    predict,
    predict_limit,
    sheppard_accuracy,
)
from mfh_sim.theory.criteria import student_label_information, teacher_student_information
from mfh_sim.theory.population import population_accuracies
from mfh_sim.theory.quadrature import Blocks, logistic_slope, solve_teacher_scale, split_rule
from mfh_sim.venn import VennConfig


def fig2(o: int, **knobs):
    return mfh_sim.make_config(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25, dim_b=50, **knobs)


# ------------------------------------------------------------------------------------ population
def test_symmetric_teacher_is_three_quarters():
    # X ~ Beta(5, 5) and arccos(sqrt(X)) + arccos(sqrt(1 - X)) = pi/2, so E[arccos sqrt X] = pi/4.
    for o in (0, 3, 10):
        assert predict_limit(fig2(o))["teacher_acc"] == pytest.approx(0.75, abs=1e-9)


def test_ones_hyperplane_is_exact_sheppard():
    config = mfh_sim.make_config(shared=3, a_only=5, b_only=2, unseen=4, hyperplane="ones")
    p = predict_limit(config)
    assert p["teacher_acc"] == pytest.approx(1 - math.acos(math.sqrt(8 / 14)) / math.pi, abs=1e-12)
    assert p["no_kd_acc"] == pytest.approx(1 - math.acos(math.sqrt(5 / 14)) / math.pi, abs=1e-12)
    # Mixed KD at T = 1 (paper: k = 1/2) loads 1.5 on w_G and 1 on w_B.
    rho = (1.5 * 3 + 2) / math.sqrt(1.5**2 * 3 + 2) / math.sqrt(14)
    assert p["kd_acc"] == pytest.approx(1 - math.acos(rho) / math.pi, abs=1e-9)


def test_quadrature_matches_dirichlet_sampling():
    """The Gauss-Jacobi product rule against plain Monte Carlo over Gaussian hyperplanes.

    200,000 hyperplanes: the Monte Carlo SE of each mean is sd/sqrt(2e5) < 3e-4; 4 SE tolerance.
    """
    blocks = Blocks(3, 5, 4, 2)
    rule = split_rule(blocks, "gaussian")
    quad = population_accuracies(rule, ce_weight=1.0, kd_weight=2.0, temperature=2.0, kd_reduction="batchmean")
    rng = np.random.default_rng(0)
    w2 = rng.standard_normal((200_000, 14)) ** 2
    total = w2.sum(1)
    p_g, p_a, p_b = (w2[:, s].sum(1) / total for s in (slice(0, 3), slice(3, 8), slice(8, 12)))
    from mfh_sim.theory.population import kd_rho, kd_shared_coefficient

    # The KD coefficient is smooth in the teacher's share x: tabulate it and interpolate.
    grid = np.linspace(0.0, 1.0, 2001)
    coef = np.interp(p_g + p_a, grid, kd_shared_coefficient(grid, kd=2.0, temperature=2.0))
    values = {
        "teacher_acc": sheppard_accuracy(np.sqrt(p_g + p_a)),
        "no_kd_acc": sheppard_accuracy(np.sqrt(p_g + p_b)),
        "kd_acc": sheppard_accuracy(kd_rho(p_g, p_b, coef, 1.0)),
    }
    for key, v in values.items():
        se = v.std() / math.sqrt(v.size)
        assert abs(v.mean() - quad[key]) < 4 * se, key


def test_teacher_scale_solves_stationarity():
    rho = np.array([0.1, 0.5, 0.9, 0.999])
    s = solve_teacher_scale(rho)
    # Direct Gauss-Hermite check of s E[sigma'(s xi)] = phi(0) rho on a fine trapezoid grid.
    xi = np.linspace(-12, 12, 200_001)
    dens = np.exp(-xi**2 / 2) / math.sqrt(2 * math.pi)
    for si, ri in zip(s, rho):
        slope = np.trapezoid(expit(si * xi) * (1 - expit(si * xi)) * dens, xi)
        assert si * slope == pytest.approx(ri / math.sqrt(2 * math.pi), rel=1e-7)
    assert solve_teacher_scale(np.array([0.0, 1.0])).tolist() == [0.0, math.inf]
    assert logistic_slope(0.0) == pytest.approx(0.25)


@pytest.mark.parametrize("ce,kd,temperature,reduction", [(1.0, 1.0, 1.0, "paper"), (0.5, 2.0, 3.0, "batchmean"),
                                                        (1.0, 1.0, 0.5, "paper")])
def test_kd_student_is_a_stationary_point(ce, kd, temperature, reduction):
    """The population gradient at linear_student's answer vanishes (independent 3-D quadrature).

    Blocks G, A, B, U are reduced to one standard normal each; y's dependence on the unseen block
    is integrated analytically (Phi), the rest by a 64^3 Gauss-Hermite rule.  This checks the
    Stein reduction and the scalar fixed point, not just the direction.
    """
    venn = VennConfig(shared=2, a_only=3, b_only=2, unseen=1, dim_a=6, dim_b=5)
    # Latent order [B | G | A | U]: w_B = (0.7, 0.4), w_G = (0.8, -0.5), w_A = (1.1, 0.3, -0.9), w_U = 0.6.
    w = np.array([0.7, 0.4, 0.8, -0.5, 1.1, 0.3, -0.9, 0.6])
    out = linear_student(venn.channel_latents_a(), venn.channel_latents_b(), w, ce_weight=ce,
                         kd_weight=kd, temperature=temperature, kd_reduction=reduction)
    theta_s, theta_t = out["student"], out["teacher"]
    block = venn.latent_slices()
    n_g, n_a, n_b, n_u = (np.linalg.norm(w[block[r]]) for r in ("G", "A", "B", "U"))
    g_b, b_b = venn.channels_of("G", "b"), venn.channels_of("B", "b")  # student's channels
    g_a, a_a = venn.channels_of("G", "a"), venn.channels_of("A", "a")  # teacher's channels
    # Margins in block coordinates: student's loading on each block's unit direction.
    s_g = theta_s[g_b] @ w[block["G"]] / n_g
    s_b = theta_s[b_b] @ w[block["B"]] / n_b
    t_g = theta_t[g_a] @ w[block["G"]] / n_g
    t_a = theta_t[a_a] @ w[block["A"]] / n_a
    # The student's weights must lie in span(w_G, w_B) (zero on noise channels):
    assert np.allclose(theta_s[g_b], s_g * w[block["G"]] / n_g)
    assert np.allclose(theta_s[b_b], s_b * w[block["B"]] / n_b)
    noise_b = np.flatnonzero(venn.channel_latents_b() < 0)
    assert noise_b.size > 0 and np.allclose(theta_s[noise_b], 0.0)
    x, wts = np.polynomial.hermite_e.hermegauss(64)
    wts = wts / wts.sum()
    ug, ua, ub = np.meshgrid(x, x, x, indexing="ij")
    weight = wts[:, None, None] * wts[None, :, None] * wts[None, None, :]
    m = s_g * ug + s_b * ub
    t = t_g * ug + t_a * ua
    y = ndtr((n_g * ug + n_a * ua + n_b * ub) / n_u)
    k = kd / (2.0 if reduction == "paper" else 1.0)
    g = ce * (expit(m) - y) + k * temperature * (expit(m / temperature) - expit(t / temperature))
    grad = np.array([np.sum(weight * ug * g), np.sum(weight * ub * g)])
    scale = np.sum(weight * np.abs(ug * g))
    assert np.all(np.abs(grad) < 1e-6 * max(scale, 1e-3)), grad
    # And the teacher's own cross-entropy gradient vanishes along w_G and w_A.
    gt = expit(t) - y
    assert abs(np.sum(weight * ug * gt)) < 1e-6 and abs(np.sum(weight * ua * gt)) < 1e-6


@pytest.mark.parametrize("teacher", ["logistic", "bayes"])
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_pure_kd_reaches_shared_ceiling(teacher, temperature):
    # ce_weight = 0: 1 - arccos(||w_G|| / ||w||) / pi whatever the teacher's scale or temperature.
    for hyperplane in ("ones", "gaussian"):
        p = predict_limit(fig2(4, ce_weight=0.0, temperature=temperature, hyperplane=hyperplane), teacher=teacher)
        assert p["kd_acc"] == pytest.approx(p["pure_kd_acc"], abs=1e-12)
    p = predict_limit(fig2(4, ce_weight=0.0, hyperplane="ones"))
    assert p["kd_acc"] == pytest.approx(1 - math.acos(math.sqrt(4 / 20)) / math.pi, abs=1e-12)


def test_bayes_and_logistic_teachers_agree_at_unit_temperature():
    for o in (2, 6):
        a, b = predict_limit(fig2(o), teacher="logistic"), predict_limit(fig2(o), teacher="bayes")
        assert a["kd_acc"] == pytest.approx(b["kd_acc"], abs=1e-6)


def test_kd_never_beats_no_kd_in_population():
    for o in range(11):
        for kd in (0.5, 1.0, 4.0):
            assert predict_limit(fig2(o, kd_weight=kd))["delta"] <= 1e-12


def test_no_kd_does_not_depend_on_training_knobs():
    a = predict_limit(fig2(3))
    b = predict_limit(fig2(3, kd_weight=3.0, temperature=2.0, learning_rate=0.5, steps=10))
    assert a["teacher_acc"] == b["teacher_acc"] and a["no_kd_acc"] == b["no_kd_acc"]


# --------------------------------------------------------------------------------- finite sample
def test_gcm_crossover_needs_its_geometry_and_grows_with_n():
    from mfh_sim.experiments import fig2_blocks
    from mfh_sim.theory import crossover_gamma_gcm

    geometry = dict(dim_a=25, dim_b=50, overlap_max=10)
    with pytest.raises(TypeError):
        crossover_gamma_gcm(n_train=200)  # no Fig. 2 default: the geometry is an argument
    values = [crossover_gamma_gcm(fig2_blocks, n_train=n, **geometry) for n in (200, 400)]
    assert 0 < values[0] < values[1] < 1
    # Many sizes in one call (their grids in one batch) give each size's own value, to the bit.
    assert crossover_gamma_gcm(fig2_blocks, n_train=[400, 200], **geometry).tolist() == values[::-1]
    for bad in ([200, 1], [True], ["200"]):
        with pytest.raises(ValueError, match="n_train="):
            crossover_gamma_gcm(fig2_blocks, n_train=bad, **geometry)


def test_gcm_crossover_refines_without_solving_the_grid_again(monkeypatch):
    """Brent's method starts from the values at its bracket's ends, which the grid has: the
    refinement reuses them, and still lands where Brent on fresh solves lands, to the bit."""
    from scipy.optimize import brentq

    from mfh_sim.experiments import fig2_blocks
    from mfh_sim.theory import crossover_gamma_gcm, highdim

    solve = highdim.finite_accuracies_many
    solved: list[list[float]] = []

    def recording(items, **options):
        solved.append([problem.shared_channels for _, _, problem, _ in items])
        return solve(items, **options)

    monkeypatch.setattr(highdim, "finite_accuracies_many", recording)
    value = crossover_gamma_gcm(fig2_blocks, n_train=200, dim_a=25, dim_b=50, overlap_max=10)
    grid, refinement = solved[0], [o for call in solved[1:] for o in call]
    assert grid == np.linspace(0, 10, 6).tolist() and refinement
    assert not set(grid) & set(refinement)

    l2 = highdim.gd_effective_l2(0.1, 1000)

    def delta(o: float) -> float:
        problem = highdim.Problem(200, 25, 50, o, l2, l2, 1.0, 0.5, 1.0, True)
        return solve([(fig2_blocks(o), "gaussian", problem, "")], nodes=4)[0]["delta"]

    # The bracket: the grid's neighbours around the refinement's points.
    low, high = max(o for o in grid if o < min(refinement)), min(o for o in grid if o > max(refinement))
    blocks = fig2_blocks(brentq(delta, low, high, xtol=1e-3))
    assert value == blocks.g / (blocks.g + blocks.a + blocks.b)


# ---------------------------------------------------------------------------------- complementarity
def test_complementarity_closed_forms():
    config = mfh_sim.make_config(shared=3, a_only=5, b_only=2, unseen=4, hyperplane="ones")
    p_g, p_a, p_b = 3 / 14, 5 / 14, 2 / 14
    i_ts = -0.5 * math.log(1 - p_g**2 / ((p_g + p_a) * (p_g + p_b)))
    i_sy_gauss = -0.5 * math.log(1 - (p_g + p_b))
    assert complementarity(config, label="gaussian") == pytest.approx(i_ts - i_sy_gauss, abs=1e-12)
    # Binary label: log 2 - E[H(Phi(h / sqrt(1 - p_s)))] by a fine independent grid.
    p_s = p_g + p_b
    h = np.linspace(-12, 12, 400_001)
    q = np.clip(ndtr(h * math.sqrt(p_s / (1 - p_s))), 1e-300, 1 - 1e-16)
    ent = -(q * np.log(q) + (1 - q) * np.log1p(-q))
    i_sy = math.log(2) - np.trapezoid(ent * np.exp(-h**2 / 2) / math.sqrt(2 * math.pi), h)
    assert complementarity(config) == pytest.approx(i_ts - i_sy, abs=1e-9)


def test_complementarity_limits_and_sign():
    assert student_label_information(np.array([0.0, 1.0])).tolist() == pytest.approx([0.0, math.log(2)])
    assert teacher_student_information(np.array([0.0]), np.array([0.5]), np.array([0.5]))[0] == 0.0
    assert complementarity(fig2(10)) == math.inf
    gaps = [complementarity(fig2(o)) for o in range(10)]
    assert gaps[0] < 0 < gaps[9] and all(np.diff(gaps) > 0)


# -------------------------------------------------------------------------------------- bad input
def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="config"):
        predict({"gamma": 0.5})
    with pytest.raises(ValueError, match="config"):
        complementarity(None)
    with pytest.raises(NotImplementedError, match="model='mlp'"):
        predict(fig2(2, model="mlp"))
    with pytest.raises(NotImplementedError, match="ce_weight=0"):
        predict(fig2(2, ce_weight=0.0, kd_weight=0.0))
    with pytest.raises(ValueError, match="teacher="):
        predict(fig2(2), teacher="oracle")
    with pytest.raises(ValueError, match="nodes="):
        predict(fig2(2), nodes=1)
    with pytest.raises(ValueError, match="label="):
        complementarity(fig2(2), label="soft")


def test_theory_for_returns_none_where_not_covered():
    from mfh_sim.simulation import theory_for

    assert theory_for(fig2(2, model="mlp")) is None
    assert theory_for(fig2(2, hyperplane="ones"))["kd_acc"] == predict(fig2(2, hyperplane="ones"))["kd_acc"]


def test_a_declined_simulation_carries_the_reason_not_numbers():
    import mfh_sim

    declined = mfh_sim.simulate(gamma=1.0, alpha=0.0, model="mlp", hidden=4, steps=2, n_test=20, seeds=2)
    assert declined.theory is None and "mlp" in declined.theory_declined
    assert f"theory: declined, {declined.theory_declined}" in str(declined)
    covered = mfh_sim.simulate(gamma=1.0, alpha=0.0, steps=2, n_test=20, seeds=2)
    assert covered.theory_declined is None and covered.theory["delta_limit"] == 0.0


def test_results_carry_theory():
    r = mfh_sim.simulate(shared=2, a_only=3, b_only=3, unseen=2, dim_a=8, dim_b=8, seeds=2, steps=5)
    assert set(r.theory) >= {"teacher_acc", "no_kd_acc", "kd_acc", "delta", "delta_limit"}
    s = mfh_sim.sweep(points=[dict(shared=o, a_only=4 - o, b_only=4 - o, unseen=o) for o in (0, 2)],
                      dim_a=8, dim_b=8, seeds=2, steps=5, hyperplane="ones")
    assert s.theory["kd_acc"].shape == (2,)
    assert s.theory["kd_acc"][1] == pytest.approx(predict(s.configs[1])["kd_acc"])


def test_crossover_from_gains_interpolates_in_overlap():
    from mfh_sim.theory import crossover_from_gains

    # Zero half-way between o = 4 and o = 6 -> o* = 5, gamma* = 5 / 15.
    assert crossover_from_gains([0, 2, 4, 6], [-2.0, -1.0, -0.5, 0.5], n_decisive=20) == pytest.approx(1 / 3)
    assert math.isnan(crossover_from_gains([0, 2], [-1.0, -0.5], n_decisive=20))
    with pytest.raises(ValueError, match="gains"):
        crossover_from_gains([0, 2, 4], [1.0, 2.0], n_decisive=20)


def test_linear_student_with_a_given_teacher():
    venn = VennConfig(shared=2, a_only=3, b_only=2, unseen=1, dim_a=6, dim_b=5)
    # Latent order [B | G | A | U]: w_B = (0.7, 0.4), w_G = (0.8, -0.5), w_A = (1.1, 0.3, -0.9), w_U = 0.6.
    w = np.array([0.7, 0.4, 0.8, -0.5, 1.1, 0.3, -0.9, 0.6])
    kw = dict(kd_weight=1.0, temperature=2.0)
    default = linear_student(venn.channel_latents_a(), venn.channel_latents_b(), w, **kw)
    given = linear_student(venn.channel_latents_a(), venn.channel_latents_b(), w,
                           teacher_weights=default["teacher"], **kw)
    assert np.allclose(given["student"], default["student"], rtol=1e-9)
    # A teacher that puts all its weight on a-only and noise channels teaches nothing shared:
    # the KD student then points along the no-KD direction.
    blind = np.array([0.0, 0.0, 1.0, -2.0, 0.5, 0.3])
    out = linear_student(venn.channel_latents_a(), venn.channel_latents_b(), w, teacher_weights=blind, **kw)
    assert out["kd_acc"] == pytest.approx(out["no_kd_acc"], abs=1e-12)
    assert out["teacher_acc"] < default["teacher_acc"]
