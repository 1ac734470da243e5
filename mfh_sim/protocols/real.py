"""Crossmodal KD on real paired data: one run is one random split of a fixed data set into roles.

A point is one task (a labelled paired data set, any number of classes) on one ordered pair of
views: teacher view ``a``, student view ``b``.  Its traced inputs are the data (zero-padded to a
few channel widths so that view pairs share compiled programs).  A run, a pure function of its key:

1. draws a permutation of the samples and cuts it into disjoint roles: ``n_test`` test samples,
   ``n_teacher`` labelled samples for the teacher (view a), ``n_pool`` unlabelled paired samples,
   and ``max(budgets)`` labelled samples for the student (view b), of which a budget uses the first
   20, 50, ... (nested budgets: a larger budget adds samples);
2. standardises each view with the mean and standard deviation of the non-test samples (the
   unlabelled statistics a practitioner has before testing);
3. decomposes view a by a ridge regression of x^a on x^b fitted on the unlabelled pool only: the
   prediction x^a_G = x^b C is the part of x^a that x^b can express (modality-general), the
   residual x^a_S = x^a - x^a_G the rest (modality-specific);
4. trains, with the simulator's recipe (linear softmax models, PyTorch's uniform initialisation,
   full-batch GD, CE + the KL term at temperature T with the paper's reduction; every training
   goes through :func:`_train`): four teachers from one initialisation, on x^a, x^a_G, x^a_S
   (each on the teacher's split) and on x^a of the student's labelled samples (the same-sample
   teacher); then all students on x^b from one initialisation: per budget a no-KD student
   (CE on its labels) and one KD student per teacher arm (CE on its labels + KD on its labelled
   samples and the pool, carrying that teacher's soft labels), and the same-sample KD student at
   the largest budget (CE + KD on its own labelled samples, the teacher's training sample);
5. a mimicability probe: a linear model on x^b of the pool fitted to the regular teacher's hard
   labels there, scored by its agreement with the teacher on the test samples;
6. measures every model's test accuracy (fractions in [0, 1]).

Arms (:data:`ARMS`): ``transfer`` (teacher on its own split, student on a label budget plus the
teacher-labelled pool), ``general_teacher`` and ``specific_teacher`` (the same with a teacher on
x^a_G or x^a_S: teacher accuracy and the share of its signal the student can see move apart),
``same_sample`` (teacher and students on the same labelled samples: the paper's recipe).

Keys come from identity: a point's identity hashes its task's name and data, not its views, so
for one split index every view pair and every arm of a task sees the same roles.  The core:
imports neither the engine nor anything above it.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim.init import linear_init, linear_init_size
from mfh_sim.losses import logit_gradient
from mfh_sim.protocols import MetricSpec, Protocol
from mfh_sim.train import fit_linear, make_optimizer

#: Channel widths views are zero-padded to (a wider view is padded to a multiple of 128), so
#: that views of similar width share one compiled program.
PAD_WIDTHS = (32, 80, 256, 512)
#: The teacher arms, in the order of the metric ``kd_acc``'s first axis.
TEACHER_ARMS = ("transfer", "general_teacher", "specific_teacher")
#: Every arm of the protocol (a row family of ``real_kd.csv``; ``semi_synthetic`` is the transfer
#: arm on data built with known overlap, see :mod:`mfh_sim.real.sources`).
ARMS = TEACHER_ARMS + ("same_sample",)
#: Label budgets a point may have (metrics carry this many budget slots, NaN past its own).
BUDGET_SLOTS = 3
#: The order of the metric ``teacher_acc``.
TEACHERS = ("regular", "general", "specific", "same_sample")


def padded_width(dim: int) -> int:
    """The width a view of ``dim`` >= 1 channels is zero-padded to (see :data:`PAD_WIDTHS`)."""
    for width in PAD_WIDTHS:
        if dim <= width:
            return width
    return int(-(-dim // 128) * 128)


class RealStatic(NamedTuple):
    """What fixes a compiled program: sample counts, roles, classes, padded widths, steps, reduction."""

    n_samples: int
    n_classes: int
    width_a: int
    width_b: int
    n_test: int
    n_teacher: int
    n_pool: int
    budgets: tuple[int, ...]
    steps: int
    kd_reduction: str


class RealInputs(NamedTuple):
    """Traced inputs of one point: the padded views, labels, true widths, recipe knobs."""

    x_a: np.ndarray  # (n_samples, width_a) float32, raw (unstandardised) features
    x_b: np.ndarray  # (n_samples, width_b)
    labels: np.ndarray  # (n_samples,) int32 in [0, n_classes)
    dim_a: np.ndarray  # () float32: true channels of x^a
    dim_b: np.ndarray
    learning_rate: np.ndarray
    ce_weight: np.ndarray
    kd_weight: np.ndarray
    temperature: np.ndarray
    ridge: np.ndarray  # () float32: ridge of the x^a-on-x^b regression, per pool sample


class RealMetrics(NamedTuple):
    """Test accuracies in [0, 1] (NaN where a training diverged).

    ``teacher_acc`` (4,): the teachers of :data:`TEACHERS`; ``no_kd_acc`` (BUDGET_SLOTS,) per
    budget (NaN past the point's budgets); ``kd_acc`` (3, BUDGET_SLOTS): the KD students of
    :data:`TEACHER_ARMS`; ``same_sample_kd_acc`` ():
    the same-sample KD student (largest budget; its no-KD twin is ``no_kd_acc[-1]``);
    ``mimicability`` (): test agreement of the pool-fitted x^b probe with the regular teacher;
    ``general_r2`` (): share of x^a's variance on the test samples that x^a_G explains;
    ``diverged`` (): any training of the run diverged.
    """

    teacher_acc: jax.Array
    no_kd_acc: jax.Array
    kd_acc: jax.Array
    same_sample_kd_acc: jax.Array
    mimicability: jax.Array
    general_r2: jax.Array
    diverged: jax.Array


@dataclass(frozen=True, eq=False)
class RealPoint:
    """One task on one ordered view pair.  ``x_a``, ``x_b``, ``labels`` are held by reference
    (not compared or hashed: the point's identity is its task plus ``fingerprint``)."""

    task: str
    teacher_view: str
    student_view: str
    x_a: np.ndarray
    x_b: np.ndarray
    labels: np.ndarray
    fingerprint: str
    n_classes: int
    n_test: int
    n_teacher: int
    n_pool: int
    budgets: tuple[int, ...]
    steps: int = 1000
    learning_rate: float = 0.1
    ce_weight: float = 1.0
    kd_weight: float = 1.0
    temperature: float = 1.0
    ridge: float = 1.0
    kd_reduction: str = "paper"


def _standardise(x: jax.Array, rows: jax.Array) -> jax.Array:
    mean = jnp.mean(x[rows], axis=0)
    std = jnp.std(x[rows], axis=0)
    # Constant channels (and padding) are centred, not scaled: dividing by ~0 would blow them up.
    return (x - mean) / jnp.where(std > 1e-8, std, 1.0)


#: Conjugate-gradient iterations of the ridge regression's solve (its system is well conditioned:
#: the ridge is |pool| on standardised views; tested against a direct solve).
RIDGE_ITERATIONS = 64


def general_part(x_a: jax.Array, x_b: jax.Array, pool: jax.Array, ridge: jax.Array) -> jax.Array:
    """x^b C, the ridge prediction of x^a from x^b fitted on the rows ``pool`` (standardised views):
    C = argmin ||x^a_P - x^b_P C||^2 + lambda ||C||^2 with lambda = ``ridge`` x |pool|, in the dual
    form C = x^b_P^T V, (x^b_P x^b_P^T + lambda I) V = x^a_P.

    V by conjugate gradients (:data:`RIDGE_ITERATIONS`, all columns at once), not a LAPACK solve:
    programs that call LAPACK cannot run in several threads at once on JAX's CPU runtime (see
    :attr:`mfh_sim.protocols.Protocol.runs_concurrently`), and this one should use every core."""
    xb, target = x_b[pool], x_a[pool]
    lam = ridge * pool.shape[0]
    apply = lambda v: xb @ (xb.T @ v) + lam * v

    def step(_, state):
        v, r, p, rs = state
        ap = apply(p)
        curvature = jnp.sum(p * ap, axis=0)
        alpha = jnp.where(curvature > 0, rs / jnp.where(curvature > 0, curvature, 1.0), 0.0)
        v, r = v + alpha * p, r - alpha * ap
        rs_new = jnp.sum(r * r, axis=0)
        beta = jnp.where(rs > 0, rs_new / jnp.where(rs > 0, rs, 1.0), 0.0)
        return v, r, r + beta * p, rs_new

    start = (jnp.zeros_like(target), target, target, jnp.sum(target * target, axis=0))
    v = jax.lax.fori_loop(0, RIDGE_ITERATIONS, step, start)[0]
    return x_b @ (xb.T @ v)


def _init(normals: jax.Array, width: int, dim: jax.Array, n_classes: int, heads: int):
    """Classes-first initial weights (C, width, heads), biases (C, heads) of a linear layer with
    PyTorch's U(+-1/sqrt(dim)) init on its ``dim`` real inputs, the same for every head.

    :func:`mfh_sim.init.linear_init` at the padded width gives U(+-1/sqrt(width)); rescaled by
    sqrt(width / dim) it is U(+-1/sqrt(dim)), and padded inputs get weight 0."""
    kernel, bias = linear_init(normals, width, init="torch", n_classes=n_classes)
    scale = jnp.sqrt(width / dim)
    kernel = kernel * scale * (jnp.arange(width) < dim)[:, None]
    return (jnp.broadcast_to((kernel.T)[:, :, None], (n_classes, width, heads)),
            jnp.broadcast_to((bias * scale)[:, None], (n_classes, heads)))


def _train(x, weights, biases, gradient, inputs: RealInputs, static: RealStatic, form: str | None = None):
    """Every training of the protocol: ``static.steps`` steps of full-batch GD (no momentum) of
    linear heads sharing the input ``x`` (n, width), with the closed-form loss gradient
    ``gradient`` (classes-first logits (C, n, heads) -> dLoss/dlogits, same shape, as
    :func:`mfh_sim.losses.logit_gradient` gives it) at ``inputs.learning_rate``.

    ``form``: 'margin' (the default for two classes) trains the margin m = l_1 - l_0 of each head,
    exactly the two-output layer's GD at half the arithmetic (:func:`mfh_sim.train.fit_linear`;
    the loss depends on the logits only through m, so dL/dm is the class-1 component of the logit
    gradient at logits [0, m]); 'logits' (more classes) trains the logits.
    Returns (weights (C, width, heads), biases (C, heads), diverged (heads,)); in margin form
    class 0's weights are 0, which gives the same softmax as the two-output layer."""
    form = form or ("margin" if static.n_classes == 2 else "logits")
    optimizer = make_optimizer("sgd", inputs.learning_rate, 0.0)
    if form == "margin":
        margin_of = lambda m: jnp.stack([jnp.zeros_like(m), m])
        v, c, diverged = fit_linear(x, weights[1] - weights[0], biases[1] - biases[0],
                                    loss_gradient=lambda m: gradient(margin_of(m))[1], form="margin",
                                    optimizer=optimizer, steps=static.steps)
        return jnp.stack([jnp.zeros_like(v), v]), jnp.stack([jnp.zeros_like(c), c]), diverged
    return tuple(fit_linear(x, weights, biases, loss_gradient=gradient, form="logits",
                            optimizer=optimizer, steps=static.steps))


def _logits(x: jax.Array, weights: jax.Array, biases: jax.Array) -> jax.Array:
    """(n, heads, C) logits of classes-first linear heads."""
    return jnp.einsum("nd,cdh->nhc", x, weights) + biases.T[None]


def _role_weights(masks: jax.Array) -> jax.Array:
    """Per-row loss weights (1, n, heads), classes first, that turn logit_gradient's mean over all
    n rows into a mean over each head's rows (``masks`` (n, heads) in {0, 1})."""
    return (masks * masks.shape[0] / jnp.maximum(jnp.sum(masks, axis=0), 1.0))[None]


def _onehot(labels: jax.Array, n_classes: int) -> jax.Array:
    """Labels (n,) as classes-first one-hot rows (C, n, 1), the layout of logit_gradient."""
    return jax.nn.one_hot(labels, n_classes, dtype=jnp.float32).T[:, :, None]


def make_run(static: RealStatic) -> Callable[[jax.Array, RealInputs], RealMetrics]:
    """A pure ``run(key, inputs) -> RealMetrics`` for the points sharing ``static``."""
    n, classes, wa, wb = static.n_samples, static.n_classes, static.width_a, static.width_b
    n_test, n_teacher, n_pool = static.n_test, static.n_teacher, static.n_pool
    budgets = jnp.asarray(static.budgets)
    n_budgets, n_student = len(static.budgets), max(static.budgets)
    n_arms = len(TEACHER_ARMS)

    def run(key: jax.Array, inputs: RealInputs) -> RealMetrics:
        split_key, init_key = jax.random.split(key)
        order = jax.random.permutation(split_key, n)
        test = order[:n_test]
        teacher_rows = order[n_test : n_test + n_teacher]
        pool = order[n_test + n_teacher : n_test + n_teacher + n_pool]
        labelled = order[n_test + n_teacher + n_pool : n_test + n_teacher + n_pool + n_student]
        known = order[n_test:]
        y = inputs.labels
        x_a = _standardise(inputs.x_a, known) * (jnp.arange(wa) < inputs.dim_a)
        x_b = _standardise(inputs.x_b, known) * (jnp.arange(wb) < inputs.dim_b)
        general = general_part(x_a, x_b, pool, inputs.ridge)
        specific = x_a - general
        normals = jax.random.normal(init_key, (linear_init_size(wa, classes) + linear_init_size(wb, classes),))
        teacher_init = normals[: linear_init_size(wa, classes)]
        student_init = normals[linear_init_size(wa, classes):]

        def fit_teacher(x_rows, rows):
            w, b = _init(teacher_init, wa, inputs.dim_a, classes, 1)
            onehot = _onehot(y[rows], classes)
            gradient = lambda logits: logit_gradient(logits, onehot)
            return _train(x_rows, w, b, gradient, inputs, static)

        # Three teachers on the teacher's split (x^a, x^a_G, x^a_S), one on the student's labels.
        views = jnp.stack([x_a, general, specific])
        arm_w, arm_b, arm_div = jax.vmap(lambda v: fit_teacher(v[teacher_rows], teacher_rows))(views)
        same_w, same_b, same_div = fit_teacher(x_a[labelled], labelled)

        # Students see the labelled rows, then the pool: (n_student + n_pool, width_b).
        rows = jnp.concatenate([labelled, pool])
        position = jnp.arange(n_student + n_pool)
        in_budget = (position[:, None] < budgets[None, :]).astype(jnp.float32)  # (rows, budgets)
        with_pool = jnp.maximum(in_budget, (position >= n_student)[:, None].astype(jnp.float32))
        teacher_logits = jnp.stack([_logits(v[rows], w, b)[:, 0] for v, w, b in
                                    zip(views, arm_w, arm_b)], axis=1)  # (rows, arms, C)
        same_logits = _logits(x_a[rows], same_w, same_b)[:, 0]  # (rows, C)
        # Heads: budgets no-KD, then arms x budgets KD, then the same-sample KD student.
        ce_masks = jnp.concatenate([in_budget, jnp.tile(in_budget, (1, n_arms)), in_budget[:, -1:]], axis=1)
        kd_masks = jnp.concatenate([jnp.zeros_like(in_budget), jnp.tile(with_pool, (1, n_arms)),
                                    in_budget[:, -1:]], axis=1)
        head_teacher = jnp.concatenate([jnp.zeros((rows.size, n_budgets, classes)),
                                        jnp.repeat(teacher_logits, n_budgets, axis=1), same_logits[:, None]], axis=1)
        heads = ce_masks.shape[1]
        ce_w, kd_w = _role_weights(ce_masks), _role_weights(kd_masks)

        # The no-KD heads keep CE weight 1 whatever the KD students' ce_weight knob.
        ce_knob = jnp.where(jnp.arange(heads) < n_budgets, 1.0, inputs.ce_weight)[None, None, :]
        # Each head's teacher's softened probabilities, classes first (C, rows, heads), once.
        teacher_probs = jnp.transpose(jax.nn.softmax(head_teacher / inputs.temperature, axis=-1), (2, 0, 1))
        student_onehot = _onehot(y[rows], classes)

        def student_gradient(logits):
            return logit_gradient(logits, student_onehot, teacher_probs, ce_weight=ce_knob * ce_w,
                                  kd_weight=inputs.kd_weight * kd_w, temperature=inputs.temperature,
                                  reduction=static.kd_reduction, kd_head=None)

        s_w, s_b = _init(student_init, wb, inputs.dim_b, classes, heads)
        student_w, student_b, student_div = _train(x_b[rows], s_w, s_b, student_gradient, inputs, static)

        # Mimicability: an x^b probe fitted on the pool to the regular teacher's hard labels.
        teacher_hard = jnp.argmax(teacher_logits[n_student:, 0], axis=-1)
        m_w, m_b = _init(student_init, wb, inputs.dim_b, classes, 1)
        mimic_onehot = _onehot(teacher_hard, classes)
        mimic_w, mimic_b, mimic_div = _train(x_b[pool], m_w, m_b, lambda logits: logit_gradient(logits, mimic_onehot),
                                             inputs, static)

        def accuracy(logits, labels, diverged):
            return jnp.where(diverged, jnp.nan, jnp.mean(jnp.argmax(logits, axis=-1) == labels[:, None], axis=0))

        teacher_test = jnp.concatenate([jnp.stack([_logits(v[test], w, b)[:, 0] for v, w, b in
                                                   zip(views, arm_w, arm_b)], axis=1),
                                        _logits(x_a[test], same_w, same_b)], axis=1)  # (test, 4, C)
        teacher_div = jnp.concatenate([arm_div[:, 0], same_div])
        teacher_acc = accuracy(teacher_test, y[test], teacher_div)
        head_div = student_div | jnp.concatenate([jnp.zeros(n_budgets, bool), jnp.repeat(arm_div[:, 0], n_budgets),
                                                   same_div])
        student_acc = accuracy(_logits(x_b[test], student_w, student_b), y[test], head_div)
        teacher_test_hard = jnp.argmax(teacher_test[:, 0], axis=-1)
        mimic = accuracy(_logits(x_b[test], mimic_w, mimic_b), teacher_test_hard, mimic_div | arm_div[0])[0]
        residual = jnp.sum(specific[test] ** 2)
        r2 = 1.0 - residual / jnp.maximum(jnp.sum(x_a[test] ** 2), 1e-12)
        pad = lambda a: jnp.concatenate([a, jnp.full(a.shape[:-1] + (BUDGET_SLOTS - n_budgets,), jnp.nan)], axis=-1)
        return RealMetrics(
            teacher_acc, pad(student_acc[:n_budgets]), pad(student_acc[n_budgets:-1].reshape(n_arms, n_budgets)),
            student_acc[-1], mimic, r2, jnp.any(teacher_div) | jnp.any(student_div) | mimic_div[0],
        )

    return run


METRIC_DTYPES = {name: (np.bool_ if name == "diverged" else np.float32) for name in RealMetrics._fields}


def _pad(x: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((x.shape[0], width), np.float32)
    out[:, : x.shape[1]] = x
    return out


# The protocol interface is a NamedTuple of functions (mfh_sim.protocols), bundled at the end.
def static_of(point: RealPoint) -> RealStatic:
    """What fixes ``point``'s compiled program."""
    return RealStatic(int(point.labels.shape[0]), int(point.n_classes), padded_width(point.x_a.shape[1]),
                      padded_width(point.x_b.shape[1]), int(point.n_test), int(point.n_teacher),
                      int(point.n_pool), tuple(int(b) for b in point.budgets), int(point.steps),
                      str(point.kd_reduction))


def inputs_of(point: RealPoint) -> RealInputs:
    """The traced inputs of ``point``'s runs."""
    static = static_of(point)
    f32 = np.float32
    return RealInputs(
        _pad(point.x_a, static.width_a), _pad(point.x_b, static.width_b),
        np.asarray(point.labels, np.int32), f32(point.x_a.shape[1]), f32(point.x_b.shape[1]),
        f32(point.learning_rate), f32(point.ce_weight), f32(point.kd_weight), f32(point.temperature),
        f32(point.ridge),
    )


def identity_of(point: RealPoint) -> int:
    """A point's key identity: its task and data, not its views (every view pair of a task sees the
    same roles for a split index)."""
    return zlib.crc32(f"{point.task}|{point.fingerprint}".encode())


def metrics(static: RealStatic) -> dict[str, MetricSpec]:
    b = BUDGET_SLOTS
    shapes = {"teacher_acc": (len(TEACHERS),), "no_kd_acc": (b,), "kd_acc": (len(TEACHER_ARMS), b)}
    return {name: MetricSpec(dtype, shapes.get(name, ())) for name, dtype in METRIC_DTYPES.items()}


def bytes_per_run(static: RealStatic) -> int:
    width = static.width_a + static.width_b
    heads = len(static.budgets) * (1 + len(TEACHER_ARMS)) + 1
    rows = max(static.budgets) + static.n_pool
    return int(4 * (8 * static.n_samples * width + 4 * rows * heads * static.n_classes
                    + 3 * width * heads * static.n_classes + static.n_pool**2 + static.width_b * static.width_a)
               + 4096)


def describe(point: RealPoint) -> dict[str, Any]:
    # The data are not stored in a manifest: a point is described by names and fingerprint.
    return {k: getattr(point, k) for k in (
        "task", "teacher_view", "student_view", "fingerprint", "n_classes", "n_test", "n_teacher", "n_pool",
        "budgets", "steps", "learning_rate", "ce_weight", "kd_weight", "temperature", "ridge", "kd_reduction")}


def point_from_dict(values: Mapping[str, Any]) -> RealPoint:
    raise ValueError("a real-data point cannot be rebuilt from its description alone: reload its data "
                     "(mfh_sim.real) and rebuild the points")


@functools.cache
def real_protocol() -> Protocol:
    """The real-data protocol for the engine: points are :class:`RealPoint`; no result type (the
    report in :mod:`mfh_sim.real` reads the engine's arrays).

    Version 2: roles (teacher split, pool, label budgets, test), four teachers and the transfer
    arms; version 1 trained teacher and students on one sample.
    """
    return Protocol(name="real", version=2, static_of=static_of, inputs_of=inputs_of, identity_of=identity_of,
                    make_run=make_run, metrics=metrics, bytes_per_run=bytes_per_run, describe=describe,
                    point_from_dict=point_from_dict, result="")


#: The real-data protocol.
REAL = real_protocol()
