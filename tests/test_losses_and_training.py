import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mfh_sim.init import linear_init, linear_init_size
from mfh_sim.losses import cross_entropy, distillation, kd_kl, margin_gradient
from mfh_sim.models import as_flax_params, make_model
from mfh_sim.train import fit, fit_linear, make_optimizer, margin_logits, margin_params


def test_cross_entropy_by_hand():
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0]])
    labels = jnp.array([0, 0])
    expected = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(1.0))) / 2
    assert float(cross_entropy(logits, labels)) == pytest.approx(expected, rel=1e-6)


def test_kd_kl_by_hand_and_paper_reduction():
    student = jnp.array([[0.0, 1.0], [2.0, -1.0]])
    teacher = jnp.array([[1.0, 0.0], [0.0, 0.0]])
    temperature = 2.0

    def softmax(row):
        e = np.exp(np.asarray(row) / temperature)
        return e / e.sum()

    per_sample = [
        sum(q * math.log(q / p) for q, p in zip(softmax(t), softmax(s)))
        for s, t in zip(np.asarray(student), np.asarray(teacher))
    ]
    batchmean = temperature**2 * np.mean(per_sample)
    assert float(kd_kl(student, teacher, temperature, "batchmean")) == pytest.approx(batchmean, rel=1e-5)
    # PyTorch's KLDivLoss(reduction='mean') averages over batch and classes: half with 2 classes.
    assert float(kd_kl(student, teacher, temperature, "paper")) == pytest.approx(batchmean / 2, rel=1e-5)
    total = distillation(student, jnp.array([1, 0]), teacher, ce_weight=0.3, kd_weight=2.0,
                         temperature=temperature, reduction="paper")
    expected = 0.3 * float(cross_entropy(student, jnp.array([1, 0]))) + 2.0 * batchmean / 2
    assert float(total) == pytest.approx(expected, rel=1e-5)


def test_kd_kl_is_zero_at_the_teacher_and_gives_no_teacher_gradient():
    logits = jnp.array([[0.3, -0.2], [1.0, 2.0]])
    assert float(kd_kl(logits, logits, 1.5)) == pytest.approx(0.0, abs=1e-7)
    grad_teacher = jax.grad(lambda t: kd_kl(logits + 1.0, t))(logits)
    np.testing.assert_array_equal(np.asarray(grad_teacher), 0.0)


@pytest.mark.parametrize("reduction", ["paper", "batchmean"])
def test_margin_gradient_matches_autodiff(reduction):
    key = jax.random.PRNGKey(1)
    margins = 3 * jax.random.normal(key, (64,))
    teacher = 3 * jax.random.normal(jax.random.fold_in(key, 1), (64,))
    labels = (jax.random.normal(jax.random.fold_in(key, 2), (64,)) > 0).astype(jnp.int32)
    loss = lambda m: distillation(margin_logits(m), labels, margin_logits(teacher), ce_weight=0.7,
                                  kd_weight=1.3, temperature=2.5, reduction=reduction)
    expected = jax.grad(loss)(margins)
    closed = margin_gradient(margins, labels.astype(jnp.float32), teacher, ce_weight=0.7,
                             kd_weight=1.3, temperature=2.5, reduction=reduction)
    np.testing.assert_allclose(np.asarray(closed), np.asarray(expected), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_margin_fast_path_equals_two_output_flax_training(momentum):
    """The exact fast path trains the same classifier as the flax two-output layer under SGD."""
    key = jax.random.PRNGKey(0)
    n, d, steps, lr = 100, 7, 150, 0.1
    x = jax.random.normal(key, (n, d))
    labels = (x[:, 0] - x[:, 1] + 0.5 * jax.random.normal(jax.random.fold_in(key, 1), (n,)) > 0).astype(jnp.int32)
    teacher = margin_logits(2.0 * x[:, 0])
    kernel, bias = linear_init(jax.random.normal(jax.random.PRNGKey(5), (linear_init_size(d),)), d, init="torch")
    model = make_model("linear")
    loss = lambda logits: distillation(logits, labels, teacher, ce_weight=1.0, kd_weight=1.0, reduction="paper")
    params, diverged = fit(None, model, x, loss, make_optimizer("sgd", lr, momentum), steps,
                           params=as_flax_params(kernel, bias))
    flax_margins = np.diff(np.asarray(model.apply(params, x)), axis=1)[:, 0]

    w, b = margin_params(kernel, bias)
    gradient = lambda m: margin_gradient(m, labels.astype(jnp.float32)[:, None], teacher[:, 1:2],
                                         ce_weight=1.0, kd_weight=1.0, reduction="paper")
    w, b, fast_diverged = fit_linear(x, w[:, None], b[None], loss_gradient=gradient, form="margin",
                                     optimizer=make_optimizer("sgd", lr, momentum), steps=steps)
    fast_margins = np.asarray(x @ w + b)[:, 0]
    assert not bool(diverged) and not bool(fast_diverged[0])
    np.testing.assert_allclose(fast_margins, flax_margins, rtol=1e-4, atol=1e-4)


def test_fit_flags_divergence():
    x = jnp.ones((8, 3)) * 1e20
    # A quadratic loss on enormous inputs overflows float32 within a few steps.
    loss = lambda logits: jnp.mean((logits - 1.0) ** 2)
    _, diverged = fit(jax.random.PRNGKey(0), make_model("linear"), x, loss, make_optimizer("sgd", 1.0), 5)
    assert bool(diverged)
    w, b, fast_diverged = fit_linear(x, jnp.ones((3, 1)), jnp.zeros(1), loss_gradient=lambda m: m * 1e20,
                                     form="margin", optimizer=make_optimizer("sgd", 1e20), steps=5)
    assert bool(fast_diverged[0])


def test_mlp_trains_on_a_nonlinear_rule():
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (400, 2))
    labels = (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)  # XOR-like: no linear model beats ~50%
    model = make_model("mlp", hidden=(32,), init="lecun")
    params, diverged = fit(key, model, x, lambda l: cross_entropy(l, labels), make_optimizer("adam", 0.02), 600)
    accuracy = float(jnp.mean(jnp.argmax(model.apply(params, x), -1) == labels))
    assert not bool(diverged) and accuracy > 0.9


def test_bad_model_choices():
    with pytest.raises(ValueError, match="model='cnn'"):
        make_model("cnn")
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(ValueError, match="reduction='sum'"):
        kd_kl(jnp.zeros((2, 2)), jnp.zeros((2, 2)), 1.0, "sum")
