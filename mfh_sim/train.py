"""Pure training functions: a whole run of full-batch optimisation is one ``lax.scan``.

One loop, :func:`descend`: ``steps`` updates of an optax optimiser driven by a *gradient
function* ``params -> (gradient, non-finite flag)``.  What differs between the models is only
that function:

* :func:`fit`: autodiff (``jax.value_and_grad``) of ``loss_of_logits(model.apply(params, x))``,
  any flax model and optimiser;
* :func:`fit_linear`: linear models, several heads on one input, with the loss gradient with
  respect to their outputs in closed form: two-class margins (``form='margin'``, e.g.
  :func:`mfh_sim.losses.margin_gradient`) or multi-class logits (``form='logits'``);
* Algorithm 1's joint pair (:mod:`mfh_sim.salience`).

Nothing in it depends on Python values other than shapes and ``steps``, so it jits and vmaps over
seeds and over grid points (learning rate, momentum and loss weights may be traced arrays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mfh_sim.choices import OPTIMIZERS


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


def margin_params(kernel: jax.Array, bias: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(v, c) = (kernel[:, 1] - kernel[:, 0], bias[1] - bias[0]) of a two-class linear layer."""
    return kernel[:, 1] - kernel[:, 0], bias[1] - bias[0]


def margin_logits(margins: jax.Array) -> jax.Array:
    """Two-class logits [0, m] with the same softmax as any logits whose difference is m."""
    return jnp.stack([jnp.zeros_like(margins), margins], axis=-1)


#: The layouts :func:`fit_linear` trains: two-class margins or multi-class logits.
FORMS = ("margin", "logits")


class LinearFit(NamedTuple):
    """Linear heads trained by :func:`fit_linear`: final ``weights`` and ``biases`` (the layout of
    the initial ones) and ``diverged`` (heads,), True for a head whose outputs became non-finite at
    some step (its weights are then meaningless)."""

    weights: jax.Array
    biases: jax.Array
    diverged: jax.Array


def fit_linear(
    x: jax.Array,
    weights: jax.Array,
    biases: jax.Array,
    *,
    loss_gradient: Callable[[jax.Array], jax.Array],
    form: str,
    optimizer: optax.GradientTransformation,
    steps: int,
) -> LinearFit:
    """Full-batch training of several linear classifiers ("heads") that share the input ``x``, with
    the loss gradient with respect to their outputs given in closed form.

    ``form='logits'``: head h has logits l = x W_h + b_h over C classes.  Arrays are laid out
    classes first: ``weights`` (C, d, heads), ``biases`` (C, heads), and ``loss_gradient`` maps
    the logits (C, n, heads) to dLoss/dlogits of the same shape (each head's slice the gradient of
    its own loss).  The chain rule through l = x W + b gives

        dLoss/dW = x^T dLoss/dl,        dLoss/db = sum_i dLoss/dl_i,

    the gradient automatic differentiation would form, without differentiating softmax and with
    all heads in one matrix product.  (A softmax over a short leading class axis is elementwise
    work over the samples, about twice as fast on a CPU as over a trailing axis.)

    ``form='margin'``: two classes, the paper's model.  A two-output layer trained on a loss that
    sees its logits only through softmax sees only the margin m = l_1 - l_0: the gradients of its
    two columns are opposite, so their sum never moves and their difference v = w_1 - w_0 follows
    the margin model m = x v + c with the gradient

        dLoss/dv = 2 x^T dLoss/dm,      dLoss/dc = 2 sum_i dLoss/dm_i

    (the factor 2: the two columns move apart, so their difference moves twice).  With a linear
    optimiser (SGD, heavy-ball momentum) the margin model then makes exactly the predictions of
    the two-output layer, for half the arithmetic.  ``weights`` (d, heads), ``biases`` (heads,)
    are margin weights (see :func:`margin_params`); ``loss_gradient`` maps margins (n, heads) to
    dLoss/dmargins (n, heads), e.g. :func:`mfh_sim.losses.margin_gradient`.

    Each of the ``steps`` updates is ``optimizer``'s (an optax transformation, see
    :func:`make_optimizer`; learning rate and momentum may be traced) applied to that gradient,
    the loop of :func:`descend`.  Pure and jittable.  Returns a :class:`LinearFit`.
    """
    if form == "margin":
        # x^T materialised once, outside the loop: under vmap, XLA:CPU runs x_t @ g (a plain
        # product) about twice as fast as x.T @ g (a contraction over x's first axis) inside it;
        # a whole run of the paper's protocol is about 1.5x faster (benchmarks/RESULTS.md).
        x_t = jnp.transpose(x)
        outputs = lambda w, b: x @ w + b
        chain = lambda g: (2.0 * (x_t @ g), 2.0 * jnp.sum(g, axis=0))
        sample_axes: tuple[int, ...] = (0,)
    elif form == "logits":
        outputs = lambda w, b: jnp.einsum("nd,cdh->cnh", x, w) + b[:, None, :]
        chain = lambda g: (jnp.einsum("nd,cnh->cdh", x, g), jnp.sum(g, axis=1))
        sample_axes = (0, 1)
    else:
        raise ValueError(f"form={form!r} is not allowed: use one of {FORMS}")
    finite = lambda out: jnp.all(jnp.isfinite(out), axis=sample_axes)

    def gradient(params):
        out = outputs(*params)
        return chain(loss_gradient(out)), ~finite(out)

    (weights, biases), diverged = descend((weights, biases), gradient, optimizer, steps)
    return LinearFit(weights, biases, diverged | ~finite(outputs(weights, biases)))


def accuracy(outputs: jax.Array, labels: jax.Array, *, form: str = "logits",
             diverged: jax.Array | None = None) -> jax.Array:
    """Test accuracy in [0, 1]; NaN where ``diverged`` (the model's numbers are meaningless).

    ``form='logits'``: ``outputs`` (n, C), the share of samples whose arg-max logit is the label.
    ``form='margin'``: ``outputs`` (n,) or (n, heads) margins of two-class models, the share (per
    head) of samples with ``(margin > 0) == (label == 1)`` (the arg-max of logits [0, m]).
    """
    if form == "margin":
        labels = (labels == 1).reshape(labels.shape + (1,) * (outputs.ndim - 1))
        correct = jnp.mean((outputs > 0) == labels, axis=0)
    else:
        correct = jnp.mean(jnp.argmax(outputs, axis=-1) == labels)
    return correct if diverged is None else jnp.where(diverged, jnp.nan, correct)
