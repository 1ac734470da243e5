"""One simulated experiment: data, a teacher on x^a, a no-KD and a KD student on x^b, test accuracy.

:func:`make_run` takes the static part of a config (shapes, model, optimiser kind) and returns a
pure ``run(key, layout, knobs) -> Metrics``, in the style of PureJaxRL's ``make_train``: the
caller jits and vmaps it over seeds and grid points.  Per-run settings that vary across a sweep
(the Venn layout, learning rate, momentum, KD weights, temperature, label noise, mixing strength)
are traced inputs.

Two paths.  The paper's setting (linear two-class models, SGD, the KL loss) trains in the exact
margin form of :func:`mfh_sim.train.fit_linear_margin`; everything else (more classes, MLPs,
Adam, the logit-MSE and feature-hint KD losses) goes through the generic :func:`mfh_sim.train.fit`.
The generator's extensions (label noise, nonlinear mixing of the channels, latent padding) only
change the data, so they run on either path.

Random draws: the paper's draws (hyperplane, samples, initial linear weights) come from one call
of the generator with the run's key (:func:`draw_run`); every draw added by an extension comes
from the run's key folded with its own tag, so a config that uses no extension draws exactly what
it would without the extensions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim import erm
from mfh_sim.config import SimConfig, StaticSpec
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
from mfh_sim.losses import (
    cross_entropy,
    distillation,
    feature_hint,
    logit_mse,
    margin_gradient,
    nontarget_divergence,
)
from mfh_sim.models import (
    HintStudent,
    as_flax_params,
    hint_student_params,
    linear_init_from_normals,
    linear_init_size,
    make_model,
)
from mfh_sim.protocols import MetricSpec, Protocol
from mfh_sim.train import (
    accuracy,
    fit,
    fit_linear_logits,
    fit_linear_margin,
    make_optimizer,
    margin_params,
    softmax_first,
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


def knobs_of(config: SimConfig) -> Knobs:
    return Knobs(*(np.float32(getattr(config, name)) for name in Knobs._fields))


def inputs_of(config: SimConfig) -> tuple[Layout, Knobs]:
    """The traced inputs of ``config``'s run."""
    return make_layout(config.venn, config.hyperplane, config.latent_padding), knobs_of(config)


class RunDraws(NamedTuple):
    """Everything random in one run: the samples and the linear layers' initial normals."""

    train: Sample
    students: Sample
    test: Sample
    teacher_init: jax.Array
    student_init: jax.Array


def draw_run(key: jax.Array, layout: Layout, knobs: Knobs, static: StaticSpec) -> RunDraws:
    """All of a run's random draws, the paper's from one call of the random number generator.

    One flat vector of standard normals is cut into the hyperplane (n_latent), the samples
    (train, the students' fresh sample if any, test; each row the latents then both modalities'
    noise channels) and the teacher's and students' initial linear weights.  A single threefry
    call compiles several times faster on a CPU than one per quantity, and the cut is fixed by
    the static shapes, so every quantity keeps its own independent normals.  ``key`` is the
    run's key; it is split first (:func:`split_run_key`) and the normals come from its
    ``draws`` child, the extensions (class directions, label noise, channel mixing) from their
    own children, so no draw shares a key with another.
    """
    keys = split_run_key(key)
    n_latent = layout.decisive.shape[-1]
    width = sample_width(layout)
    sizes = (static.n_train,) * (2 if static.fresh_student_sample else 1) + (static.n_test,)
    rows = sum(sizes)
    init_a = linear_init_size(static.dim_a, static.n_classes)
    init_b = linear_init_size(static.dim_b, static.n_classes)
    parts = (n_latent, rows * width, init_a, init_b)
    normals = jax.random.normal(keys.draws, (sum(parts),))
    hyper, data, teacher_init, student_init = jnp.split(normals, np.cumsum(parts)[:-1])
    if static.n_classes == 2:
        w = hyperplane_from_normals(hyper, layout)
    else:
        w = class_directions(keys.classes, layout, static.n_classes)
    data = sample_from_normals(data.reshape(rows, width), layout, w)
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
    return RunDraws(train, students, test, teacher_init, student_init)


def make_run(static: StaticSpec, fast_path: bool = True):
    """A pure ``run(key, layout, knobs) -> Metrics`` for configs sharing ``static``.

    ``fast_path`` trains linear models under SGD with the KL loss in closed form (the exact
    margin form of :func:`mfh_sim.train.fit_linear_margin` for two classes, closed-form logit
    gradients for more); ``False`` forces the generic flax path, which gives the same
    classifiers up to float rounding (tested) and exists for checking that.
    """
    n_classes = static.n_classes
    model = make_model(static.model, static.hidden, static.init, n_classes=n_classes)

    def initial_params(key: jax.Array, normals: jax.Array, fan_in: int):
        # Linear layers take their weights from the run's shared normals, exactly as the fast
        # path does, so both paths start alike; other models use flax's initialisation.
        if static.model == "linear":
            return as_flax_params(*linear_init_from_normals(normals, fan_in, static.init, n_classes))
        return model.init(key, jnp.zeros((1, fan_in), jnp.float32))

    def run(key: jax.Array, layout: Layout, knobs: Knobs) -> Metrics:
        draws = draw_run(key, layout, knobs, static)
        # Keys for flax's initialisation of non-linear models (linear layers use the draws).
        keys = split_run_key(key)
        train, students, test = draws.train, draws.students, draws.test
        if static.optimizer == "erm":
            return _run_linear_erm(draws, knobs, static)
        if fast_path and static.uses_margin_fast_path:
            return _run_linear_sgd(draws, knobs, static)
        if fast_path and static.model == "linear" and static.optimizer == "sgd" and static.kd_loss == "kl":
            return _run_linear_sgd_multiclass(draws, knobs, static)
        optimizer = make_optimizer(static.optimizer, knobs.learning_rate, knobs.momentum)
        teacher, teacher_diverged = fit(
            keys.teacher_init, model, train.x_a,
            lambda logits: cross_entropy(logits, train.labels), optimizer, static.steps,
            params=initial_params(keys.teacher_init, draws.teacher_init, static.dim_a),
        )
        teacher_logits = model.apply(teacher, students.x_a)
        # Both students start from the same initial weights: their difference is then the effect
        # of KD alone, which makes the paired interval of the KD gain tighter.
        student_init = initial_params(keys.student_init, draws.student_init, static.dim_b)
        no_kd, no_kd_diverged = fit(
            keys.student_init, model, students.x_b,
            lambda logits: cross_entropy(logits, students.labels), optimizer, static.steps,
            params=student_init,
        )
        kd_loss_kind = static.kd_loss
        kd_model, kd_init = model, None
        ce = lambda logits: knobs.ce_weight * cross_entropy(logits, students.labels)
        if kd_loss_kind == "kl":
            kd_loss = lambda logits: distillation(
                logits, students.labels, teacher_logits,
                ce_weight=knobs.ce_weight, kd_weight=knobs.kd_weight,
                temperature=knobs.temperature, reduction=static.kd_reduction,
            )
        elif kd_loss_kind == "mse":
            kd_loss = lambda logits: ce(logits) + knobs.kd_weight * logit_mse(logits, teacher_logits)
        else:  # 'hint': the teacher's last hidden layer, matched through a learned regressor
            teacher_features = model.apply(teacher, students.x_a, features=True)
            kd_model = HintStudent(n_classes, static.hidden, static.hidden[-1], static.init)
            kd_init = hint_student_params(
                model.init(keys.student_init, students.x_b[:1]), keys.hint,
                static.hidden, static.hidden[-1], static.init,
            )
            kd_loss = lambda outputs: ce(outputs[0]) + knobs.kd_weight * feature_hint(
                outputs[1], teacher_features
            )
        kd, kd_diverged = fit(keys.student_init, kd_model, students.x_b, kd_loss, optimizer, static.steps,
                              params=student_init if kd_init is None else kd_init)
        kd_logits = kd_model.apply(kd, test.x_b)
        if kd_loss_kind == "hint":
            kd_logits = kd_logits[0]

        def test_acc(logits, diverged):
            return jnp.where(diverged, jnp.nan, accuracy(logits, test.labels))

        teacher_test = model.apply(teacher, test.x_a)
        no_kd_test = model.apply(no_kd, test.x_b)
        nontarget = jnp.where(
            teacher_diverged | no_kd_diverged, jnp.nan,
            jnp.mean(nontarget_divergence(teacher_test, no_kd_test, test.labels)),
        )
        return _metrics(
            test_acc(teacher_test, teacher_diverged),
            test_acc(no_kd_test, no_kd_diverged),
            test_acc(kd_logits, kd_diverged | teacher_diverged),
            teacher_diverged, no_kd_diverged, kd_diverged | teacher_diverged,
            nontarget,
        )

    return run


def _metrics(teacher_acc, no_kd_acc, kd_acc, teacher_div, no_kd_div, kd_div, nontarget=None) -> Metrics:
    if nontarget is None:
        # Two classes: one non-target class, so the non-target divergence is 0 by definition.
        nontarget = jnp.where(teacher_div | no_kd_div, jnp.nan, 0.0).astype(jnp.float32)
    return Metrics(teacher_acc, no_kd_acc, kd_acc, teacher_div, no_kd_div, kd_div, nontarget)


def _run_linear_erm(draws: RunDraws, knobs: Knobs, static: StaticSpec) -> Metrics:
    """The protocol with every fit converged ridge-logistic ERM (:func:`mfh_sim.erm.newton_solve`).

    Same draws as gradient training (the initial weights are drawn but unused): teacher on x^a of
    the training sample, no-KD and KD students on x^b of the students' sample, accuracies on the
    test sample.  A fit that does not reach the solver's tolerance is flagged ``*_diverged`` and
    its accuracy is NaN, as a diverged gradient run's.  ``kd_loss='mse'``: the KD student's term is
    the logit MSE's margin part (kd_weight / 4) (h - t)^2, temperature and reduction unused (the
    simulator's logit MSE has neither; :func:`mfh_sim.erm.effective_kd_weight`).
    """
    train, students, test = draws.train, draws.students, draws.test
    iterations, tol = erm.DEFAULT_ITERATIONS, erm.DEFAULT_TOL
    teacher = erm.newton_solve(train.x_a, train.labels, jnp.zeros(train.x_a.shape[0]), knobs.l2,
                               1.0, 0.0, 1.0, iterations, tol)
    teacher_margins = students.x_a @ teacher.theta + teacher.bias
    no_kd = erm.newton_solve(students.x_b, students.labels, teacher_margins, knobs.l2, 1.0, 0.0, 1.0,
                             iterations, tol)
    kd = erm.newton_solve(students.x_b, students.labels, teacher_margins, knobs.l2, knobs.ce_weight,
                          erm.effective_kd_weight(knobs.kd_weight, static.kd_reduction, static.kd_loss),
                          knobs.temperature, iterations, tol, kd_loss=static.kd_loss)
    positive = test.labels == 1

    def test_acc(fit: erm.ErmFit, x: jax.Array, failed: jax.Array) -> jax.Array:
        return jnp.where(failed, jnp.nan, jnp.mean(((x @ fit.theta + fit.bias) > 0) == positive))

    teacher_failed, no_kd_failed = ~teacher.converged, ~no_kd.converged
    kd_failed = ~kd.converged | teacher_failed
    return _metrics(test_acc(teacher, test.x_a, teacher_failed), test_acc(no_kd, test.x_b, no_kd_failed),
                    test_acc(kd, test.x_b, kd_failed), teacher_failed, no_kd_failed, kd_failed)


def _run_linear_sgd(draws: RunDraws, knobs: Knobs, static: StaticSpec) -> Metrics:
    """The paper's linear models under full-batch SGD, trained in margin form (exactly equivalent;
    see :func:`mfh_sim.train.fit_linear_margin`) with both students in one pass over x^b."""
    train, students, test = draws.train, draws.students, draws.test
    teacher_w, teacher_b = margin_params(*linear_init_from_normals(draws.teacher_init, static.dim_a, static.init))
    student_w, student_b = margin_params(*linear_init_from_normals(draws.student_init, static.dim_b, static.init))
    train_labels = train.labels.astype(jnp.float32)[:, None]
    teacher_w, teacher_b, teacher_div = fit_linear_margin(
        train.x_a, teacher_w[:, None], teacher_b[None],
        lambda m: margin_gradient(m, train_labels),
        knobs.learning_rate, knobs.momentum, static.steps,
    )
    teacher_margins = students.x_a @ teacher_w + teacher_b  # (n, 1)
    student_labels = students.labels.astype(jnp.float32)[:, None]
    # Head 0 is the no-KD student (CE only), head 1 the KD student.
    ce_weights = jnp.stack([jnp.float32(1.0), knobs.ce_weight])
    kd_weights = jnp.stack([jnp.float32(0.0), knobs.kd_weight])
    student_gradient = lambda m: margin_gradient(
        m, student_labels, teacher_margins, ce_weight=ce_weights, kd_weight=kd_weights,
        temperature=knobs.temperature, reduction=static.kd_reduction,
    )
    # Both students start from the same initial weights: their difference is then the effect of
    # KD alone, which makes the paired interval of the KD gain tighter.
    both_w, both_b, student_div = fit_linear_margin(
        students.x_b, jnp.stack([student_w, student_w], axis=1), jnp.stack([student_b, student_b]),
        student_gradient, knobs.learning_rate, knobs.momentum, static.steps,
    )
    teacher_div = teacher_div[0]
    kd_div = student_div[1] | teacher_div

    def test_acc(margins, diverged):
        return jnp.where(diverged, jnp.nan, jnp.mean((margins > 0) == (test.labels == 1)))

    test_b = test.x_b @ both_w + both_b
    return _metrics(
        test_acc(test.x_a @ teacher_w[:, 0] + teacher_b[0], teacher_div),
        test_acc(test_b[:, 0], student_div[0]),
        test_acc(test_b[:, 1], kd_div),
        teacher_div, student_div[0], kd_div,
    )


def _run_linear_sgd_multiclass(draws: RunDraws, knobs: Knobs, static: StaticSpec) -> Metrics:
    """Linear models with more than two classes under full-batch SGD and the KL loss, trained with
    closed-form logit gradients (:func:`mfh_sim.train.fit_linear_logits`), both students in one pass over x^b.

    The gradients are those of :func:`mfh_sim.losses.logit_gradient`, written out classes first;
    the teacher's softened probabilities are computed once, outside the training loop, and the
    softened student softmax only for the KD head (XLA does not hoist loop invariants out of a
    scan)."""
    classes = static.n_classes
    train, students, test = draws.train, draws.students, draws.test
    teacher_w, teacher_b = linear_init_from_normals(draws.teacher_init, static.dim_a, static.init, classes)
    student_w, student_b = linear_init_from_normals(draws.student_init, static.dim_b, static.init, classes)
    classes_first = lambda labels: jax.nn.one_hot(labels, classes, dtype=jnp.float32).T[:, :, None]
    n_train, n = train.x_a.shape[0], students.x_b.shape[0]
    train_onehot = classes_first(train.labels)  # (C, n, 1)
    teacher_w, teacher_b, teacher_div = fit_linear_logits(
        train.x_a, teacher_w.T[:, :, None], teacher_b[:, None],
        lambda logits: (softmax_first(logits) - train_onehot) / n_train,
        knobs.learning_rate, knobs.momentum, static.steps,
    )
    teacher_w, teacher_b = teacher_w[:, :, 0].T, teacher_b[:, 0]  # back to (d, C), (C,)
    teacher_logits = students.x_a @ teacher_w + teacher_b  # (n, C)
    teacher_soft = softmax_first(teacher_logits.T / knobs.temperature)  # (C, n)
    onehot = classes_first(students.labels)
    # Head 0 is the no-KD student (CE only), head 1 the KD student.
    ce_weights = jnp.stack([jnp.float32(1.0), knobs.ce_weight])
    kd_scale = knobs.kd_weight * knobs.temperature / (
        n * (classes if static.kd_reduction == "paper" else 1))

    def student_gradient(logits):
        grad = ce_weights * (softmax_first(logits) - onehot) / n
        soft = softmax_first(logits[:, :, 1] / knobs.temperature)
        return grad.at[:, :, 1].add(kd_scale * (soft - teacher_soft))

    # Both students start from the same initial weights (see make_run).
    both_w, both_b, student_div = fit_linear_logits(
        students.x_b, jnp.stack([student_w.T, student_w.T], axis=-1),
        jnp.stack([student_b, student_b], axis=-1),
        student_gradient, knobs.learning_rate, knobs.momentum, static.steps,
    )
    teacher_div = teacher_div[0]
    kd_div = student_div[1] | teacher_div

    def test_acc(logits, diverged):
        return jnp.where(diverged, jnp.nan, accuracy(logits, test.labels))

    teacher_test = test.x_a @ teacher_w + teacher_b
    students_test = jnp.einsum("nd,cdh->hnc", test.x_b, both_w) + both_b.T[:, None, :]  # (2, n, C)
    nontarget = jnp.where(
        teacher_div | student_div[0], jnp.nan,
        jnp.mean(nontarget_divergence(teacher_test, students_test[0], test.labels)),
    )
    return _metrics(
        test_acc(teacher_test, teacher_div),
        test_acc(students_test[0], student_div[0]),
        test_acc(students_test[1], kd_div),
        teacher_div, student_div[0], kd_div,
        nontarget,
    )


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
    # Converged ERM holds a (d + 1)^2 Hessian and a few (n_train, d) products per Newton step.
    widest = max(static.dim_a, static.dim_b)
    erm_work = 3 * 4 * ((widest + 1) ** 2 + 4 * static.n_train * widest) if static.optimizer == "erm" else 0
    return int(data + activations + 3 * 4 * 4 * params + erm_work + 4096)


@dataclass(frozen=True)
class PaperProtocol(Protocol):
    """The paper's protocol (:func:`make_run`) for the engine: points are :class:`SimConfig`.

    ``common_random_numbers`` (default True): every point's run for seed s takes the key
    ``fold_in(fold_in(PRNGKey(root_seed), 0), s)``, so for a given seed every point sees the same
    hyperplane, samples and initial weights and differences between points are paired (as in the
    paper's Fig. 2, whose no-KD student is the same at every gamma).  False: the identity is
    :meth:`SimConfig.identity`, a hash of the config's content, so every point draws its own.
    """

    common_random_numbers: bool = True

    name = "paper"
    #: 2: the run key is split before any draw (version 1 drew the normals from the run key and
    #: folded tags into that same key), so every number differs from version 1.
    version = 2

    def static_of(self, point: SimConfig) -> StaticSpec:
        return point.static_signature()

    def inputs_of(self, point: SimConfig) -> tuple[Layout, Knobs]:
        return inputs_of(point)

    def identity_of(self, point: SimConfig) -> int:
        return 0 if self.common_random_numbers else point.identity()

    def make_run(self, static: StaticSpec) -> Callable[[jax.Array, tuple[Layout, Knobs]], Metrics]:
        run = make_run(static)
        return lambda key, inputs: run(key, *inputs)

    def metrics(self, static: StaticSpec) -> dict[str, MetricSpec]:
        return {name: MetricSpec(dtype, ()) for name, dtype in METRIC_DTYPES.items()}

    def bytes_per_run(self, static: StaticSpec) -> int:
        return bytes_per_run(static)

    def describe(self, point: SimConfig) -> dict[str, Any]:
        return point.as_dict()

    def point_from_dict(self, values: Mapping[str, Any]) -> SimConfig:
        return SimConfig.from_dict(dict(values))

    def settings(self) -> dict[str, Any]:
        return {"common_random_numbers": bool(self.common_random_numbers)}

    def runs_concurrently(self, static: StaticSpec) -> bool:
        # Converged ERM factorises its Hessian (Cholesky) inside the Newton loop.
        return static.optimizer != "erm"


#: The paper's protocol with common random numbers (the default of every sweep).
PAPER = PaperProtocol()
