"""Pure training functions: a whole run of full-batch optimisation is one ``lax.scan``.

One loop, :func:`descend`: ``steps`` updates of an optax optimiser driven by a *gradient
function* ``params -> (gradient, non-finite flag)``.  What differs between the models is only
that function:

* :func:`fit`: autodiff (``jax.value_and_grad``) of ``loss_of_logits(model.apply(params, x))``,
  any flax model and optimiser;
* :func:`fit_linear_margin`: the closed-form margin gradient of two-class linear models
  (:func:`mfh_sim.losses.margin_gradient`), several heads on one input;
* :func:`fit_linear_logits`: closed-form logit gradients of multi-class linear models
  (:func:`mfh_sim.losses.logit_gradient`), several heads on one input;
* Algorithm 1's joint pair (:mod:`mfh_sim.salience`).

Nothing in it depends on Python values other than shapes and ``steps``, so it jits and vmaps over
seeds and over grid points (learning rate, momentum and loss weights may be traced arrays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mfh_sim.choices import OPTIMIZERS  # noqa: E402,F401  (the vocabulary lives in choices)


def make_optimizer(
    optimizer: str, learning_rate: float | jax.Array, momentum: float | jax.Array = 0.0
) -> optax.GradientTransformation:
    """optax SGD (heavy-ball ``momentum`` in [0, 1)) or Adam at ``learning_rate``.

    ``momentum`` is always applied through a trace so that it may be a traced value; with
    ``momentum = 0`` the update is exactly ``-learning_rate * grad``.
    """
    if optimizer == "sgd":
        return optax.chain(optax.trace(decay=momentum), optax.scale(-learning_rate))
    if optimizer == "adam":
        return optax.adam(learning_rate)
    raise ValueError(f"optimizer={optimizer!r} is not allowed: use one of {OPTIMIZERS}")


def descend(
    params: Any,
    gradient: Callable[[Any], tuple[Any, jax.Array]],
    optimizer: optax.GradientTransformation,
    steps: int,
) -> tuple[Any, jax.Array]:
    """``steps`` full-batch steps of ``optimizer``: the one training loop.

    ``gradient(params)`` returns ``(g, bad)``: g, the gradient of the loss at ``params`` (a pytree
    like ``params``), and ``bad``, a boolean array (any shape, e.g. one flag per head) that is
    True where the loss or the outputs it is computed from are non-finite.  Each step is

        updates, state = optimizer.update(g, state, params);  params = params + updates,

    and the flags are or-ed over the steps.  Returns ``(params, diverged)``: the final parameters
    and the flags (the parameters of a flagged model are meaningless).
    """
    flags = jax.eval_shape(gradient, params)[1]

    def step(carry, _):
        params, state, diverged = carry
        grads, bad = gradient(params)
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state, diverged | bad), None

    carry = (params, optimizer.init(params), jnp.zeros(flags.shape, bool))
    (params, _, diverged), _ = jax.lax.scan(step, carry, None, length=steps)
    return params, diverged


def fit(
    key: jax.Array,
    model,
    x: jax.Array,
    loss_of_logits: Callable[[jax.Array], jax.Array],
    optimizer: optax.GradientTransformation,
    steps: int,
    params=None,
):
    """Minimise ``loss_of_logits(model.apply(params, x))`` by ``steps`` full-batch steps.

    Returns ``(params, diverged)`` where ``diverged`` is True if the loss was non-finite at any
    step (the parameters are then meaningless and callers report the run as diverged).
    """
    if params is None:
        params = model.init(key, x[:1])
    loss = lambda p: loss_of_logits(model.apply(p, x))

    def gradient(p):
        value, grads = jax.value_and_grad(loss)(p)
        return grads, ~jnp.isfinite(value)

    params, diverged = descend(params, gradient, optimizer, steps)
    diverged = diverged | ~jnp.isfinite(loss(params))
    return params, diverged


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of samples whose arg-max logit is the label, in [0, 1]."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def margin_params(kernel: jax.Array, bias: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(v, c) = (kernel[:, 1] - kernel[:, 0], bias[1] - bias[0]) of a two-class linear layer."""
    return kernel[:, 1] - kernel[:, 0], bias[1] - bias[0]


def margin_logits(margins: jax.Array) -> jax.Array:
    """Two-class logits [0, m] with the same softmax as any logits whose difference is m."""
    return jnp.stack([jnp.zeros_like(margins), margins], axis=-1)


def fit_linear_margin(
    x: jax.Array,
    weights: jax.Array,
    biases: jax.Array,
    margin_gradient: Callable[[jax.Array], jax.Array],
    learning_rate: float | jax.Array,
    momentum: float | jax.Array,
    steps: int,
):
    """Full-batch heavy-ball GD of ``heads`` two-class linear classifiers that share the input ``x``.

    Exact fast path for the paper's model.  A two-output linear layer trained on a loss that
    depends on its logits only through softmax sees only the margin m = l_1 - l_0: the gradients
    of its two columns are opposite, so their sum never moves and their difference
    v = w_1 - w_0 follows GD on the margin model m = x.v + c with twice the learning rate
    (momentum is linear, so the same holds with momentum).  Training the margin model therefore
    gives the same predictions as training the two-output layer, for half the arithmetic; heads
    that share ``x`` (the no-KD and the KD student) share its memory traffic; and the loss
    gradient with respect to the margins is supplied in closed form (see
    :func:`mfh_sim.losses.margin_gradient`), which is cheaper than differentiating softmax.

    Args:
        x: inputs (n, d).  weights: (d, heads) initial margin weights; biases: (heads,).
        margin_gradient: maps margins (n, heads) to dLoss/dmargins (n, heads), each head's
            column the gradient of that head's own loss.
        learning_rate, momentum: those of the equivalent two-output SGD.
    Returns ``(weights, biases, diverged)``; ``diverged`` (heads,) flags heads whose margins
    became non-finite at any step.
    """
    finite = lambda margins: jnp.all(jnp.isfinite(margins), axis=0)
    # x^T materialised once, outside the loop: under vmap, XLA:CPU runs x_t @ g (a plain
    # product) about twice as fast as x.T @ g (a contraction over x's first axis) inside it;
    # a whole run of the paper's protocol is about 1.5x faster (benchmarks/RESULTS.md).
    x_t = jnp.transpose(x)

    def gradient(params):
        weights, biases = params
        margins = x @ weights + biases
        grad_margins = margin_gradient(margins)
        # The factor 2: the two-output layer's columns move oppositely, so v = w_1 - w_0 moves twice.
        return (2.0 * (x_t @ grad_margins), 2.0 * jnp.sum(grad_margins, axis=0)), ~finite(margins)

    (weights, biases), diverged = descend(
        (weights, biases), gradient, make_optimizer("sgd", learning_rate, momentum), steps
    )
    diverged = diverged | ~finite(x @ weights + biases)
    return weights, biases, diverged


def fit_linear_logits(
    x: jax.Array,
    weights: jax.Array,
    biases: jax.Array,
    gradient: Callable[[jax.Array], jax.Array],
    learning_rate: float | jax.Array,
    momentum: float | jax.Array,
    steps: int,
):
    """Full-batch heavy-ball GD of several linear classifiers ("heads") that share the input ``x``.

    The multi-class counterpart of :func:`fit_linear_margin`: the loss gradient
    with respect to the logits is given in closed form (see :func:`mfh_sim.losses.logit_gradient`),
    and the chain rule through l = x W + b gives dW = x^T dl, db = sum_i dl_i, so this is the
    same iteration as :func:`fit` with optax SGD (``v <- g + momentum v``,
    ``w <- w - learning_rate v``), without differentiating softmax and with all heads in one
    matrix product.  Arrays are laid out classes first: a softmax over a short leading class
    axis is elementwise work over samples, about twice as fast on a CPU as over a trailing axis.

    Args: ``x`` (n, d); ``weights`` (C, d, heads); ``biases`` (C, heads); ``gradient`` maps
    logits (C, n, heads) to dLoss/dlogits of the same shape (each head's slice the gradient of
    its own loss).  Returns ``(weights, biases, diverged)``, ``diverged`` (heads,) flags heads
    whose logits became non-finite at some step.
    """
    finite = lambda logits: jnp.all(jnp.isfinite(logits), axis=(0, 1))
    logits_of = lambda w, b: jnp.einsum("nd,cdh->cnh", x, w) + b[:, None, :]

    def descent_gradient(params):
        w, b = params
        logits = logits_of(w, b)
        grad = gradient(logits)
        return (jnp.einsum("nd,cnh->cdh", x, grad), jnp.sum(grad, axis=1)), ~finite(logits)

    (weights, biases), diverged = descend(
        (weights, biases), descent_gradient, make_optimizer("sgd", learning_rate, momentum), steps
    )
    diverged = diverged | ~finite(logits_of(weights, biases))
    return weights, biases, diverged


def softmax_first(logits: jax.Array) -> jax.Array:
    """Softmax over the leading (class) axis."""
    shifted = logits - jax.lax.stop_gradient(jnp.max(logits, axis=0, keepdims=True))
    exp = jnp.exp(shifted)
    return exp / jnp.sum(exp, axis=0, keepdims=True)
