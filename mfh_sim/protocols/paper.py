"""The paper's protocol: data, a teacher on x^a, a no-KD and a KD student on x^b, test accuracy.

What one run sees is two things, both defined here from a :class:`~mfh_sim.config.SimConfig`:
its :class:`StaticSpec` (shapes, step counts, model and optimiser kinds: what fixes the compiled
program, :func:`static_of`) and its :class:`Inputs` (the Venn layout and the float
:class:`Knobs`: what may differ between runs of one program, :func:`inputs_of`).
:func:`make_run` takes the first and returns a pure ``run(key, inputs) -> Metrics``, in the style
of PureJaxRL's ``make_train``: the engine jits and vmaps it over seeds and grid points.

One run skeleton (:func:`make_run`: draw, fit, score) and one *fit function* per way of
training, chosen by the static part (:func:`fit_function`):

* :func:`fit_margin_gd`: the paper's setting (linear two-class models, SGD, the KL loss) in the
  exact margin form of :func:`mfh_sim.train.fit_linear`;
* :func:`fit_logits_gd`: linear multi-class models under SGD with the KL loss, closed-form logit
  gradients;
* :func:`fit_erm`: converged ridge-logistic ERM (:mod:`mfh_sim.erm`); :func:`fit_softmax_erm` its
  C-class counterpart;
* :func:`fit_autodiff`: everything else (MLPs, Adam, the logit-MSE and feature-hint KD losses)
  through the generic :func:`mfh_sim.train.fit`.

The generator's extensions (label noise, nonlinear mixing of the channels, latent padding) only
change the data, so they run under every fit function.

Random draws: the paper's draws (hyperplane, samples, initial linear weights) come from one call
of the generator with the run's ``draws`` key (:func:`draw_run`); every draw added by an
extension comes from a key of its own, so a config that uses no extension draws exactly what it
would without the extensions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim import erm
from mfh_sim.config import SimConfig
from mfh_sim.data import (
    Layout,
    Sample,
    class_directions,
    corrupt_labels,
    hyperplane_from_normals,
    make_layout,
    mix_channels,
    mixing_weights,
    sample_from_normals,
    sample_width,
    split,
)
from mfh_sim.init import linear_init, linear_init_size
from mfh_sim.losses import (
    cross_entropy,
    distillation,
    feature_hint,
    logit_gradient,
    logit_mse,
    margin_gradient,
    nontarget_divergence,
    softmax_first,
)
from mfh_sim.protocols import MetricSpec, Protocol
from mfh_sim.train import (
    LinearFit,
    accuracy,
    fit,
    fit_linear,
    make_optimizer,
    margin_params,
)


class StaticSpec(NamedTuple):
    """Shape- and structure-defining settings; configs that share one share a compiled program.

    The :class:`SimConfig` fields whose knob role is 'static' (``n_latent`` counts the padding,
    ``hidden`` is () for linear models, ``label_noise`` is whether there is any).
    """

    dim_a: int
    dim_b: int
    n_latent: int
    n_train: int
    n_test: int
    steps: int
    model: str
    hidden: tuple[int, ...]
    init: str
    optimizer: str
    kd_reduction: str
    fresh_student_sample: bool
    n_classes: int = 2
    label_noise: bool = False
    mixing_depth: int = 0
    kd_loss: str = "kl"
    kernel: str = "xla"


#: How the margin fast path trains a model (a protocol setting, :func:`paper_protocol`): 'xla', a
#: ``lax.scan`` of :func:`mfh_sim.train.fit_linear` (the default); 'pallas', the fused kernel
#: :func:`mfh_sim.kernels.fit_margin_runs` (one program a training run, its data held on-chip; in
#: Pallas' interpreter on a CPU, where it is slower).  They agree to float rounding, not bit for bit.
KERNELS = ("xla", "pallas")


def static_of(config: SimConfig) -> StaticSpec:
    """The part of ``config`` that fixes array shapes and program structure."""
    return StaticSpec(
        dim_a=config.venn.dim_a,
        dim_b=config.venn.dim_b,
        n_latent=config.n_latent,
        n_train=config.n_train,
        n_test=config.n_test,
        steps=config.steps,
        model=config.model,
        hidden=config.hidden if config.model == "mlp" else (),
        init=config.init,
        optimizer=config.optimizer,
        kd_reduction=config.kd_reduction,
        fresh_student_sample=config.fresh_student_sample,
        n_classes=config.n_classes,
        label_noise=config.label_noise > 0.0,
        mixing_depth=config.mixing_depth,
        kd_loss=config.kd_loss,
    )


class Knobs(NamedTuple):
    """Scalar settings that may differ between runs of one compiled program (float32)."""

    learning_rate: jax.Array
    momentum: jax.Array
    ce_weight: jax.Array
    kd_weight: jax.Array
    temperature: jax.Array
    label_noise: jax.Array
    mixing_strength: jax.Array
    l2: jax.Array


class RunKeys(NamedTuple):
    """A run's key split once into one key per purpose (no key is used for two draws).

    ``draws`` gives the paper's normals (:func:`draw_run`); the extensions (class directions,
    label noise, channel mixing) and the non-linear models' initialisation each have their own
    key, so switching an extension on never moves the paper's draws.
    """

    draws: jax.Array
    classes: jax.Array
    label_noise: jax.Array
    mixing: jax.Array
    teacher_init: jax.Array
    student_init: jax.Array
    hint: jax.Array


def split_run_key(key: jax.Array) -> RunKeys:
    """``key`` split into a :class:`RunKeys` (the same children every time it is called)."""
    return RunKeys(*jax.random.split(key, len(RunKeys._fields)))


class Metrics(NamedTuple):
    """Test accuracies in [0, 1] (NaN where that training diverged), divergence flags (the
    fields ending in ``_diverged``), and ``nontarget_kl``: the mean over test samples of the
    teacher's and the no-KD student's divergence on the non-target classes (nats, >= 0, see
    :func:`mfh_sim.losses.nontarget_divergence`; 0 with two classes, NaN if either diverged).
    """

    teacher_acc: jax.Array
    no_kd_acc: jax.Array
    kd_acc: jax.Array
    teacher_diverged: jax.Array
    no_kd_diverged: jax.Array
    kd_diverged: jax.Array
    nontarget_kl: jax.Array


class Inputs(NamedTuple):
    """The traced inputs of one run: its Venn diagram as arrays and its float knobs."""

    layout: Layout
    knobs: Knobs


def inputs_of(config: SimConfig) -> Inputs:
    """The traced inputs of ``config``'s runs (numpy; the engine stacks them over points)."""
    knobs = Knobs(*(np.float32(getattr(config, name)) for name in Knobs._fields))
    return Inputs(make_layout(config.venn, config.hyperplane, config.latent_padding), knobs)


class RunDraws(NamedTuple):
    """Everything random in one run: the samples, the linear layers' initial normals and the label
    direction ``w`` (the hyperplane (n_latent,) with two classes; the class directions
    (n_latent, n_classes) with more, see :func:`mfh_sim.data.class_directions`)."""

    train: Sample
    students: Sample
    test: Sample
    teacher_init: jax.Array
    student_init: jax.Array
    w: jax.Array


def _sample_sizes(static: StaticSpec) -> tuple[int, ...]:
    """Rows of a run's consecutive samples: train, the students' fresh sample if any, test."""
    return (static.n_train,) * (2 if static.fresh_student_sample else 1) + (static.n_test,)


def _draw_normals(key: jax.Array, layout: Layout, static: StaticSpec) -> tuple[jax.Array, ...]:
    """The paper's normals of one run from its ``draws`` key, cut into (hyperplane (n_latent,),
    sample rows (rows, sample width), teacher init, student init); see :func:`draw_run`."""
    width = sample_width(layout)
    rows = sum(_sample_sizes(static))
    init_a = linear_init_size(static.dim_a, static.n_classes)
    init_b = linear_init_size(static.dim_b, static.n_classes)
    parts = (layout.decisive.shape[-1], rows * width, init_a, init_b)
    normals = jax.random.normal(key, (sum(parts),))
    hyper, data, teacher_init, student_init = jnp.split(normals, np.cumsum(parts)[:-1])
    return hyper, data.reshape(rows, width), teacher_init, student_init


def draw_run(key: jax.Array, layout: Layout, knobs: Knobs, static: StaticSpec,
             normals: tuple[jax.Array, ...] | None = None) -> RunDraws:
    """All of a run's random draws, the paper's from one call of the random number generator.

    One flat vector of standard normals is cut into the hyperplane (n_latent), the samples
    (train, the students' fresh sample if any, test; each row the latents then both modalities'
    noise channels) and the teacher's and students' initial linear weights.  A single threefry
    call compiles several times faster on a CPU than one per quantity, and the cut is fixed by
    the static shapes, so every quantity keeps its own independent normals.  ``key`` is the
    run's key; it is split first (:func:`split_run_key`) and the normals come from its
    ``draws`` child, the extensions (class directions, label noise, channel mixing) from their
    own children, so no draw shares a key with another.  ``normals``: the normals of
    :func:`_draw_normals` on the ``draws`` child where the caller has them already (a pack).
    """
    keys = split_run_key(key)
    sizes = _sample_sizes(static)
    if normals is None:
        normals = _draw_normals(keys.draws, layout, static)
    hyper, data, teacher_init, student_init = normals
    if static.n_classes == 2:
        w = hyperplane_from_normals(hyper, layout)
    else:
        w = class_directions(keys.classes, layout, static.n_classes)
    data = sample_from_normals(data, layout, w)
    if static.label_noise:
        labels = corrupt_labels(keys.label_noise, data.labels,
                                knobs.label_noise, static.n_classes)
        data = data._replace(labels=labels)
    if static.mixing_depth:
        key_a, key_b = jax.random.split(keys.mixing)
        mixed = lambda k, x, channels: mix_channels(
            x, channels, mixing_weights(k, x.shape[-1], static.mixing_depth), knobs.mixing_strength
        )
        data = data._replace(x_a=mixed(key_a, data.x_a, layout.latents_a),
                             x_b=mixed(key_b, data.x_b, layout.latents_b))
    samples = split(data, sizes)
    train, test = samples[0], samples[-1]
    students = samples[1] if static.fresh_student_sample else train
    return RunDraws(train, students, test, teacher_init, student_init, w)


# ----------------------------------------------------------------------------- the trainings
class Trained(NamedTuple):
    """What a fit function hands the run skeleton: each model's outputs on the test sample and
    its divergence flag.

    ``form`` 'margin': outputs are margins (n_test,) of two-class models; 'logits': (n_test, C).
    ``kd_diverged`` is the KD student's own flag (the skeleton adds its teacher's).
    """

    teacher: jax.Array
    no_kd: jax.Array
    kd: jax.Array
    teacher_diverged: jax.Array
    no_kd_diverged: jax.Array
    kd_diverged: jax.Array
    form: str


#: A run's students: the no-KD student (cross-entropy alone) and the KD student, both from the same
#: initial weights, so their difference is the effect of KD alone (which makes the paired interval
#: of the KD gain tighter).
def _student_weights(knobs: Knobs) -> tuple[jax.Array, jax.Array]:
    """(ce_weight, kd_weight) of the two student heads: (1, 0) no KD, (ce_weight, kd_weight) KD."""
    return (jnp.stack([jnp.float32(1.0), knobs.ce_weight]), jnp.stack([jnp.float32(0.0), knobs.kd_weight]))


def fit_margin_gd(draws: RunDraws, knobs: Knobs, static: StaticSpec, keys: RunKeys) -> Trained:
    """The paper's linear two-class models under full-batch SGD with the KL loss, trained in margin
    form (exactly the two-output layers' predictions; :func:`mfh_sim.train.fit_linear`), gradients
    :func:`mfh_sim.losses.margin_gradient`; the two students one after the other
    (:func:`_margin_students`)."""
    teacher, teacher_margins = _margin_teacher(draws.train.x_a, draws.students.x_a, draws, knobs, static)
    diverged, test_b = _margin_students(draws.students.x_b, draws.test.x_b, draws, knobs, static, *_with_no_kd_head(
        teacher_margins[None], knobs.ce_weight[None], knobs.kd_weight[None], knobs.temperature[None]))
    test_a = draws.test.x_a
    return Trained(test_a @ teacher.weights[:, 0] + teacher.biases[0], test_b[0], test_b[1],
                   teacher.diverged[0], diverged[0], diverged[1], "margin")


def _margin_teacher(train_x_a: jax.Array, students_x_a: jax.Array, draws: RunDraws, knobs: Knobs,
                    static: StaticSpec) -> tuple[LinearFit, jax.Array]:
    """The margin fast path's teacher on ``train_x_a``: its fit and its margins (n, 1) on the
    students' sample ``students_x_a``."""
    teacher_w, teacher_b = margin_params(*linear_init(draws.teacher_init, static.dim_a, init=static.init))
    train_labels = draws.train.labels.astype(jnp.float32)[:, None]
    teacher = _fit_margin_model(train_x_a, teacher_w, teacher_b, train_labels, knobs, static)
    return teacher, students_x_a @ teacher.weights + teacher.biases


def _fit_margin_model(x: jax.Array, weights: jax.Array, bias: jax.Array, labels: jax.Array, knobs: Knobs,
                      static: StaticSpec, teacher_margins: jax.Array | None = None,
                      ce_weight: float | jax.Array = 1.0, kd_weight: float | jax.Array = 0.0,
                      temperature: float | jax.Array = 1.0) -> LinearFit:
    """One model of the margin fast path on ``x`` (n, d) from margin weights ``weights`` (d,) and
    ``bias`` (), labels (n, 1) in {0, 1}, and with ``teacher_margins`` (n, 1) the KD term of
    :func:`mfh_sim.losses.margin_gradient` (else cross-entropy alone), SGD at the knobs' learning
    rate and momentum for ``static.steps`` steps, by ``static.kernel`` (:data:`KERNELS`).  Returns
    the :class:`~mfh_sim.train.LinearFit` of one head: weights (d, 1), biases (1,), diverged (1,)."""
    if static.kernel == "pallas":
        # Imported here: Pallas is only loaded by the sweeps that ask for it (start-up time).
        from mfh_sim.kernels import fit_margin_runs

        fitted = fit_margin_runs(x[None], labels[None, :, 0], weights[None], bias[None],
                                 None if teacher_margins is None else teacher_margins[None, :, 0],
                                 ce_weight=ce_weight, kd_weight=kd_weight, temperature=temperature,
                                 learning_rate=knobs.learning_rate, momentum=knobs.momentum, steps=static.steps,
                                 reduction=static.kd_reduction, interpret=jax.default_backend() == "cpu")
        return LinearFit(fitted.weights.T, fitted.biases, fitted.diverged)
    if teacher_margins is None:
        gradient = lambda m: margin_gradient(m, labels)
    else:
        gradient = lambda m: margin_gradient(m, labels, teacher_margins, ce_weight=ce_weight, kd_weight=kd_weight,
                                             temperature=temperature, reduction=static.kd_reduction)
    return fit_linear(x, weights[:, None], bias[None], loss_gradient=gradient, form="margin",
                      optimizer=make_optimizer("sgd", knobs.learning_rate, knobs.momentum), steps=static.steps)


def _with_no_kd_head(teacher_margins: jax.Array, ce_weights: jax.Array, kd_weights: jax.Array,
                     temperatures: jax.Array) -> tuple[jax.Array, ...]:
    """The student heads of P KD students (teacher margins (P, n, 1) and loss weights (P,)) with the
    no-KD student put first: cross-entropy weight 1, KD weight 0 and teacher margins 0, so it never
    sees a teacher (a teacher whose margins are NaN leaves it alone)."""
    first = lambda value, array: jnp.concatenate([jnp.full((1,) + array.shape[1:], value, array.dtype), array])
    return (first(0.0, teacher_margins), first(1.0, ce_weights), first(0.0, kd_weights), first(1.0, temperatures))


def _margin_students(x_b: jax.Array, test_x_b: jax.Array, draws: RunDraws, knobs: Knobs, static: StaticSpec,
                     teacher_margins: jax.Array, ce_weights: jax.Array, kd_weights: jax.Array,
                     temperatures: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Student heads on the students' ``x_b``, all from the run's initial student weights: head h
    with the teacher's margins ``teacher_margins[h]`` (n, 1) and loss weights ``ce_weights[h]``,
    ``kd_weights[h]``, ``temperatures[h]``.  Returns each head's divergence flag (H,) and margins
    on ``test_x_b`` (H, n_test).

    The heads train one after another (``lax.map``), each as a (d, 1) weight vector: on XLA:CPU a
    product's float rounding depends on how many columns it has, so a head trained beside other
    heads would round differently as its neighbours change; alone, a head's arithmetic is the same
    in a run and in a pack of any size (:func:`fit_margin_gd_pack`).  It is also the fastest
    layout measured (``benchmarks/dedup.py --layouts``): a (d, 2) product of two heads costs about
    twice two (d, 1) ones."""
    student_w, student_b = margin_params(*linear_init(draws.student_init, static.dim_b, init=static.init))
    student_labels = draws.students.labels.astype(jnp.float32)[:, None]

    def head(weights):
        margins, ce_weight, kd_weight, temperature = weights
        fitted = _fit_margin_model(x_b, student_w, student_b, student_labels, knobs, static, margins,
                                   ce_weight, kd_weight, temperature)
        return fitted.diverged[0], test_x_b @ fitted.weights[:, 0] + fitted.biases[0]

    return jax.lax.map(head, (teacher_margins, ce_weights, kd_weights, temperatures))


class PackData(NamedTuple):
    """What the points of a pack share for one key, and the one thing they do not: ``draws`` (the
    first point's: samples, x^b, labels, initial weights) and every point's x^a on the teachers'
    training sample, the students' sample and the test sample, (P, n, dim_a) each."""

    draws: RunDraws
    x_a_train: jax.Array
    x_a_students: jax.Array
    x_a_test: jax.Array


def _pack_data(key: jax.Array, inputs: Inputs, static: StaticSpec) -> PackData:
    """The draws of a pack's first point and x^a of every point, from the same normals (x^a's
    channels are the one thing of the data that differs within a pack)."""
    layouts, _ = inputs
    first = jax.tree.map(lambda a: a[0], inputs)
    normals = _draw_normals(split_run_key(key).draws, first.layout, static)
    draws = draw_run(key, first.layout, first.knobs, static, normals)
    data = normals[1]
    x_a = jax.vmap(lambda channels: sample_from_normals(data, first.layout._replace(latents_a=channels),
                                                        draws.w).x_a)(layouts.latents_a)
    bounds = np.cumsum((0,) + _sample_sizes(static))
    x_a_train, x_a_test = x_a[:, bounds[0]:bounds[1]], x_a[:, bounds[-2]:bounds[-1]]
    x_a_students = x_a[:, bounds[1]:bounds[2]] if static.fresh_student_sample else x_a_train
    return PackData(draws, x_a_train, x_a_students, x_a_test)


def _pack_teachers(teacher_of: Callable, points: Any, size: int, teachers: tuple[int, ...] | None) -> Any:
    """``teacher_of`` of each distinct teacher of a pack (its first point's ``points``, pytrees
    with a leading (P,) axis), then every point's by index (``teachers[p]``: the first point with
    point p's teacher, :func:`pack_layout`; None: every point its own).

    The teachers run one after another (lax.map), not side by side (vmap): under the engine's vmap
    over runs, a vmap here would widen the batch of every operation, and XLA:CPU sums a batch of
    more than about ten runs' gradients in another order (other float bits) than a batch of a few.
    """
    teachers = np.arange(size) if teachers is None else np.asarray(teachers)
    distinct = np.unique(teachers)
    trained = jax.lax.map(teacher_of, jax.tree.map(lambda a: a[distinct], points))
    return jax.tree.map(lambda a: a[np.searchsorted(distinct, teachers)], trained)


def fit_margin_gd_pack(key: jax.Array, inputs: Inputs, static: StaticSpec,
                       teachers: tuple[int, ...] | None = None) -> tuple[Trained, jax.Array]:
    """:func:`fit_margin_gd` for a *pack*: points (``inputs`` with a leading (P,) axis) that share
    the student's view, so that for one key they share the data, x^b, the initial weights and the
    no-KD student (see :func:`share_of`); only x^a, the teacher and the KD knobs differ.
    ``teachers[p]`` is the index of the first point with point p's teacher (the same x^a: see
    :func:`pack_layout`; default: every point its own).

    Each distinct teacher is trained once, the no-KD student once for the pack and the P KD
    students after it: P + 1 student fits where P separate runs need 2 P.  Every model keeps the
    arithmetic it has in its own run (:func:`_margin_students`), so the results are bit-identical
    to P separate runs.  Returns the points' ``Trained`` (arrays with a leading (P,) axis, form
    'margin') and the test labels.
    """
    _, knobs = inputs
    size = knobs.kd_weight.shape[0]
    first_knobs = jax.tree.map(lambda a: a[0], knobs)
    pack = _pack_data(key, inputs, static)
    draws = pack.draws

    def teacher_of(point):
        train_a, students_a, test_a, point_knobs = point
        teacher, margins = _margin_teacher(train_a, students_a, draws, point_knobs, static)
        return teacher, margins, test_a @ teacher.weights[:, 0] + teacher.biases[0]

    teacher, teacher_margins, teacher_test = _pack_teachers(
        teacher_of, (pack.x_a_train, pack.x_a_students, pack.x_a_test, knobs), size, teachers)
    diverged, test_b = _margin_students(draws.students.x_b, draws.test.x_b, draws, first_knobs, static,
                                        *_with_no_kd_head(teacher_margins, knobs.ce_weight, knobs.kd_weight,
                                                          knobs.temperature))
    trained = Trained(teacher_test, jnp.broadcast_to(test_b[0], (size,) + test_b.shape[1:]), test_b[1:],
                      teacher.diverged[:, 0], jnp.broadcast_to(diverged[0], (size,)), diverged[1:], "margin")
    return trained, draws.test.labels


def fit_logits_gd(draws: RunDraws, knobs: Knobs, static: StaticSpec, keys: RunKeys) -> Trained:
    """Linear models with more than two classes under full-batch SGD and the KL loss, trained with
    the closed-form logit gradients of :func:`mfh_sim.losses.logit_gradient`
    (:func:`mfh_sim.train.fit_linear`, ``form='logits'``), both students as two heads of one pass
    over x^b; the teacher's softened probabilities are computed once, before the students' loop."""
    classes = static.n_classes
    train, students, test = draws.train, draws.students, draws.test
    optimizer = make_optimizer("sgd", knobs.learning_rate, knobs.momentum)
    teacher_w, teacher_b = linear_init(draws.teacher_init, static.dim_a, init=static.init, n_classes=classes)
    student_w, student_b = linear_init(draws.student_init, static.dim_b, init=static.init, n_classes=classes)
    classes_first = lambda labels: jax.nn.one_hot(labels, classes, dtype=jnp.float32).T[:, :, None]
    train_onehot = classes_first(train.labels)  # (C, n, 1)
    teacher = fit_linear(train.x_a, teacher_w.T[:, :, None], teacher_b[:, None],
                         loss_gradient=lambda logits: logit_gradient(logits, train_onehot),
                         form="logits", optimizer=optimizer, steps=static.steps)
    teacher_w, teacher_b = teacher.weights[:, :, 0].T, teacher.biases[:, 0]  # back to (d, C), (C,)
    teacher_probs = softmax_first((students.x_a @ teacher_w + teacher_b).T / knobs.temperature)  # (C, n)
    onehot = classes_first(students.labels)
    ce_weights, _ = _student_weights(knobs)
    student_gradient = lambda logits: logit_gradient(
        logits, onehot, teacher_probs, ce_weight=ce_weights, kd_weight=knobs.kd_weight,
        temperature=knobs.temperature, reduction=static.kd_reduction, kd_head=1,
    )
    both = fit_linear(students.x_b, jnp.stack([student_w.T, student_w.T], axis=-1),
                      jnp.stack([student_b, student_b], axis=-1), loss_gradient=student_gradient,
                      form="logits", optimizer=optimizer, steps=static.steps)
    students_test = jnp.einsum("nd,cdh->hnc", test.x_b, both.weights) + both.biases.T[:, None, :]  # (2, n, C)
    return Trained(test.x_a @ teacher_w + teacher_b, students_test[0], students_test[1],
                   teacher.diverged[0], both.diverged[0], both.diverged[1], "logits")


def fit_erm(draws: RunDraws, knobs: Knobs, static: StaticSpec, keys: RunKeys) -> Trained:
    """Every fit converged ridge-logistic ERM (:func:`mfh_sim.erm.newton_solve`), same draws as
    gradient training (the initial weights are drawn but unused).  A fit that does not reach the
    solver's tolerance is flagged diverged.  ``kd_loss='mse'``: the KD student's term is the logit
    MSE's margin part (kd_weight / 4) (h - t)^2, temperature and reduction unused
    (:func:`mfh_sim.erm.effective_kd_weight`)."""
    teacher_failed, teacher_margins, teacher_test = _erm_teacher(
        draws, knobs.l2, draws.train.x_a, draws.students.x_a, draws.test.x_a)
    no_kd_failed, no_kd_test = _erm_no_kd_student(draws, knobs.l2)
    kd_failed, kd_test = _erm_kd_student(draws, knobs.l2, static, teacher_margins, knobs.ce_weight,
                                         knobs.kd_weight, knobs.temperature)
    return Trained(teacher_test, no_kd_test, kd_test, teacher_failed, no_kd_failed, kd_failed, "margin")


# fit_erm's three solves, each one function for a run and a pack (fit_erm_pack), so that both do
# the same arithmetic.
def _erm_solve(x: jax.Array, labels: jax.Array, teacher_margins: jax.Array, l2: jax.Array, **loss: Any):
    return erm.newton_solve(x, labels, teacher_margins, l2=l2, iterations=erm.DEFAULT_ITERATIONS,
                            tol=erm.DEFAULT_TOL, **loss)


def _erm_teacher(draws: RunDraws, l2: jax.Array, train_x_a: jax.Array, students_x_a: jax.Array,
                 test_x_a: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The ERM teacher on ``train_x_a`` (cross-entropy alone): its failure flag and its margins
    on the students' sample and on the test sample."""
    teacher = _erm_solve(train_x_a, draws.train.labels, jnp.zeros(train_x_a.shape[0]), l2, ce_weight=1.0, k=0.0,
                         temperature=1.0)
    return ~teacher.converged, students_x_a @ teacher.theta + teacher.bias, test_x_a @ teacher.theta + teacher.bias


def _erm_no_kd_student(draws: RunDraws, l2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The ERM no-KD student (KD weight 0, teacher margins 0: it never sees a teacher): its failure
    flag and its margins on the test sample."""
    students = draws.students
    no_kd = _erm_solve(students.x_b, students.labels, jnp.zeros(students.x_b.shape[0]), l2, ce_weight=1.0, k=0.0,
                       temperature=1.0)
    return ~no_kd.converged, draws.test.x_b @ no_kd.theta + no_kd.bias


def _erm_kd_student(draws: RunDraws, l2: jax.Array, static: StaticSpec, teacher_margins: jax.Array,
                    ce_weight: jax.Array, kd_weight: jax.Array, temperature: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The ERM KD student toward ``teacher_margins`` (n,): its failure flag and its margins on the
    test sample."""
    students = draws.students
    kd = _erm_solve(students.x_b, students.labels, teacher_margins, l2, ce_weight=ce_weight,
                    k=erm.effective_kd_weight(kd_weight, static.kd_reduction, static.kd_loss),
                    temperature=temperature, kd_loss=static.kd_loss)
    return ~kd.converged, draws.test.x_b @ kd.theta + kd.bias


def fit_erm_pack(key: jax.Array, inputs: Inputs, static: StaticSpec,
                 teachers: tuple[int, ...] | None = None) -> tuple[Trained, jax.Array]:
    """:func:`fit_erm` for a pack (see :func:`fit_margin_gd_pack`): each distinct teacher solved
    once, the no-KD student once for the pack, then the P KD students one after another; every
    solve is the one of a run alone, so the results are bit-identical to P separate runs."""
    _, knobs = inputs
    size = knobs.kd_weight.shape[0]
    l2 = knobs.l2[0]
    pack = _pack_data(key, inputs, static)
    draws = pack.draws
    teacher_failed, teacher_margins, teacher_test = _pack_teachers(
        lambda point: _erm_teacher(draws, l2, *point), (pack.x_a_train, pack.x_a_students, pack.x_a_test), size,
        teachers)
    no_kd_failed, no_kd_test = _erm_no_kd_student(draws, l2)
    kd_failed, kd_test = jax.lax.map(
        lambda point: _erm_kd_student(draws, l2, static, *point),
        (teacher_margins, knobs.ce_weight, knobs.kd_weight, knobs.temperature))
    trained = Trained(teacher_test, jnp.broadcast_to(no_kd_test, (size,) + no_kd_test.shape), kd_test,
                      teacher_failed, jnp.broadcast_to(no_kd_failed, (size,)), kd_failed, "margin")
    return trained, draws.test.labels


def fit_softmax_erm(draws: RunDraws, knobs: Knobs, static: StaticSpec, keys: RunKeys) -> Trained:
    """Every fit converged ridge ERM of a C-class linear softmax model
    (:func:`mfh_sim.erm.softmax_newton_solve`), the multi-class counterpart of :func:`fit_erm`: the
    ridge is l2 ||W||_F^2 on the logit weights (at two classes the same objective as
    :func:`fit_erm`'s), the KD term the KL at temperature T or the logit MSE
    (:func:`mfh_sim.erm.softmax_effective_kd_weight`).  Same draws as gradient training."""
    classes = static.n_classes
    train, students, test = draws.train, draws.students, draws.test
    solve = functools.partial(erm.softmax_newton_solve, l2=knobs.l2, n_classes=classes,
                              iterations=erm.DEFAULT_ITERATIONS, tol=erm.DEFAULT_TOL)
    no_teacher = jnp.zeros((train.x_a.shape[0], classes), train.x_a.dtype)
    teacher = solve(train.x_a, train.labels, no_teacher, ce_weight=1.0, k=0.0, temperature=1.0)
    teacher_logits = students.x_a @ teacher.weights + teacher.bias
    no_kd = solve(students.x_b, students.labels, teacher_logits, ce_weight=1.0, k=0.0, temperature=1.0)
    kd = solve(students.x_b, students.labels, teacher_logits, ce_weight=knobs.ce_weight,
               k=erm.softmax_effective_kd_weight(knobs.kd_weight, classes, static.kd_reduction, static.kd_loss),
               temperature=knobs.temperature, kd_loss=static.kd_loss)
    logits = lambda fit, x: x @ fit.weights + fit.bias
    return Trained(logits(teacher, test.x_a), logits(no_kd, test.x_b), logits(kd, test.x_b),
                   ~teacher.converged, ~no_kd.converged, ~kd.converged, "logits")


def fit_autodiff(draws: RunDraws, knobs: Knobs, static: StaticSpec, keys: RunKeys) -> Trained:
    """Any model, optimiser and KD loss by automatic differentiation (:func:`mfh_sim.train.fit`):
    MLPs, Adam, the logit-MSE and feature-hint KD losses.  Linear layers take their initial weights
    from the run's normals, as the closed-form fits do (so both start alike); MLPs use flax's
    initialisation with the run's own keys."""
    # flax is loaded here, by the runs that train through it, not by every import of the protocol
    # (a linear run never needs it: start-up time).
    from mfh_sim.models import HintStudent, as_flax_params, hint_student_params, make_model

    n_classes = static.n_classes
    model = make_model(static.model, static.hidden, static.init, n_classes=n_classes)
    train, students, test = draws.train, draws.students, draws.test

    def initial_params(key: jax.Array, normals: jax.Array, fan_in: int):
        if static.model == "linear":
            return as_flax_params(*linear_init(normals, fan_in, init=static.init, n_classes=n_classes))
        return model.init(key, jnp.zeros((1, fan_in), jnp.float32))

    optimizer = make_optimizer(static.optimizer, knobs.learning_rate, knobs.momentum)
    teacher, teacher_diverged = fit(
        keys.teacher_init, model, train.x_a,
        lambda logits: cross_entropy(logits, train.labels), optimizer, static.steps,
        params=initial_params(keys.teacher_init, draws.teacher_init, static.dim_a),
    )
    teacher_logits = model.apply(teacher, students.x_a)
    student_init = initial_params(keys.student_init, draws.student_init, static.dim_b)
    no_kd, no_kd_diverged = fit(
        keys.student_init, model, students.x_b,
        lambda logits: cross_entropy(logits, students.labels), optimizer, static.steps,
        params=student_init,
    )
    kd_model, kd_init = model, student_init
    ce = lambda logits: knobs.ce_weight * cross_entropy(logits, students.labels)
    if static.kd_loss == "kl":
        kd_loss = lambda logits: distillation(
            logits, students.labels, teacher_logits,
            ce_weight=knobs.ce_weight, kd_weight=knobs.kd_weight,
            temperature=knobs.temperature, reduction=static.kd_reduction,
        )
    elif static.kd_loss == "mse":
        kd_loss = lambda logits: ce(logits) + knobs.kd_weight * logit_mse(logits, teacher_logits)
    else:  # 'hint': the teacher's last hidden layer, matched through a learned regressor
        teacher_features = model.apply(teacher, students.x_a, features=True)
        kd_model = HintStudent(n_classes, static.hidden, static.hidden[-1], static.init)
        kd_init = hint_student_params(
            model.init(keys.student_init, students.x_b[:1]), keys.hint,
            static.hidden, static.hidden[-1], static.init,
        )
        kd_loss = lambda outputs: ce(outputs[0]) + knobs.kd_weight * feature_hint(outputs[1], teacher_features)
    kd, kd_diverged = fit(keys.student_init, kd_model, students.x_b, kd_loss, optimizer, static.steps,
                          params=kd_init)
    kd_logits = kd_model.apply(kd, test.x_b)
    if static.kd_loss == "hint":
        kd_logits = kd_logits[0]
    return Trained(model.apply(teacher, test.x_a), model.apply(no_kd, test.x_b), kd_logits,
                   teacher_diverged, no_kd_diverged, kd_diverged, "logits")


def fit_function(static: StaticSpec, fast_path: bool = True) -> Callable[..., Trained]:
    """The fit function of ``static``: closed forms where they are exact (``fast_path``), else
    automatic differentiation.  ``fast_path=False`` forces :func:`fit_autodiff` for gradient
    training (it gives the same classifiers up to float rounding, tested, and exists to check
    that); converged ERM has no other path."""
    if static.optimizer == "erm":
        return fit_erm if static.n_classes == 2 else fit_softmax_erm
    if fast_path and static.model == "linear" and static.optimizer == "sgd" and static.kd_loss == "kl":
        return fit_margin_gd if static.n_classes == 2 else fit_logits_gd
    return fit_autodiff


def make_run(static: StaticSpec, fast_path: bool = True) -> Callable[[jax.Array, Inputs], Metrics]:
    """A pure ``run(key, inputs) -> Metrics`` for configs sharing ``static``: the one run skeleton
    (draws, the fit function of :func:`fit_function`, test accuracies)."""
    fit_models = fit_function(static, fast_path)

    def run(key: jax.Array, inputs: Inputs) -> Metrics:
        layout, knobs = inputs
        draws = draw_run(key, layout, knobs, static)
        return score_run(fit_models(draws, knobs, static, split_run_key(key)), draws.test.labels, static)

    return run


def score_run(trained: Trained, labels: jax.Array, static: StaticSpec) -> Metrics:
    """A run's :class:`Metrics` from its trained models' test outputs and the test labels."""
    teacher_div, no_kd_div = trained.teacher_diverged, trained.no_kd_diverged
    # A KD student whose teacher diverged learned from meaningless targets.
    kd_div = trained.kd_diverged | teacher_div
    score = lambda outputs, diverged: accuracy(outputs, labels, form=trained.form, diverged=diverged)
    if static.n_classes > 2:
        nontarget = jnp.mean(nontarget_divergence(trained.teacher, trained.no_kd, labels))
    else:  # one non-target class: the divergence is 0 by definition
        nontarget = jnp.float32(0.0)
    return Metrics(
        score(trained.teacher, teacher_div), score(trained.no_kd, no_kd_div), score(trained.kd, kd_div),
        teacher_div, no_kd_div, kd_div,
        jnp.where(teacher_div | no_kd_div, jnp.nan, nontarget).astype(jnp.float32),
    )


#: The fit functions that train packs, and their pack versions.
PACK_FITS: dict[Callable[..., Trained], Callable[..., tuple[Trained, jax.Array]]] = {
    fit_margin_gd: fit_margin_gd_pack, fit_erm: fit_erm_pack}

#: Knobs that only the KD student sees: points that differ only in these (and in x^a's channels)
#: share the data, x^b and the no-KD student (:func:`share_of`).
KD_KNOBS = ("ce_weight", "kd_weight", "temperature")


def share_of(config: SimConfig) -> tuple | None:
    """What the no-KD student and the students' data of ``config``'s runs depend on, or None where
    runs are not packed: points of one program with equal values (and equal key identities) see,
    for one seed, the same samples, x^b, labels and initial weights, and train the same no-KD
    student, so the engine runs them as one pack (:func:`make_pack_run`).

    It is everything in the run's inputs but x^a's channels and :data:`KD_KNOBS` (the student's
    view, the decisive latents, the hyperplane kind, the learning rate, momentum, label noise,
    ...).  Packs exist for the margin fast path (:func:`fit_margin_gd`) and converged two-class
    ERM (:func:`fit_erm`), without channel mixing (:data:`PACK_FITS`); other runs return None.
    """
    static = static_of(config)
    if fit_function(static) not in PACK_FITS or static.mixing_depth:
        return None
    layout, knobs = inputs_of(config)
    # Bytes, not values: equal keys mean bit-equal inputs (0.0 and -0.0 differ, NaN equals itself).
    view = tuple(np.asarray(value).tobytes() for name, value in layout._asdict().items() if name != "latents_a")
    return view + tuple(np.asarray(getattr(knobs, name)).tobytes() for name in Knobs._fields if name not in KD_KNOBS)


def pack_layout(configs: list[SimConfig]) -> tuple[int, ...]:
    """Which points of a pack (configs of equal :func:`share_of`) share their teacher: for each,
    the index of the first point with the same x^a channels (the teacher sees nothing else that
    differs within a pack: its data, initial weights, learning rate and momentum are shared)."""
    first: dict[bytes, int] = {}
    return tuple(first.setdefault(np.asarray(inputs_of(c).layout.latents_a).tobytes(), i)
                 for i, c in enumerate(configs))


def make_pack_run(static: StaticSpec, size: int,
                  layout: tuple[int, ...] | None = None) -> Callable[[jax.Array, Inputs], Metrics]:
    """A pure ``run(key, inputs) -> Metrics`` for a pack of ``size`` points of equal
    :func:`share_of` (``inputs`` and the metrics with a leading (size,) axis) whose teachers are
    shared as :func:`pack_layout` says (``layout``; None: every point its own): bit-identical to
    :func:`make_run`'s runs of the points one by one (:data:`PACK_FITS`)."""
    fit_pack = PACK_FITS.get(fit_function(static))
    if fit_pack is None:
        raise ValueError(f"static={static!r} is not packed: only {', '.join(f.__name__ for f in PACK_FITS)} "
                         "train packs")
    if layout is not None and len(layout) != size:
        raise ValueError(f"layout={layout!r} is not allowed: give one teacher index per point ({size})")

    def run(key: jax.Array, inputs: Inputs) -> Metrics:
        trained, labels = fit_pack(key, inputs, static, layout)
        score = lambda *outputs: score_run(Trained(*outputs, trained.form), labels, static)
        return jax.vmap(score)(*trained[:-1])

    return run


# ------------------------------------------------------------------------------ the protocol
#: Metrics ending in "_diverged" are flags; the others (accuracies, divergences) are float32.
METRIC_DTYPES = {name: (np.bool_ if name.endswith("_diverged") else np.float32) for name in Metrics._fields}


def bytes_per_run(static: StaticSpec) -> int:
    """Estimated device memory (bytes) that one run of ``static`` needs while it executes.

    The largest arrays of a run are its data: one normal draw of shape
    (n_samples, n_latent + dim_a + dim_b) float32 (with n_samples = n_train, twice that with a
    fresh student sample, plus n_test), the random bits it comes from, and the x^a / x^b views cut
    from it; three copies bound them.  An MLP adds its activations and their gradients on the
    training sample (about six (n_train, width) arrays per hidden layer and training, three
    trainings) and its parameters with optimiser state.  The estimate is deliberately generous:
    chunk sizes derived from it leave room for XLA's temporaries.
    """
    n_samples = static.n_train * (2 if static.fresh_student_sample else 1) + static.n_test
    width = static.n_latent + static.dim_a + static.dim_b
    data = 3 * 4 * n_samples * width
    widths = tuple(static.hidden) if static.model == "mlp" else ()
    activations = 3 * 6 * 4 * static.n_train * (sum(widths) + 2)
    layer_sizes = (max(static.dim_a, static.dim_b),) + widths + (2,)
    params = sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]))
    # Converged ERM holds a ((d + 1)(C - 1))^2 Hessian and a few (n_train, d C) products per
    # Newton step.
    widest, classes = max(static.dim_a, static.dim_b), static.n_classes
    erm_work = (3 * 4 * (((widest + 1) * (classes - 1)) ** 2 + 4 * static.n_train * widest * classes)
                if static.optimizer == "erm" else 0)
    return int(data + activations + 3 * 4 * 4 * params + erm_work + 4096)


def metrics(static: StaticSpec) -> dict[str, MetricSpec]:
    """Every metric is a per-run scalar (:data:`METRIC_DTYPES`)."""
    return {name: MetricSpec(dtype, ()) for name, dtype in METRIC_DTYPES.items()}


def runs_concurrently(static: StaticSpec) -> bool:
    """Converged ERM factorises its Hessian (Cholesky) inside the Newton loop: one thread."""
    return static.optimizer != "erm"


def point_from_dict(values: Mapping[str, Any]) -> SimConfig:
    """The config :meth:`SimConfig.as_dict` described."""
    return SimConfig.from_dict(dict(values))


def _shared_identity(config: SimConfig) -> int:
    return 0


def _static_with_kernel(config: SimConfig, kernel: str) -> StaticSpec:
    """:func:`static_of` with another :data:`KERNELS` entry; refused for a config that the margin
    fast path does not train (the kernel trains nothing else)."""
    static = static_of(config)._replace(kernel=kernel)
    if fit_function(static) is not fit_margin_gd:
        needed = dict(model="linear", optimizer="sgd", kd_loss="kl", n_classes=2)
        clash = ", ".join(f"{name}={getattr(static, name)!r}" for name, value in needed.items()
                          if getattr(static, name) != value)
        raise ValueError(f"kernel={kernel!r} is not allowed with {clash}: the fused kernel trains the margin fast "
                         "path only (model='linear', optimizer='sgd', kd_loss='kl', n_classes=2); use kernel='xla'")
    return static


def paper_protocol(common_random_numbers: bool = True, kernel: str = "xla") -> Protocol:
    """The paper's protocol (:func:`make_run`) for the engine: points are :class:`SimConfig`.

    ``common_random_numbers`` (default True): every point's run for seed s takes the key
    ``fold_in(fold_in(PRNGKey(root_seed), 0), s)``, so for a given seed every point sees the same
    hyperplane, samples and initial weights and differences between points are paired (as in the
    paper's Fig. 2, whose no-KD student is the same at every gamma).  False: the identity is
    :meth:`SimConfig.identity`, a hash of the config's content, so every point draws its own.
    ``kernel`` (:data:`KERNELS`): how the margin fast path trains; 'pallas' is a setting of its own
    (its numbers differ from 'xla' in float rounding), refused for configs it does not train.

    Version 2: the run key is split before any draw (version 1 drew the normals from the run key
    and folded tags into that same key), so every number differs from version 1.  Version 3: the
    margin fast path trains each student as a (d, 1) weight vector of its own (version 2 trained a
    run's two students as the columns of one (d, 2) matrix, whose products XLA:CPU rounds
    differently), so its numbers differ from version 2's in float rounding (accuracies by seed
    noise at most), and a no-KD student no longer turns NaN with a teacher whose margins are NaN.
    """
    if not isinstance(common_random_numbers, (bool, np.bool_)):
        raise ValueError(f"common_random_numbers={common_random_numbers!r} is not allowed: use True or False")
    if not isinstance(kernel, str) or kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r} is not allowed: use one of {KERNELS}")
    return _paper_protocol(bool(common_random_numbers), kernel)


@functools.cache
def _paper_protocol(common: bool, kernel: str) -> Protocol:
    """:func:`paper_protocol` for checked settings: one (hashable) protocol per setting."""
    # The default kernel leaves the settings (and so every manifest) as they were before kernels.
    settings = (("common_random_numbers", common),) + ((("kernel", kernel),) if kernel != "xla" else ())
    return Protocol(
        name="paper", version=3, static_of=static_of if kernel == "xla" else functools.partial(
            _static_with_kernel, kernel=kernel), inputs_of=inputs_of,
        identity_of=_shared_identity if common else SimConfig.identity,
        make_run=make_run, metrics=metrics, bytes_per_run=bytes_per_run, describe=SimConfig.as_dict,
        point_from_dict=point_from_dict, result="mfh_sim.results:SweepResult",
        settings=settings, runs_concurrently=runs_concurrently,
        share_of=share_of, make_pack_run=make_pack_run, pack_layout=pack_layout,
    )


#: The paper's protocol with common random numbers (the default of every sweep).
PAPER = paper_protocol()
