"""Converged ridge-logistic ERM with KD (mfh_sim.erm): optimality, agreement, KD, vmap, errors."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from mfh_sim import erm
from mfh_sim.losses import distillation
from mfh_sim.train import margin_logits

#: One problem shape for most tests: each new shape compiles the solver again (seconds each).
N, D = 80, 10


def _problem(seed: int = 0, n: int = N, d: int = D, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal(d)
    y = (x @ w + noise * np.sqrt(d) * rng.standard_normal(n) > 0).astype(np.float32)
    # A teacher margin correlated with the label direction but not realisable from x alone.
    t = (0.5 * x @ w + rng.standard_normal(n)).astype(np.float32)
    return x, y, t


def _reference_objective(params, x, y, t, *, l2, ce_weight, kd_weight, temperature, reduction):
    """The objective written with the simulator's own two-logit loss (independent of erm.py)."""
    theta, bias = params
    h = x @ theta + bias
    loss = distillation(margin_logits(h), y.astype(jnp.int32), margin_logits(t), ce_weight=ce_weight,
                        kd_weight=kd_weight, temperature=temperature, reduction=reduction)
    return loss + 0.5 * l2 * jnp.sum(theta**2)


@pytest.mark.parametrize(
    "l2, ce_weight, kd_weight, temperature, reduction",
    [(0.01, 1.0, 0.0, 1.0, "paper"), (0.01, 1.0, 1.0, 1.0, "paper"), (0.001, 1.0, 2.0, 4.0, "paper"),
     (0.1, 0.5, 1.5, 2.0, "batchmean"), (0.01, 0.0, 1.0, 1.0, "paper")],
)
def test_gradient_vanishes_at_solution(l2, ce_weight, kd_weight, temperature, reduction):
    x, y, t = _problem()
    fit = erm.fit_erm(x, y, l2=l2, teacher_margins=t, ce_weight=ce_weight, kd_weight=kd_weight,
                      temperature=temperature, kd_reduction=reduction)
    assert bool(fit.converged)
    grad = jax.grad(_reference_objective)(
        (fit.theta, fit.bias), x, y, t, l2=l2, ce_weight=ce_weight, kd_weight=kd_weight,
        temperature=temperature, reduction=reduction,
    )
    assert float(jnp.max(jnp.abs(grad[0]))) < 1e-4
    assert abs(float(grad[1])) < 1e-4
    # erm.objective is the same function as the simulator's loss plus the ridge.
    ours = erm.objective(fit.theta, fit.bias, x, y, l2=l2, teacher_margins=t, ce_weight=ce_weight,
                         kd_weight=kd_weight, temperature=temperature, kd_reduction=reduction)
    reference = _reference_objective((fit.theta, fit.bias), x, y, t, l2=l2, ce_weight=ce_weight,
                                     kd_weight=kd_weight, temperature=temperature, reduction=reduction)
    # KL and soft-target CE differ by the teacher's entropy only; we use KL as the simulator does.
    assert float(ours) == pytest.approx(float(reference), abs=1e-5)


def test_agrees_with_scipy_minimize():
    x, y, t = _problem(seed=1)
    x64, y64, t64 = (np.asarray(a, np.float64) for a in (x, y, t))
    l2, kd, temperature = 0.02, 1.0, 2.0
    k = kd / 2.0  # 'paper' reduction

    def f(params):
        theta, b = params[:-1], params[-1]
        h = x64 @ theta + b
        ce = np.logaddexp(0.0, h) - y64 * h
        q = 1.0 / (1.0 + np.exp(-t64 / temperature))
        soft = -(q * -np.logaddexp(0.0, -h / temperature) + (1 - q) * -np.logaddexp(0.0, h / temperature))
        return np.mean(ce + k * temperature**2 * soft) + 0.5 * l2 * theta @ theta

    reference = minimize(f, np.zeros(11), method="BFGS", options={"gtol": 1e-10, "maxiter": 10_000}).x
    fit = erm.fit_erm(x, y, l2=l2, teacher_margins=t, kd_weight=kd, temperature=temperature)
    np.testing.assert_allclose(np.asarray(fit.theta), reference[:-1], atol=2e-4)
    assert float(fit.bias) == pytest.approx(reference[-1], abs=2e-4)


def test_kd_moves_student_towards_teacher():
    x, y, t = _problem(seed=2)
    distance = []
    for kd_weight in (0.0, 1.0, 4.0, 16.0):
        fit = erm.fit_erm(x, y, l2=0.01, teacher_margins=t, kd_weight=kd_weight)
        distance.append(float(jnp.mean((x @ fit.theta + fit.bias - t) ** 2)))
    assert all(a > b for a, b in zip(distance, distance[1:]))


def test_pure_kd_recovers_a_realisable_teacher():
    x, y, _ = _problem(seed=3)
    rng = np.random.default_rng(3)
    theta_t, bias_t = rng.standard_normal(D).astype(np.float32), np.float32(0.3)
    t = x @ theta_t + bias_t
    fit = erm.fit_erm(x, y, l2=1e-6, teacher_margins=t, ce_weight=0.0, kd_weight=2.0, temperature=2.0)
    np.testing.assert_allclose(np.asarray(fit.theta), theta_t, atol=2e-2)
    assert float(fit.bias) == pytest.approx(0.3, abs=2e-2)


def test_separable_data_converges_with_ridge():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, D)).astype(np.float32)
    y = (x @ rng.standard_normal(D) > 0).astype(np.float32)  # noise-free labels: separable
    fit = erm.fit_erm(x, y, l2=1e-3)
    assert bool(fit.converged)
    assert float(jnp.mean(((x @ fit.theta + fit.bias) > 0) == (y == 1))) == 1.0


def test_vmap_over_seeds_matches_loop():
    problems = [_problem(seed=s) for s in range(4)]
    xs, ys, ts = (np.stack(a) for a in zip(*problems))
    batched = jax.jit(jax.vmap(lambda x, y, t: erm.fit_erm(x, y, l2=0.05, teacher_margins=t, kd_weight=1.0)))(
        xs, ys, ts)
    for i, (x, y, t) in enumerate(problems):
        single = erm.fit_erm(x, y, l2=0.05, teacher_margins=t, kd_weight=1.0)
        # The batch iterates until its slowest member converges, so members may take a step more
        # than alone: both are minimisers to tol (max|grad| <= 1e-4), i.e. equal to ~tol / l2.
        np.testing.assert_allclose(np.asarray(batched.theta[i]), np.asarray(single.theta), atol=2e-3)
    assert bool(jnp.all(batched.converged))


def test_masked_rows_and_zero_columns_leave_the_minimiser_unchanged():
    x, y, t = _problem(seed=5, n=50, d=7)
    plain = erm.fit_erm(x, y, l2=0.01, teacher_margins=t, kd_weight=1.0, temperature=2.0)
    x_pad = np.zeros((N, D), np.float32)
    x_pad[:50, :7] = x
    y_pad, t_pad, mask = (np.zeros(N, np.float32) for _ in range(3))
    y_pad[:50], t_pad[:50], mask[:50] = y, t, 1.0
    padded = erm.newton_solve(x_pad, y_pad, t_pad, 0.01, 1.0, 0.5, 2.0, row_mask=mask)
    np.testing.assert_allclose(np.asarray(padded.theta[:7]), np.asarray(plain.theta), atol=1e-4)
    assert float(jnp.max(jnp.abs(padded.theta[7:]))) == 0.0
    assert float(padded.bias) == pytest.approx(float(plain.bias), abs=1e-4)


def _scipy_fit(x, y, t, *, l2, ce_weight=1.0, k=0.0, temperature=1.0):
    """Float64 BFGS minimiser of the ERM objective, written independently of erm.py."""
    x, y, t = (np.asarray(a, np.float64) for a in (x, y, t))

    def f(params):
        theta, b = params[:-1], params[-1]
        h = x @ theta + b
        ce = np.logaddexp(0.0, h) - y * h
        q = 1.0 / (1.0 + np.exp(-t / temperature))
        soft = q * np.logaddexp(0.0, -h / temperature) + (1 - q) * np.logaddexp(0.0, h / temperature)
        return np.mean(ce_weight * ce + k * temperature**2 * soft) + 0.5 * l2 * theta @ theta

    return minimize(f, np.zeros(x.shape[1] + 1), method="BFGS", options={"gtol": 1e-9, "maxiter": 10_000}).x


def test_optimizer_erm_trains_the_minimisers_on_the_protocols_draws():
    # simulate(optimizer='erm') against independent float64 minimisers fitted on the same draws.
    import mfh_sim
    from mfh_sim.engine import run_keys
    from mfh_sim.protocols.paper import draw_run, inputs_of, static_of

    kwargs = dict(shared=3, a_only=2, b_only=2, unseen=1, dim_a=8, dim_b=9, n_train=30, n_test=400,
                  fresh_student_sample=True, kd_weight=1.5, temperature=2.0, optimizer="erm", l2=0.05)
    result = mfh_sim.simulate(seeds=2, **kwargs)
    config = mfh_sim.make_config(**kwargs)
    layout, knobs = inputs_of(config)
    for seed, key in enumerate(run_keys(0, np.arange(2), 0)):
        draws = draw_run(jnp.asarray(key), layout, knobs, static_of(config))
        train, students, test = draws.train, draws.students, draws.test
        teacher = _scipy_fit(train.x_a, train.labels, np.zeros(30), l2=0.05)
        t = np.asarray(students.x_a, np.float64) @ teacher[:-1] + teacher[-1]
        no_kd = _scipy_fit(students.x_b, students.labels, t, l2=0.05)
        kd = _scipy_fit(students.x_b, students.labels, t, l2=0.05, k=0.75, temperature=2.0)
        labels = np.asarray(test.labels)
        for name, fit, x in (("teacher_acc", teacher, test.x_a), ("no_kd_acc", no_kd, test.x_b),
                             ("kd_acc", kd, test.x_b)):
            expected = np.mean(((np.asarray(x, np.float64) @ fit[:-1] + fit[-1]) > 0) == labels)
            # float32 vs float64 minimisers may disagree on a test point sitting on the boundary.
            assert abs(getattr(result, name)[seed] - expected) <= 1.0 / 400 + 1e-9, name


def _scipy_softmax_fit(x, y, t, *, n_classes, l2, kd_weight=0.0, temperature=1.0):
    """Float64 BFGS minimiser of the C-class objective, written from the simulator's loss (CE +
    kd_weight T^2 KL averaged over samples and classes, the 'paper' reduction) + l2 ||W||_F^2,
    independently of erm.py.  Returns the (d + 1, C) weights, the bias last."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    onehot = np.eye(n_classes)[np.asarray(y)]
    log_softmax = lambda z: z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    log_q = log_softmax(t / temperature)

    def f(flat):
        w = flat.reshape(x.shape[1] + 1, n_classes)
        logits = x @ w[:-1] + w[-1]
        ce = -np.sum(onehot * log_softmax(logits), axis=1)
        kl = np.sum(np.exp(log_q) * (log_q - log_softmax(logits / temperature)), axis=1)
        return np.mean(ce + kd_weight * temperature**2 * kl / n_classes) + l2 * np.sum(w[:-1] ** 2)

    start = np.zeros((x.shape[1] + 1) * n_classes)
    return minimize(f, start, method="BFGS", options={"gtol": 1e-9, "maxiter": 20_000}).x.reshape(-1, n_classes)


def test_optimizer_erm_trains_the_c_class_minimisers_on_the_protocols_draws():
    # simulate(optimizer='erm', n_classes=3) against independent float64 softmax minimisers fitted on
    # the same draws: the wiring of the C-class solver (its KD weight's normalisation by C, the
    # teacher's logits, the ridge) to the simulator's own loss.
    import mfh_sim
    from mfh_sim.engine import run_keys
    from mfh_sim.protocols.paper import draw_run, inputs_of, static_of

    kwargs = dict(shared=3, a_only=2, b_only=2, unseen=1, dim_a=8, dim_b=9, n_train=40, n_test=400,
                  n_classes=3, kd_weight=3.0, temperature=2.0, optimizer="erm", l2=0.02)
    result = mfh_sim.simulate(seeds=2, theory=False, **kwargs)
    config = mfh_sim.make_config(**kwargs)
    layout, knobs = inputs_of(config)
    fit = lambda x, y, t, **kw: _scipy_softmax_fit(x, y, t, n_classes=3, l2=0.02, **kw)
    scores = lambda w, x: np.asarray(x, np.float64) @ w[:-1] + w[-1]
    for seed, key in enumerate(run_keys(0, np.arange(2), 0)):
        draws = draw_run(jnp.asarray(key), layout, knobs, static_of(config))
        train, students, test = draws.train, draws.students, draws.test
        teacher = fit(train.x_a, train.labels, np.zeros((40, 3)))
        t = scores(teacher, students.x_a)
        no_kd = fit(students.x_b, students.labels, t)
        kd = fit(students.x_b, students.labels, t, kd_weight=3.0, temperature=2.0)
        labels = np.asarray(test.labels)
        for name, w, x in (("teacher_acc", teacher, test.x_a), ("no_kd_acc", no_kd, test.x_b),
                           ("kd_acc", kd, test.x_b)):
            expected = np.mean(np.argmax(scores(w, x), axis=1) == labels)
            # float32 vs float64 minimisers may disagree on a test point sitting on a boundary.
            assert abs(getattr(result, name)[seed] - expected) <= 1.0 / 400 + 1e-9, name
        # The KD student is not the no-KD one: the test would not see a dropped KD term otherwise.
        assert np.mean(np.argmax(scores(kd, test.x_b), 1) != np.argmax(scores(no_kd, test.x_b), 1)) > 0.01


def test_erm_config_errors_name_the_parameter():
    import mfh_sim

    for kwargs, message in ((dict(optimizer="erm"), "l2=0.0 is not allowed"),
                            (dict(optimizer="erm", l2=0.1, model="mlp", hidden=4), "model='mlp'"),
                            (dict(optimizer="erm", l2=0.1, momentum=0.5), "momentum=0.5"),
                            (dict(l2=0.1), "l2=0.1 is not allowed with optimizer='sgd'")):
        with pytest.raises(ValueError, match=re.escape(message)):
            mfh_sim.make_config(gamma=0.5, alpha=0.5, **kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(l2=0.0), "l2"), (dict(l2=-1.0), "l2"), (dict(l2=None), "l2"), (dict(l2=float("nan")), "l2"),
     (dict(l2=0.1, kd_weight=1.0), "teacher_margins"), (dict(l2=0.1, kd_reduction="sum"), "kd_reduction"),
     (dict(l2=0.1, temperature=0.0), "temperature"), (dict(l2=0.1, ce_weight=-1.0), "ce_weight"),
     (dict(l2=0.1, iterations=0), "iterations"), (dict(l2=0.1, tol=0.0), "tol"),
     (dict(l2=0.1, ce_weight=0.0), "ce_weight")],
)
def test_bad_arguments_raise_naming_the_parameter(kwargs, name):
    x, y, _ = _problem(n=20, d=3)
    with pytest.raises(ValueError, match=name):
        erm.fit_erm(x, y, **kwargs)


def test_bad_shapes_and_labels_raise():
    x, y, t = _problem(n=20, d=3)
    with pytest.raises(ValueError, match="^y "):
        erm.fit_erm(x, y[:-1], l2=0.1)
    with pytest.raises(ValueError, match="^y "):
        erm.fit_erm(x, y * 2.0, l2=0.1)
    with pytest.raises(ValueError, match="teacher_margins"):
        erm.fit_erm(x, y, l2=0.1, teacher_margins=t[:-1], kd_weight=1.0)
    with pytest.raises(ValueError, match="^x "):
        erm.fit_erm(x[0], y, l2=0.1)
    with pytest.raises(ValueError, match="kd_reduction"):
        erm.effective_kd_weight(1.0, "mean")


def test_effective_kd_weight_halves_under_paper_reduction():
    assert erm.effective_kd_weight(1.5, "paper") == 0.75
    assert erm.effective_kd_weight(1.5, "batchmean") == 1.5


# ------------------------------------------------------------------ the family harness (no JAX)
def test_family_is_fixed_and_varies_every_block(theory_family):
    tf = theory_family
    family = tf.draw_family()
    assert family == tf.draw_family() and len(family) >= 40
    for name in ("shared", "a_only", "b_only", "unseen", "shared_nondecisive", "a_nondecisive",
                 "b_nondecisive", "dim_a", "dim_b", "n_train", "kd_weight", "fresh_student_sample"):
        assert len({p[name] for p in family}) > 1, name
    for p in family:
        assert 20 <= p["dim_a"] <= 60 and 20 <= p["dim_b"] <= 60
        assert max(p["dim_a"], p["dim_b"]) + 5 <= p["n_train"] <= 400
        assert 0.5 <= p["kd_weight"] <= 2.0
    corner = tf.large_n_set()[0]
    assert corner["a_only"] == corner["b_only"] == corner["unseen"] == 0 and corner["n_train"] == 20_000


def test_compare_scores_a_perfect_and_a_biased_predictor(theory_family):
    tf = theory_family
    family = tf.draw_family()[:4]
    records = []
    for index, gain in enumerate((0.01, -0.02, 0.005, 0.03)):
        stats = dict(teacher_acc=0.8, no_kd_acc=0.7, kd_acc=0.7 + gain, delta=gain)
        stats.update({f"{k}_se": 0.001 for k in tf.QUANTITIES})
        records.append(dict(set="family", index=index, mode="erm", l2=0.01, seeds=300, failed=0, **stats))
    sims = {"family": family, "large_n": [], "records": records}
    truth = {r["index"]: {k: r[k] for k in tf.QUANTITIES} for r in records}
    seen = []

    def perfect(kwargs, mode):
        seen.append((kwargs["l2"], mode, "shape" in kwargs))
        return truth[[tf.config_kwargs(p) for p in family].index({k: v for k, v in kwargs.items() if k != "l2"})]

    summary = tf.compare(perfect, sims)["summary"][("family", "erm", 0.01)]
    assert seen[0] == (0.01, "erm", False)
    assert summary["gain_rmse"] == 0.0 and summary["pass_all"] == 4 and summary["spearman"] == pytest.approx(1.0)
    assert summary["sign_agree"] == summary["sign_clear"] == 4
    biased = lambda kwargs, mode: {k: v + 0.01 for k, v in perfect(kwargs, mode).items()}
    summary = tf.compare(biased, sims)["summary"][("family", "erm", 0.01)]
    # 1 pt off: beyond 0.15 pt + 3 SE (0.3 pt) for the gain and 0.3 pt + 0.3 pt for the levels.
    assert summary["gain_rmse"] == pytest.approx(0.01) and summary["pass_gain"] == 0 and summary["pass_levels"] == 0
    assert "pt" in tf.format_table(tf.compare(perfect, sims))


# A LAPACK call (the Newton step's Cholesky) inside a loop deadlocks on JAX's CPU runtime when two
# executions are in flight at once, so the engine runs ERM sweeps in one thread
# (Protocol.runs_concurrently).  Run in a child process with a deadline: a deadlock fails the test
# instead of hanging the suite.
CONCURRENT_ERM = """
import numpy as np, mfh_sim
from mfh_sim.experiments import PAPER_ROWS, table2
one = dict(gamma=0.5, alpha=1 / 3, optimizer="erm", l2=0.05, n_test=100, theory=False)
a = mfh_sim.sweep(**one, seeds=16, chunk_size=2, workers=2)
b = mfh_sim.sweep(**one, seeds=16, chunk_size=16, workers=1)
assert all(np.array_equal(a.arrays[k], b.arrays[k], equal_nan=True) for k in a.arrays)
t = table2(seeds=8, rows=PAPER_ROWS[:1], n_train=100, n_test=100, steps=50, permutations=5,
           algorithm1_steps=20, optimizer="erm", l2=0.05, chunk_size=2, workers=2)
assert np.isfinite(t.general_kd).all()
print("finished")
"""


def test_erm_sweeps_with_several_workers_finish():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", CONCURRENT_ERM], env=env, capture_output=True, text=True,
                          timeout=240, cwd=root)
    assert done.returncode == 0 and "finished" in done.stdout, done.stderr[-3000:]
