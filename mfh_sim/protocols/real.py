"""Crossmodal KD on real paired data: one run is one random train/test split of a fixed data set.

A point is one binary task on one ordered pair of views (teacher view ``a``, student view ``b``)
of a paired data set; its traced inputs are the data themselves (zero-padded to a few channel
widths so that pairs of views share compiled programs).  A run, a pure function of its key:

1. draws a split: ``n_train`` samples for training, the rest for test;
2. standardises each view with the mean and standard deviation of the training split only
   (a channel constant on the training split is centred and left unscaled);
3. trains the simulator's recipe (:mod:`mfh_sim.train`: full-batch GD on two-class linear models
   in margin form, PyTorch's uniform init): a teacher on x^a, a no-KD and a KD student on x^b
   (both students from the same initial weights), and measures test accuracy;
4. for the estimator of the Venn diagram (:mod:`mfh_sim.real`), on the *training split only*:
   ``folds``-fold cross-validated accuracies of linear probes (same recipe) on x^a, x^b and the
   concatenation [x^a, x^b], and the effective number of channels of each (the participation
   ratio of the standardised covariance, with an unbiased estimate of tr(Sigma^2)).

Padded channels are zero after standardisation, receive zero gradient and enter the initial
weights with the bound of the view's true width, so padding changes no trained classifier (only
which normals the initial weights are cut from).

Keys come from identity: a point's identity is a hash of its task's name and data, not of its
views, so every view pair of one task sees the same splits for the same seed (paired
comparisons across pairs).  The core: imports neither the engine nor anything above it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim.losses import margin_gradient
from mfh_sim.protocols import MetricSpec, Protocol
from mfh_sim.train import descend, make_optimizer

#: Channel widths views are zero-padded to (a wider view is padded to a multiple of 128): views
#: of similar width share one compiled program.  Few widths, because compiling a program costs
#: seconds on a CPU; the Multiple Features views (6-240 channels, 53-456 for two concatenated)
#: take four kd programs and five probe programs.
PAD_WIDTHS = (80, 160, 256, 320, 512)
#: What a point computes: 'kd' (teacher, no-KD and KD students) or 'probe' (a cross-validated
#: probe on the training split, for the estimator).
KINDS = ("kd", "probe")


def padded_width(dim: int) -> int:
    """The width a view of ``dim`` >= 1 channels is zero-padded to (see :data:`PAD_WIDTHS`)."""
    for width in PAD_WIDTHS:
        if dim <= width:
            return width
    return int(-(-dim // 128) * 128)


class RealStatic(NamedTuple):
    """What fixes a compiled program: the kind, sample counts, padded widths, steps, folds, KD reduction."""

    kind: str
    n_samples: int
    n_train: int
    width_a: int
    width_b: int
    steps: int
    folds: int
    kd_reduction: str


class RealInputs(NamedTuple):
    """Traced inputs of one point: the padded views, labels in {0, 1}, true widths, recipe knobs."""

    x_a: np.ndarray  # (n_samples, width_a) float32, raw (unstandardised) features
    x_b: np.ndarray  # (n_samples, width_b)
    labels: np.ndarray  # (n_samples,) int32 in {0, 1}
    dim_a: np.ndarray  # () float32: true channels of x^a
    dim_b: np.ndarray
    learning_rate: np.ndarray
    ce_weight: np.ndarray
    kd_weight: np.ndarray
    temperature: np.ndarray


class RealMetrics(NamedTuple):
    """'kd' points: test accuracies in [0, 1] (NaN where a training diverged) and divergence
    flags, and ``shared``, the effective channels the two views share (:func:`shared_channels`);
    'probe' points: the probe's cross-validated accuracy on the training split in [0, 1] (NaN for
    'kd' points); both: ``deff``, the effective channels of x^a on the training split."""

    teacher_acc: jax.Array
    no_kd_acc: jax.Array
    kd_acc: jax.Array
    teacher_diverged: jax.Array
    no_kd_diverged: jax.Array
    kd_diverged: jax.Array
    probe_acc: jax.Array
    deff: jax.Array
    shared: jax.Array


@dataclass(frozen=True, eq=False)
class RealPoint:
    """One task on one ordered view pair (kind 'kd'), or one view or concatenation of views
    (kind 'probe': ``x_a`` is probed, ``x_b`` is ignored).  ``x_a``, ``x_b``, ``labels`` are held by
    reference (not compared or hashed: the point's identity is its task plus ``fingerprint``)."""

    kind: str
    task: str
    teacher_view: str
    student_view: str
    x_a: np.ndarray
    x_b: np.ndarray
    labels: np.ndarray
    fingerprint: str
    n_train: int
    steps: int = 1000
    folds: int = 2
    learning_rate: float = 0.1
    ce_weight: float = 1.0
    kd_weight: float = 1.0
    temperature: float = 1.0
    kd_reduction: str = "paper"


def _standardise(x: jax.Array, train: jax.Array) -> jax.Array:
    mean = jnp.mean(train, axis=0)
    std = jnp.std(train, axis=0)
    # Constant channels (and padding) are centred, not scaled: dividing by ~0 would blow them up.
    return (x - mean) / jnp.where(std > 1e-8, std, 1.0)


def effective_dim(x: jax.Array, dim: jax.Array) -> jax.Array:
    """Participation ratio tr(S)^2 / tr(S^2) of standardised ``x`` (n, width), in [1, dim].

    tr(S^2) is estimated without its O(d^2/n) upward bias (Bai & Saranadasa 1996; Chen, Zhang &
    Zhong 2010): tr2 = (n-1)^2/((n+1)(n-2)) (tr(S^2) - tr(S)^2/(n-1)), so an isotropic view of d
    channels gives about d even when n < d.
    """
    n = x.shape[0]
    centred = x - jnp.mean(x, axis=0)
    gram = centred @ centred.T / (n - 1)  # n x n has the same nonzero spectrum as the covariance
    tr = jnp.trace(gram)
    tr2 = jnp.sum(gram * gram)
    tr2 = (n - 1) ** 2 / ((n + 1) * (n - 2)) * (tr2 - tr**2 / (n - 1))
    return jnp.clip(tr**2 / jnp.maximum(tr2, 1e-12), 1.0, jnp.maximum(dim, 1.0))


def shared_channels(x_a: jax.Array, x_b: jax.Array, dim_a: jax.Array, dim_b: jax.Array,
                    deff_a: jax.Array, deff_b: jax.Array) -> jax.Array:
    """Effective channels the standardised views share, in [0, min(deff_a, deff_b)].

    ||Sigma_ab||_F^2 by the unbiased U-statistic mean_{i != j} (a_i . a_j)(b_i . b_j), expressed in
    effective channels: a channel shared by two isotropic views adds 1 to it, and an effective
    channel of a view of d channels carries variance d / deff, so the count is
    ||Sigma_ab||_F^2 deff_a deff_b / (d_a d_b).  Equals the number of shared channels (the
    simulator's G + Gn) for isotropic views.
    """
    n = x_a.shape[0]
    a = x_a - jnp.mean(x_a, axis=0)
    b = x_b - jnp.mean(x_b, axis=0)
    ga, gb = a @ a.T, b @ b.T
    cross = (jnp.sum(ga * gb) - jnp.sum(jnp.diag(ga) * jnp.diag(gb))) / (n * (n - 1))
    return jnp.clip(cross * deff_a * deff_b / (dim_a * dim_b), 0.0, jnp.minimum(deff_a, deff_b))


def _uniform_init(normals: jax.Array, dim: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Margin weights (v, c) of a two-output layer with PyTorch's U(+-1/sqrt(dim)) init.

    ``normals`` (width + 1, 2) are mapped through the normal CDF; v = w_1 - w_0 on real channels.
    """
    bound = 1.0 / jnp.sqrt(dim)
    values = bound * (2.0 * jax.scipy.special.ndtr(normals) - 1.0)
    weights = (values[:-1, 1] - values[:-1, 0]) * mask
    return weights, values[-1, 1] - values[-1, 0]


def _fit(x, labels01, weights, biases, teacher_margins, ce_w, kd_w, inputs, static):
    """Heads of full-batch GD in margin form on one input (the simulator's
    :func:`~mfh_sim.train.fit_linear_margin`, with the recipe's knobs traced from ``inputs``);
    padded channels of ``x`` are zero, so their weights never move."""
    x_t = x.T
    labels = labels01.astype(jnp.float32)[:, None]

    def gradient(params):
        w, b = params
        margins = x @ w + b
        g = margin_gradient(margins, labels, teacher_margins, ce_weight=ce_w, kd_weight=kd_w,
                            temperature=inputs.temperature, reduction=static.kd_reduction)
        return (2.0 * (x_t @ g), 2.0 * jnp.sum(g, axis=0)), ~jnp.all(jnp.isfinite(margins), axis=0)

    (w, b), bad = descend((weights, biases), gradient, make_optimizer("sgd", inputs.learning_rate), static.steps)
    return w, b, bad | ~jnp.all(jnp.isfinite(x @ w + b), axis=0)


def make_run(static: RealStatic) -> Callable[[jax.Array, RealInputs], RealMetrics]:
    """A pure ``run(key, inputs) -> RealMetrics`` for the points sharing ``static``."""
    n, n_train, wa, wb = static.n_samples, static.n_train, static.width_a, static.width_b
    folds = static.folds
    fold_size = n_train // folds
    nan = jnp.float32(jnp.nan)
    no = jnp.bool_(False)

    def run(key: jax.Array, inputs: RealInputs) -> RealMetrics:
        split_key, init_key = jax.random.split(key)
        order = jax.random.permutation(split_key, n)
        train, test = order[:n_train], order[n_train:]
        mask_a = (jnp.arange(wa) < inputs.dim_a).astype(jnp.float32)
        x_a = _standardise(inputs.x_a, inputs.x_a[train]) * mask_a
        y = inputs.labels
        y_train = y[train]
        normals = jax.random.normal(init_key, (wa + 1 + wb + 1, 2))
        ta_w, ta_b = _uniform_init(normals[: wa + 1], inputs.dim_a, mask_a)
        deff_a = effective_dim(x_a[train], inputs.dim_a)
        if static.kind == "probe":
            # Folds are consecutive blocks of the (already random) training split.
            position = jnp.arange(n_train)

            def probe_fold(f):
                held = (position >= f * fold_size) & (position < (f + 1) * fold_size)
                fit_rows = train[jnp.argsort(held, stable=True)[: n_train - fold_size]]
                held_rows = train[jnp.argsort(~held, stable=True)[:fold_size]]
                w, b, bad = _fit(x_a[fit_rows], y[fit_rows], ta_w[:, None], ta_b[None], None,
                                 1.0, 0.0, inputs, static)
                correct = jnp.mean(((x_a[held_rows] @ w[:, 0] + b[0]) > 0) == (y[held_rows] == 1))
                return jnp.where(bad[0], jnp.nan, correct)

            probe = jnp.mean(jax.vmap(probe_fold)(jnp.arange(folds)))
            return RealMetrics(nan, nan, nan, no, no, no, probe, deff_a, nan)

        mask_b = (jnp.arange(wb) < inputs.dim_b).astype(jnp.float32)
        x_b = _standardise(inputs.x_b, inputs.x_b[train]) * mask_b
        st_w, st_b = _uniform_init(normals[wa + 1:], inputs.dim_b, mask_b)
        # Teacher on x^a, then both students on x^b from the same init (head 0 no-KD, head 1 KD).
        teacher_w, teacher_b, teacher_div = _fit(x_a[train], y_train, ta_w[:, None], ta_b[None], None,
                                                 1.0, 0.0, inputs, static)
        teacher_margins = x_a[train] @ teacher_w + teacher_b
        ce_w = jnp.stack([jnp.float32(1.0), inputs.ce_weight])
        kd_w = jnp.stack([jnp.float32(0.0), inputs.kd_weight])
        both_w, both_b, student_div = _fit(x_b[train], y_train, jnp.stack([st_w, st_w], axis=1),
                                           jnp.stack([st_b, st_b]), teacher_margins, ce_w, kd_w, inputs, static)
        positive = y[test] == 1

        def test_acc(margins, diverged):
            return jnp.where(diverged, jnp.nan, jnp.mean((margins > 0) == positive))

        teacher_div = teacher_div[0]
        kd_div = student_div[1] | teacher_div
        students_test = x_b[test] @ both_w + both_b
        return RealMetrics(
            test_acc(x_a[test] @ teacher_w[:, 0] + teacher_b[0], teacher_div),
            test_acc(students_test[:, 0], student_div[0]),
            test_acc(students_test[:, 1], kd_div),
            teacher_div, student_div[0], kd_div, nan, deff_a,
            shared_channels(x_a[train], x_b[train], inputs.dim_a, inputs.dim_b, deff_a,
                            effective_dim(x_b[train], inputs.dim_b)),
        )

    return run


METRIC_DTYPES = {name: (np.bool_ if name.endswith("_diverged") else np.float32) for name in RealMetrics._fields}


def _pad(x: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((x.shape[0], width), np.float32)
    out[:, : x.shape[1]] = x
    return out


# The protocol interface is a NamedTuple of functions (mfh_sim.protocols): the methods of the former
# class, unchanged, bundled below.
def _static_of(point: RealPoint) -> RealStatic:
    probe = point.kind == "probe"
    return RealStatic(str(point.kind), int(point.labels.shape[0]), int(point.n_train),
                      padded_width(point.x_a.shape[1]), 1 if probe else padded_width(point.x_b.shape[1]),
                      int(point.steps), int(point.folds),
                      str(point.kd_reduction))


def _inputs_of(point: RealPoint) -> RealInputs:
    static = _static_of(point)
    f32 = np.float32
    x_b = point.x_b if point.kind == "kd" else np.zeros((point.labels.shape[0], 1))
    return RealInputs(
        _pad(point.x_a, static.width_a), _pad(x_b, static.width_b),
        np.asarray(point.labels, np.int32), f32(point.x_a.shape[1]), f32(x_b.shape[1]),
        f32(point.learning_rate), f32(point.ce_weight), f32(point.kd_weight), f32(point.temperature),
    )


def _identity_of(point: RealPoint) -> int:
    return zlib.crc32(f"{point.task}|{point.fingerprint}".encode())


def _metrics(static: RealStatic) -> dict[str, MetricSpec]:
    return {name: MetricSpec(dtype, ()) for name, dtype in METRIC_DTYPES.items()}


def _bytes_per_run(static: RealStatic) -> int:
    width = static.width_a + static.width_b
    return int(4 * (4 * static.n_samples * width + 2 * static.folds * static.n_train * width + width * 8)
               + 8 * static.n_train**2 + 4096)


def _describe(point: RealPoint) -> dict[str, Any]:
    # The data are not stored in a manifest: a point is described by names and fingerprint.
    return {k: getattr(point, k) for k in ("kind", "task", "teacher_view", "student_view", "fingerprint", "n_train",
                                           "steps", "folds", "learning_rate", "ce_weight", "kd_weight",
                                           "temperature", "kd_reduction")}


def _point_from_dict(values: Mapping[str, Any]) -> RealPoint:
    raise ValueError("a real-data point cannot be rebuilt from its description alone: reload its data "
                     "(mfh_sim.real) and rebuild the points")


#: The real-data protocol for the engine: points are :class:`RealPoint`.
REAL = Protocol(name="real", version=1, static_of=_static_of, inputs_of=_inputs_of, identity_of=_identity_of,
                make_run=make_run, metrics=_metrics, bytes_per_run=_bytes_per_run, describe=_describe,
                point_from_dict=_point_from_dict, result="")
