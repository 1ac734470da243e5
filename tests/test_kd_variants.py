"""KD losses against hand-computed values, the closed-form logit gradient, the multi-class linear
fast path against the generic trainer, and every KD variant end to end."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mfh_sim
from mfh_sim.config import make_config
from mfh_sim.engine import execute
from mfh_sim.init import linear_init, linear_init_size
from mfh_sim.losses import (
    cross_entropy,
    distillation,
    feature_hint,
    kd_kl,
    logit_gradient,
    logit_mse,
    nontarget_divergence,
)
from mfh_sim.models import as_flax_params, make_model
from mfh_sim.protocols.paper import PAPER
from mfh_sim.train import fit, fit_linear, make_optimizer

STUDENT = jnp.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
TEACHER = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
LABELS = jnp.array([0, 1])


def _softmax(v):
    e = [math.exp(x) for x in v]
    return [x / sum(e) for x in e]


def test_kd_kl_with_temperature_matches_a_hand_computation():
    # T^2 KL(softmax(t/T) || softmax(s/T)) per sample, written out with plain floats.
    temperature = 2.0
    per_sample = []
    for s, t in zip(STUDENT.tolist(), TEACHER.tolist()):
        p = _softmax([x / temperature for x in s])
        q = _softmax([x / temperature for x in t])
        per_sample.append(sum(qk * (math.log(qk) - math.log(pk)) for qk, pk in zip(q, p)))
    batchmean = temperature**2 * sum(per_sample) / 2
    got = float(kd_kl(STUDENT, TEACHER, temperature, reduction="batchmean"))
    assert got == pytest.approx(batchmean, rel=1e-5)
    # 'paper' also averages over the three classes.
    assert float(kd_kl(STUDENT, TEACHER, temperature, reduction="paper")) == pytest.approx(batchmean / 3, rel=1e-5)


def test_logit_mse_and_feature_hint_match_hand_computations():
    # Squared differences: sample 0 (-1, 0, -1) -> 2, sample 1 (0.5, 1, -1) -> 2.25; mean over 6 entries.
    assert float(logit_mse(STUDENT, TEACHER)) == pytest.approx((2 + 2.25) / 6)
    regressed = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    teacher_features = jnp.array([[0.0, 2.0], [1.0, 1.0]])
    assert float(feature_hint(regressed, teacher_features)) == pytest.approx((1 + 0 + 4 + 9) / 4)
    # The teacher is a constant: no gradient reaches it.
    assert np.all(np.asarray(jax.grad(lambda t: feature_hint(regressed, t))(teacher_features)) == 0)
    assert np.all(np.asarray(jax.grad(lambda t: logit_mse(STUDENT, t))(TEACHER)) == 0)


def test_nontarget_divergence_matches_a_hand_computation():
    # Sample 0, target 0: non-target logits teacher (0, 0) -> (1/2, 1/2); student (0, -1).
    q_s = _softmax([0.0, -1.0])
    first = 0.5 * math.log(0.5 / q_s[0]) + 0.5 * math.log(0.5 / q_s[1])
    # Sample 1, target 1: teacher (0, 1), student (0.5, 0).
    q_t, q_s = _softmax([0.0, 1.0]), _softmax([0.5, 0.0])
    second = sum(a * math.log(a / b) for a, b in zip(q_t, q_s))
    got = np.asarray(nontarget_divergence(TEACHER, STUDENT, LABELS))
    np.testing.assert_allclose(got, [first, second], rtol=1e-5)
    two = np.asarray(nontarget_divergence(TEACHER[:, :2], STUDENT[:, :2], LABELS))
    np.testing.assert_allclose(two, 0.0, atol=1e-7)


@pytest.mark.parametrize("reduction", ["paper", "batchmean"])
def test_closed_form_logit_gradient_equals_autodiff(reduction):
    key = jax.random.PRNGKey(0)
    logits = jax.random.normal(key, (5, 4))
    teacher = jax.random.normal(jax.random.fold_in(key, 1), (5, 4))
    labels = jnp.array([0, 3, 1, 2, 3])
    kw = dict(ce_weight=0.7, kd_weight=1.3, temperature=2.5, reduction=reduction)
    expected = jax.grad(lambda l: distillation(l, labels, teacher, **kw))(logits)
    no_kd = jax.grad(lambda l: 0.7 * cross_entropy(l, labels))(logits)
    # Classes first, two heads: head 0 CE only, head 1 CE + KD (the protocol's student pair).
    onehot = jax.nn.one_hot(labels, 4).T[:, :, None]
    both = logit_gradient(jnp.stack([logits.T, logits.T], axis=-1), onehot,
                          jax.nn.softmax(teacher / 2.5, axis=-1).T, kd_head=1, **kw)
    np.testing.assert_allclose(np.asarray(both[:, :, 1].T), np.asarray(expected), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(both[:, :, 0].T), np.asarray(no_kd), rtol=1e-5, atol=1e-7)


def test_multiclass_protocol_fast_path_equals_the_generic_path():
    # One multi-class run through the protocol's fast path, and the same run (same data, same
    # initial weights, same SGD) through the generic autodiff trainer: same accuracies.
    from mfh_sim.config import make_config
    from mfh_sim.protocols.paper import inputs_of, make_run, static_of

    config = make_config(shared=3, a_only=2, b_only=2, unseen=1, dim_a=8, dim_b=8, n_train=40,
                         n_test=300, steps=80, n_classes=3, temperature=2.0, ce_weight=0.5)
    static = static_of(config)
    key = jax.random.PRNGKey(11)
    fast = make_run(static)(key, inputs_of(config))
    generic = _generic_multiclass(key, inputs_of(config), static)
    for name in ("teacher_acc", "no_kd_acc", "kd_acc"):
        # Same iterations up to float rounding: at most a couple of the 300 test points may
        # sit close enough to a decision boundary to flip.
        assert abs(float(getattr(fast, name)) - float(generic[name])) <= 2 / 300, name


def _generic_multiclass(key, inputs, static):
    # The same run through the generic flax path (optax SGD on autodiff gradients of the losses).
    from mfh_sim.protocols.paper import make_run

    metrics = make_run(static, fast_path=False)(key, inputs)
    return {name: getattr(metrics, name) for name in ("teacher_acc", "no_kd_acc", "kd_acc")}


def test_multiclass_fast_path_equals_the_generic_trainer():
    # Same init, same loss, same SGD with momentum: the closed-form iteration must follow autodiff.
    key = jax.random.PRNGKey(3)
    x = jax.random.normal(key, (40, 6))
    labels = jax.random.randint(jax.random.fold_in(key, 1), (40,), 0, 3)
    teacher = jax.random.normal(jax.random.fold_in(key, 2), (40, 3))
    kernel, bias = linear_init(jax.random.normal(jax.random.fold_in(key, 3), (linear_init_size(6, 3),)), 6,
                               n_classes=3)
    kw = dict(ce_weight=0.5, kd_weight=2.0, temperature=3.0, reduction="paper")
    model = make_model("linear", n_classes=3)
    optimizer = optax.chain(optax.trace(decay=0.9), optax.scale(-0.1))
    params, _ = fit(None, model, x, lambda l: distillation(l, labels, teacher, **kw), optimizer, 60,
                    params=as_flax_params(kernel, bias))
    # The fast path lays arrays out classes first: logits (C, n, heads).
    onehot = jax.nn.one_hot(labels, 3).T[:, :, None]
    probs = jax.nn.softmax(teacher / 3.0, axis=-1).T
    w, b, diverged = fit_linear(
        x, kernel.T[:, :, None], bias[:, None], form="logits", steps=60,
        loss_gradient=lambda l: logit_gradient(l, onehot, probs, kd_head=0, **kw),
        optimizer=make_optimizer("sgd", 0.1, 0.9))
    dense = params["params"]["Dense_0"]["Dense_0"]
    np.testing.assert_allclose(np.asarray(w[:, :, 0].T), np.asarray(dense["kernel"]), atol=2e-5)
    np.testing.assert_allclose(np.asarray(b[:, 0]), np.asarray(dense["bias"]), atol=2e-5)
    assert not bool(diverged[0])


SMALL = dict(shared=3, a_only=2, b_only=2, unseen=1, dim_a=8, dim_b=8, n_train=40, n_test=200, steps=60)


# Five structurally different programs (each compiles once; kd_weight and temperature are traced).
@pytest.mark.parametrize("variant", [
    dict(kd_loss="mse"),
    dict(kd_loss="hint", model="mlp", hidden=(6,)),
    dict(ce_weight=0.0, kd_loss="mse", n_classes=3),  # pure KD by logit MSE, generic path
    dict(n_classes=3, temperature=4.0),  # multi-class linear fast path
    dict(ce_weight=0.0, label_noise=0.2, mixing_depth=1, mixing_strength=0.5),  # pure KD, margin path
])
def test_every_kd_variant_runs_end_to_end(variant):
    config = make_config(**SMALL, **variant)
    out = execute(PAPER, [config], np.arange(3), workers=1)
    for name in ("teacher_acc", "no_kd_acc", "kd_acc"):
        assert np.all((out[name] >= 0) & (out[name] <= 1)), name
    assert not out["kd_diverged"].any()
    nontarget = out["nontarget_kl"]
    if config.n_classes > 2:
        assert np.all(nontarget > 0)
    else:
        assert np.all(nontarget == 0)


def test_kd_weight_zero_leaves_the_kd_student_equal_to_no_kd():
    # With kd_weight = 0 and ce_weight = 1 both students minimise the same loss from the same init.
    # Same static signatures as the variants above, so nothing new compiles.
    for extra in (dict(kd_loss="mse"), dict(n_classes=3), dict(kd_loss="hint", model="mlp", hidden=(6,))):
        out = execute(PAPER, [make_config(**SMALL, kd_weight=0.0, **extra)], np.arange(3), workers=1)
        np.testing.assert_array_equal(out["kd_acc"], out["no_kd_acc"])


def test_sweeps_over_kd_weight_temperature_and_n_train_reach_the_new_knobs():
    import mfh_sim

    base = {k: v for k, v in SMALL.items() if k != "n_train"}
    # (A temperature belongs to the KL term: with kd_loss='mse' it would be refused.)
    result = mfh_sim.sweep(points=[dict(base, kd_loss="kl")], kd_weight=[0.0, 2.0], temperature=[1.0, 4.0],
                           n_train=[40], seeds=2, theory=False, workers=1)
    assert len(result) == 4
    assert list(result.kd_weight) == [0.0, 0.0, 2.0, 2.0] and list(result.temperature) == [1.0, 4.0, 1.0, 4.0]
    assert all(c.kd_loss == "kl" for c in result.configs)
    # kd_weight = 0: the KD student is the no-KD student (same loss, same init).
    np.testing.assert_array_equal(result.kd_acc[:2], result.no_kd_acc[:2])


# Two Venn diagrams with SMALL's shapes (8 latents, 8 + 8 channels: the programs above), between
# which only what the teacher knows of the student's decisive latents differs: everything, or
# nothing (its decisive latents are independent of everything the student sees).
TEACHER_KNOWS = dict(shared=4, a_only=2, b_only=0, unseen=2)
TEACHER_KNOWS_NOTHING = dict(shared=0, a_only=4, b_only=4, unseen=0)
VARIANT_SEEDS = 24


@pytest.mark.parametrize("variant, weights", [
    (dict(kd_loss="mse"), (1.0, 4.0)),
    (dict(kd_loss="hint", model="mlp", hidden=(6,)), (4.0, 16.0)),  # a hint acts through the features only
], ids=["mse", "hint"])
def test_mse_and_hint_kd_move_the_student_toward_the_teacher(variant, weights):
    """The KD student follows the teacher, as far as the KD term weighs.

    * CE + KD: the KD gain from a teacher that knows the student's decisive latents exceeds the
      gain from one that knows none of them (paired over seeds); the second teacher's logits or
      features pull the student away from the labels at the heavier weight.  Without a working KD
      term both gains are 0.
    * Pure logit matching (MSE, ce_weight = 0): the student learns only from the teacher, and
      from the teacher that knows its latents it learns far above chance (a student whose KD term
      does nothing keeps its initial weights: chance).  (A hint trains the features only, so a
      pure-hint student's head never learns: no such check for it.)

    Intervals: 95%, paired over 24 seeds (common random numbers).  The margins at these seeds are
    4-5 standard errors.
    """
    base = {k: v for k, v in SMALL.items() if k not in ("shared", "a_only", "b_only", "unseen")}
    points = [dict(base, **venn, **variant, kd_weight=w) for venn in (TEACHER_KNOWS, TEACHER_KNOWS_NOTHING)
              for w in weights]
    pure = variant["kd_loss"] == "mse"
    if pure:
        points.append(dict(base, **TEACHER_KNOWS, **variant, ce_weight=0.0, kd_weight=weights[0]))
    result = mfh_sim.sweep(points=points, seeds=VARIANT_SEEDS, theory=False, workers=1)
    assert not result.arrays["kd_diverged"].any()
    gain = result.kd_acc.astype(np.float64) - result.no_kd_acc

    def interval(values):  # 95% interval of the mean
        half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
        return values.mean() - half, values.mean() + half

    knows_heavy, knows_nothing_heavy = gain[1], gain[3]
    assert interval(knows_heavy - knows_nothing_heavy)[0] > 0
    assert interval(knows_nothing_heavy)[1] < 0
    if pure:
        assert interval(result.kd_acc[4].astype(np.float64) - 0.5)[0] > 0.1
