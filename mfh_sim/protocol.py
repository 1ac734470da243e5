"""One simulated experiment: data, a teacher on x^a, a no-KD and a KD student on x^b, test accuracy.

:func:`make_run` takes the static part of a config (shapes, model, optimiser kind) and returns a
pure ``run(key, layout, knobs) -> Metrics``, in the style of PureJaxRL's ``make_train``: the
caller jits and vmaps it over seeds and grid points.  Per-run settings that vary across a sweep
(the Venn layout, learning rate, momentum, KD weights, temperature) are traced inputs.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim.config import SimConfig, StaticSpec
from mfh_sim.data import (
    Layout,
    Sample,
    hyperplane_from_normals,
    make_layout,
    sample_from_normals,
    sample_width,
    split,
)
from mfh_sim.losses import cross_entropy, distillation, margin_gradient
from mfh_sim.models import as_flax_params, linear_init_from_normals, linear_init_size, make_model
from mfh_sim.train import (
    accuracy,
    fit,
    fit_linear_margin,
    make_optimizer,
    margin_params,
)


class Knobs(NamedTuple):
    """Scalar settings that may differ between runs of one compiled program (float32)."""

    learning_rate: jax.Array
    momentum: jax.Array
    ce_weight: jax.Array
    kd_weight: jax.Array
    temperature: jax.Array


class Metrics(NamedTuple):
    """Test accuracies in [0, 1] (NaN where that training diverged) and divergence flags."""

    teacher_acc: jax.Array
    no_kd_acc: jax.Array
    kd_acc: jax.Array
    teacher_diverged: jax.Array
    no_kd_diverged: jax.Array
    kd_diverged: jax.Array


def knobs_of(config: SimConfig) -> Knobs:
    return Knobs(*(np.float32(getattr(config, name)) for name in Knobs._fields))


def inputs_of(config: SimConfig) -> tuple[Layout, Knobs]:
    """The traced inputs of ``config``'s run."""
    return make_layout(config.venn, config.hyperplane), knobs_of(config)


class RunDraws(NamedTuple):
    """Everything random in one run: the samples and the linear layers' initial normals."""

    train: Sample
    students: Sample
    test: Sample
    teacher_init: jax.Array
    student_init: jax.Array


def draw_run(key: jax.Array, layout: Layout, static: StaticSpec) -> RunDraws:
    """All of a run's random draws from one call of the random number generator.

    One flat vector of standard normals is cut into the hyperplane (n_latent), the samples
    (train, the students' fresh sample if any, test; each row the latents then both modalities'
    noise channels) and the teacher's and students' initial linear weights.  A single threefry
    call compiles several times faster on a CPU than one per quantity, and the cut is fixed by
    the static shapes, so every quantity keeps its own independent normals.
    """
    n_latent = layout.decisive.shape[-1]
    width = sample_width(layout)
    sizes = (static.n_train,) * (2 if static.fresh_student_sample else 1) + (static.n_test,)
    rows = sum(sizes)
    parts = (n_latent, rows * width, linear_init_size(static.dim_a), linear_init_size(static.dim_b))
    normals = jax.random.normal(key, (sum(parts),))
    hyper, data, teacher_init, student_init = jnp.split(normals, np.cumsum(parts)[:-1])
    w = hyperplane_from_normals(hyper, layout)
    samples = split(sample_from_normals(data.reshape(rows, width), layout, w), sizes)
    train, test = samples[0], samples[-1]
    students = samples[1] if static.fresh_student_sample else train
    return RunDraws(train, students, test, teacher_init, student_init)


def make_run(static: StaticSpec, fast_path: bool = True):
    """A pure ``run(key, layout, knobs) -> Metrics`` for configs sharing ``static``.

    ``fast_path`` trains the paper's linear/SGD models in exact margin form (see
    :func:`mfh_sim.train.fit_linear_margin`); ``False`` forces the generic flax path, which gives
    the same classifiers up to float rounding (tested) and exists for checking that.
    """
    model = make_model(static.model, static.hidden, static.init)

    def initial_params(key: jax.Array, normals: jax.Array, fan_in: int):
        # Linear layers take their weights from the run's shared normals, exactly as the fast
        # path does, so both paths start alike; other models use flax's initialisation.
        if static.model == "linear":
            return as_flax_params(*linear_init_from_normals(normals, fan_in, static.init))
        return model.init(key, jnp.zeros((1, fan_in), jnp.float32))

    def run(key: jax.Array, layout: Layout, knobs: Knobs) -> Metrics:
        draws = draw_run(key, layout, static)
        keys = jax.random.split(jax.random.fold_in(key, 1), 6)
        train, students, test = draws.train, draws.students, draws.test
        if fast_path and static.model == "linear" and static.optimizer == "sgd":
            return _run_linear_sgd(draws, knobs, static)
        optimizer = make_optimizer(static.optimizer, knobs.learning_rate, knobs.momentum)
        teacher, teacher_diverged = fit(
            keys[4], model, train.x_a,
            lambda logits: cross_entropy(logits, train.labels), optimizer, static.steps,
            params=initial_params(keys[4], draws.teacher_init, static.dim_a),
        )
        teacher_logits = model.apply(teacher, students.x_a)
        # Both students start from the same initial weights: their difference is then the effect
        # of KD alone, which makes the paired interval of the KD gain tighter.
        student_init = initial_params(keys[5], draws.student_init, static.dim_b)
        no_kd, no_kd_diverged = fit(
            keys[5], model, students.x_b,
            lambda logits: cross_entropy(logits, students.labels), optimizer, static.steps,
            params=student_init,
        )
        kd_loss = lambda logits: distillation(
            logits, students.labels, teacher_logits,
            ce_weight=knobs.ce_weight, kd_weight=knobs.kd_weight,
            temperature=knobs.temperature, reduction=static.kd_reduction,
        )
        kd, kd_diverged = fit(keys[5], model, students.x_b, kd_loss, optimizer, static.steps,
                              params=student_init)

        def test_acc(params, x, diverged):
            return jnp.where(diverged, jnp.nan, accuracy(model.apply(params, x), test.labels))

        return _metrics(
            test_acc(teacher, test.x_a, teacher_diverged),
            test_acc(no_kd, test.x_b, no_kd_diverged),
            test_acc(kd, test.x_b, kd_diverged | teacher_diverged),
            teacher_diverged, no_kd_diverged, kd_diverged | teacher_diverged,
        )

    return run


def _metrics(teacher_acc, no_kd_acc, kd_acc, teacher_div, no_kd_div, kd_div) -> Metrics:
    return Metrics(teacher_acc, no_kd_acc, kd_acc, teacher_div, no_kd_div, kd_div)


def _run_linear_sgd(draws: "RunDraws", knobs: Knobs, static: StaticSpec) -> Metrics:
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
