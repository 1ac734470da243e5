"""Algorithm 1: which channels carry modality-general decisive information (Xue et al., ICLR 2023).

When the generator is unknown, the paper finds the modality-general decisive channels of x^a by
permutation:

1. **Joint training.** A network f_a on x^a and a network f_b on x^b minimise together

       L = CE(f_a(x^a), y) + CE(f_b(x^b), y) + D(f_a(x^a), f_b(x^b)),

   with D the mean squared difference of the two networks' logits
   (:func:`mfh_sim.losses.agreement_distance`; both networks receive its gradient).  The distance
   term pulls both networks towards what they can agree on, that is towards the information the
   two modalities share.  The paper's synthetic setting: full-batch SGD, learning rate 0.01,
   momentum 0.9, 1000 steps.
2. **Permutation salience.**  For channel k of a representation r (the input x^a, the input x^b,
   or a hidden layer of f_a) and M random permutations pi_1..pi_M of the samples,

       s_k = (1/M) sum_m D(f(r with column k permuted by pi_m), g),

   where f is the network that reads r and g the *other* network's unpermuted logits.
3. **Normalisation.**  s <- (s - min_k s_k) / (max_k s_k - min_k s_k), in [0, 1].  A large s_k
   marks a channel whose information the two networks agree on: a modality-general decisive one.

Vectorisation.  Permuting column k of r changes only the pre-activation of the layer that reads r,
and by a rank-one term:  h' = h + (r[pi, k] - r[:, k]) W[k, :],  with W that layer's kernel.  So
every (channel, permutation) pair costs one vector update of h plus the layers after it, and all
channels times all permutations run as one vectorised computation over a (permutations, channels)
grid: no Python loop over either, and the network before r is evaluated once.  When r feeds the
output layer (a linear network), the mean over the permutations of the squared distance has a
closed form that needs only the average of the M permutation matrices (see
:func:`permutation_salience`).  Both equal re-evaluating the network on every permuted input
(checked in ``tests/test_salience.py``).

Everything here is pure and jittable; :func:`algorithm1` validates its Python arguments before it
touches JAX, so bad input raises :class:`ValueError`, never a JAX traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mfh_sim.init import linear_init_size, linear_layers
from mfh_sim.losses import agreement_distance, cross_entropy
from mfh_sim.models import Classifier, as_flax_params, make_model
from mfh_sim.train import descend, fit, make_optimizer
from mfh_sim.validation import require_choices

#: Representations whose channels Algorithm 1 can score.
SALIENCE_OF = ("a", "b", "hidden")


class Salience(NamedTuple):
    """Normalised salience in [0, 1] per channel (``None`` where it was not asked for).

    a: (dim_a,) channels of x^a.  b: (dim_b,) channels of x^b.  hidden: (width,) units of the
    chosen hidden layer of f_a.  diverged: bool, the joint training's loss became non-finite
    (every salience is then NaN).
    """

    a: jax.Array | None
    b: jax.Array | None
    hidden: jax.Array | None
    diverged: jax.Array


class JointModels(NamedTuple):
    """Parameters (flax trees) of Algorithm 1's jointly trained f_a and f_b, and a divergence flag."""

    params_a: dict
    params_b: dict
    diverged: jax.Array


class _Pair(NamedTuple):
    """Two classifiers applied side by side: ``apply((p_a, p_b), (x_a, x_b)) -> (logits_a, logits_b)``.

    It offers the one method :func:`mfh_sim.train.fit` calls when given initial parameters.
    """

    model_a: Classifier
    model_b: Classifier

    def apply(self, params, inputs):
        return self.model_a.apply(params[0], inputs[0]), self.model_b.apply(params[1], inputs[1])


def joint_loss(logits_a: jax.Array, logits_b: jax.Array, labels: jax.Array) -> jax.Array:
    """CE(f_a, y) + CE(f_b, y) + mean((f_a - f_b)^2): step 1 of Algorithm 1."""
    return (
        cross_entropy(logits_a, labels)
        + cross_entropy(logits_b, labels)
        + agreement_distance(logits_a, logits_b)
    )


def init_pair(
    key: jax.Array, model_a: Classifier, model_b: Classifier, dim_a: int, dim_b: int
) -> tuple[dict, dict]:
    """Initial parameters of f_a (fan-in ``dim_a``) and f_b (fan-in ``dim_b``).

    Two linear models (the paper's) take their weights from one vector of standard normals drawn
    with ``key``, through the package's one linear initialiser
    (:func:`mfh_sim.init.linear_layers`): a single random call, which matters for compile time
    on Algorithm 1's hot path.  MLPs use flax's initialisation, one key each.
    """
    if not tuple(model_a.hidden) and not tuple(model_b.hidden) and model_a.initializer == model_b.initializer:
        classes = (model_a.n_classes, model_b.n_classes)
        size = linear_init_size(dim_a, classes[0]) + linear_init_size(dim_b, classes[1])
        layers = linear_layers(jax.random.normal(key, (size,)), (dim_a, dim_b), init=model_a.initializer,
                               n_classes=classes)
        return as_flax_params(*layers[0]), as_flax_params(*layers[1])
    key_a, key_b = jax.random.split(key)
    return (
        model_a.init(key_a, jnp.zeros((1, dim_a))),
        model_b.init(key_b, jnp.zeros((1, dim_b))),
    )


def train_joint(
    key: jax.Array,
    x_a: jax.Array,
    x_b: jax.Array,
    labels: jax.Array,
    *,
    model_a: Classifier,
    model_b: Classifier,
    steps: int = 1000,
    learning_rate: float | jax.Array = 0.01,
    momentum: float | jax.Array = 0.9,
    params: tuple[dict, dict] | None = None,
) -> JointModels:
    """Train f_a on ``x_a`` (n, dim_a) and f_b on ``x_b`` (n, dim_b) jointly on :func:`joint_loss`.

    Full-batch heavy-ball SGD (PyTorch's convention: v <- momentum v + g, p <- p - lr v),
    ``steps`` >= 1 steps, from ``params`` or else from :func:`init_pair` with ``key``.  Two
    linear models (the paper's) train with the gradient in closed form
    (:func:`_train_joint_linear`); other architectures through :func:`mfh_sim.train.fit` with
    automatic differentiation.  Pure and jittable.
    """
    if params is None:
        params = init_pair(key, model_a, model_b, x_a.shape[-1], x_b.shape[-1])
    if not tuple(model_a.hidden) and not tuple(model_b.hidden):
        return _train_joint_linear(params, x_a, x_b, labels, steps, learning_rate, momentum)
    pair = _Pair(model_a, model_b)
    optimizer = make_optimizer("sgd", learning_rate, momentum)
    (params_a, params_b), diverged = fit(
        key, pair, (x_a, x_b), lambda logits: joint_loss(*logits, labels), optimizer, steps, params
    )
    return JointModels(params_a, params_b, diverged)


def _train_joint_linear(params, x_a, x_b, labels, steps, learning_rate, momentum) -> JointModels:
    """:func:`train_joint` for two linear layers, with the gradient of :func:`joint_loss` in
    closed form.  With logits F_a = x_a W_a + b_a, F_b = x_b W_b + b_b (n, c), one-hot labels Y,

        dL/dF_a = (softmax(F_a) - Y) / n + 2 (F_a - F_b) / (n c)
        dL/dF_b = (softmax(F_b) - Y) / n - 2 (F_a - F_b) / (n c)

    and dL/dW = x^T dL/dF, dL/db = sum_i dL/dF_i: the steps of automatic differentiation (up to
    rounding) in a smaller program that compiles and runs faster.
    """
    (kernel_a, bias_a), (kernel_b, bias_b) = (_affine_layers(p)[0] for p in params)
    n, classes = x_a.shape[0], kernel_a.shape[1]
    onehot = jax.nn.one_hot(labels, classes, dtype=x_a.dtype)
    # x^T materialised once, outside the loop (as in mfh_sim.train.fit_linear): under vmap,
    # XLA:CPU runs x_t @ g about twice as fast as x.T @ g inside it (benchmarks/RESULTS.md).
    x_a_t, x_b_t = jnp.transpose(x_a), jnp.transpose(x_b)

    def gradient(weights):
        kernel_a, bias_a, kernel_b, bias_b = weights
        logits_a, logits_b = x_a @ kernel_a + bias_a, x_b @ kernel_b + bias_b
        agreement = 2.0 * (logits_a - logits_b) / (n * classes)
        grad_a = (jax.nn.softmax(logits_a) - onehot) / n + agreement
        grad_b = (jax.nn.softmax(logits_b) - onehot) / n - agreement
        grads = (x_a_t @ grad_a, jnp.sum(grad_a, 0), x_b_t @ grad_b, jnp.sum(grad_b, 0))
        finite = jnp.all(jnp.isfinite(logits_a)) & jnp.all(jnp.isfinite(logits_b))
        return grads, ~finite

    # The one training loop (optax heavy-ball SGD) with the closed-form gradient plugged in.
    weights, diverged = descend((kernel_a, bias_a, kernel_b, bias_b), gradient,
                                make_optimizer("sgd", learning_rate, momentum), steps)
    kernel_a, bias_a, kernel_b, bias_b = weights
    final = joint_loss(x_a @ kernel_a + bias_a, x_b @ kernel_b + bias_b, labels)
    return JointModels(
        as_flax_params(kernel_a, bias_a),
        as_flax_params(kernel_b, bias_b),
        diverged | ~jnp.isfinite(final),
    )


# --------------------------------------------------------------------------- salience
def _affine_layers(params: dict) -> list[tuple[jax.Array, jax.Array]]:
    """(kernel, bias) of every layer of a :class:`~mfh_sim.models.Classifier`, input to output."""
    layers = params["params"]
    return [
        (layers[f"Dense_{i}"]["Dense_0"]["kernel"], layers[f"Dense_{i}"]["Dense_0"]["bias"])
        for i in range(len(layers))
    ]


def _representation(layers, x: jax.Array, position: int) -> jax.Array:
    """The input of layer ``position``: x itself (0) or the ReLU output of layer position - 1."""
    r = x
    for kernel, bias in layers[:position]:
        r = jax.nn.relu(r @ kernel + bias)
    return r


def _logits_from(layers, position: int, pre_activation: jax.Array) -> jax.Array:
    """Logits given the pre-activation of layer ``position`` (the layers after it, ReLU between)."""
    h = pre_activation
    for kernel, bias in layers[position + 1 :]:
        h = jax.nn.relu(h) @ kernel + bias
    return h


def sample_orders(key: jax.Array, n: int, permutations: int, sets: int | None = None) -> jax.Array:
    """Independent uniformly random permutations of range(n): (permutations, n) int32, or
    (sets, permutations, n) when ``sets`` is given.  Row m is permutation pi_m: its entry i is
    the sample whose value moves to row i.

    Each row is the argsort of n i.i.d. uniform 32-bit integers.  Two of them tie with
    probability below n^2 / 2^33 per permutation (about 5e-6 for n = 200), and a tie only keeps
    the tied pair in index order; one batched sort compiles and runs faster than M calls of
    ``jax.random.permutation``.
    """
    shape = (permutations, n) if sets is None else (sets, permutations, n)
    return jnp.argsort(jax.random.bits(key, shape, jnp.uint32), axis=-1).astype(jnp.int32)


def permutation_salience(
    orders: jax.Array,
    params: dict,
    x: jax.Array,
    target_logits: jax.Array,
    position: int = 0,
) -> jax.Array:
    """Raw salience (before normalisation) of every channel of one representation: shape (channels,).

    The representation r is the input of layer ``position`` of the classifier ``params``
    evaluated on ``x`` (n, d): ``position = 0`` scores the input channels, ``position = l + 1``
    the units of hidden layer l.  With ``orders`` (M, n) the M permutations pi_1..pi_M of the
    samples (:func:`sample_orders`), it returns for every channel k

        s_k = (1/M) sum_m  mean_{i, c} (f(r^{k, pi_m})_{i c} - target_logits_{i c})^2,

    the mean over permutations of :func:`mfh_sim.losses.agreement_distance` between the
    classifier with column k of r shuffled by pi_m (r^{k, pi}_{ik} = r_{pi(i) k}) and
    ``target_logits`` (n, classes).

    The same M permutations serve every channel.  Each channel's estimate is then exactly a
    mean over M independent uniform permutations, as with permutations drawn afresh per channel
    (same distribution, same Monte Carlo error); only the estimates of different channels become
    dependent, which leaves each s_k unbiased.  Drawing them once costs M permutations instead
    of M * channels, the difference between milliseconds and seconds.

    All channels times all permutations are one vectorised computation.  When the layer that
    reads r is the output layer (a linear model, or a hidden layer feeding the logits), the
    squared distance is a quadratic in the shifted column, and its mean over the permutations
    has a closed form.  With residual e = r W + b - target (n, c), q = e W^T, N = n c, and
    A = (1/M) sum_m P_m the average of the M permutation matrices (A_ij = share of the
    permutations that move sample j to row i), using sum_i r_{pi(i) k}^2 = sum_i r_ik^2:

        s_k = mean(e^2) + (2/N) [ sum_i (A r)_ik (q_ik - ||W_k||^2 r_ik)
                                  - sum_i r_ik q_ik + ||W_k||^2 sum_i r_ik^2 ].

    Building A is one scatter of the M x n permutation entries, and A r one (n, n) x (n, C)
    product.  Otherwise the layers after r are evaluated on the rank-one-updated pre-activation,
    vmapped over (permutations, channels), and the distances averaged.  Pure and jittable;
    ``position`` is static.
    """
    layers = _affine_layers(params)
    r = _representation(layers, x, position)
    kernel, bias = layers[position]
    base = r @ kernel + bias  # (n, width of layer `position`)
    permutations, n = orders.shape
    if position == len(layers) - 1:
        residual = base - target_logits  # (n, classes)
        q = residual @ kernel.T  # (n, channels)
        weight_sq = jnp.sum(kernel**2, axis=1)  # (channels,)
        rows = jnp.broadcast_to(jnp.arange(n), orders.shape)
        averaging = jnp.zeros((n, n), r.dtype).at[rows, orders].add(1.0 / permutations)
        mean_permuted = averaging @ r  # (n, channels): mean over permutations of r[pi(i), k]
        linear = jnp.sum(mean_permuted * (q - weight_sq * r), axis=0)
        constant = -jnp.sum(r * q, axis=0) + weight_sq * jnp.sum(r * r, axis=0)
        return jnp.mean(residual**2) + (2.0 / residual.size) * (linear + constant)

    shifts = r[orders] - r[None]  # (M, n, channels): how each sample's value of each channel moves

    def one(shift, weight_row):  # shift (n,), weight_row (width,)
        logits = _logits_from(layers, position, base + shift[:, None] * weight_row[None, :])
        return agreement_distance(logits, target_logits)

    over_channels = jax.vmap(one, in_axes=(1, 0))  # shift column k with kernel row k
    distances = jax.vmap(over_channels, in_axes=(0, None))(shifts, kernel)  # (M, channels)
    return jnp.mean(distances, axis=0)


def normalise(salience: jax.Array) -> jax.Array:
    """(s - min s) / (max s - min s) in [0, 1]; all zeros when every channel scores the same."""
    low, high = jnp.min(salience), jnp.max(salience)
    spread = high - low
    return jnp.where(spread > 0, (salience - low) / jnp.where(spread > 0, spread, 1.0), 0.0)


def _validate(permutations, of, model, hidden, hidden_layer, steps) -> tuple[str, ...]:
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise ValueError(
            f"permutations={permutations!r} is not allowed: it must be an integer M >= 1"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} is not allowed: it must be an integer >= 1")
    of = require_choices("of", of, SALIENCE_OF)
    if "hidden" in of:
        if model != "mlp":
            raise ValueError(
                f"of='hidden' is not allowed with model={model!r}: hidden-layer salience needs "
                "model='mlp'"
            )
        if (isinstance(hidden_layer, bool) or not isinstance(hidden_layer, int)
                or not -len(hidden) <= hidden_layer < len(hidden)):
            raise ValueError(
                f"hidden_layer={hidden_layer!r} is not allowed: f_a has {len(hidden)} hidden "
                f"layer(s), so use an integer in [{-len(hidden)}, {len(hidden) - 1}]"
            )
    return of


def algorithm1(
    key: jax.Array,
    x_a: jax.Array,
    x_b: jax.Array,
    labels: jax.Array,
    *,
    permutations: int = 100,
    of: str | Sequence[str] = ("a",),
    model: str = "linear",
    hidden: Sequence[int] = (64,),
    hidden_layer: int = -1,
    init: str = "torch",
    steps: int = 1000,
    learning_rate: float | jax.Array = 0.01,
    momentum: float | jax.Array = 0.9,
) -> Salience:
    """Algorithm 1 on one paired sample: joint training, then permutation salience, normalised.

    Args:
        key: PRNG key (initialisation of both networks and the permutations).
        x_a: (n, dim_a) modality a; x_b: (n, dim_b) modality b; labels: (n,) int classes.
        permutations: M >= 1 random permutations of the n samples per channel.
        of: which representations to score, any of 'a' (channels of x^a, against f_b's logits),
            'b' (channels of x^b, against f_a's logits) and 'hidden' (units of hidden layer
            ``hidden_layer`` of an MLP f_a, against f_b's logits).
        model, hidden, init: the architecture of both networks ('linear' as in the paper, or
            'mlp' with ReLU hidden widths ``hidden``; 'torch' or 'lecun' initialisation).
        steps, learning_rate, momentum: the joint training (paper: 1000, 0.01, 0.9).
    Returns a :class:`Salience` with each requested vector normalised to [0, 1] (NaN if the
    joint training diverged).  Pure and jittable (all arguments but the arrays are static);
    vmap it over keys and samples for several seeds.  Raises :class:`ValueError` on bad
    arguments before any JAX computation.
    """
    hidden = tuple(hidden)
    of = _validate(permutations, of, model, hidden, hidden_layer, steps)
    model_a = make_model(model, hidden, init)
    model_b = make_model(model, hidden, init)
    init_key, order_key = jax.random.split(key)
    joint = train_joint(
        init_key, x_a, x_b, labels, model_a=model_a, model_b=model_b,
        steps=steps, learning_rate=learning_rate, momentum=momentum,
    )
    logits_a = model_a.apply(joint.params_a, x_a)
    logits_b = model_b.apply(joint.params_b, x_b)
    orders = dict(zip(of, sample_orders(order_key, x_a.shape[0], permutations, sets=len(of))))
    scored = {}
    for name in of:  # at most three representations, each fully vectorised
        if name == "a":
            raw = permutation_salience(orders[name], joint.params_a, x_a, logits_b)
        elif name == "b":
            raw = permutation_salience(orders[name], joint.params_b, x_b, logits_a)
        else:
            position = hidden_layer % len(hidden) + 1
            raw = permutation_salience(orders[name], joint.params_a, x_a, logits_b, position)
        scored[name] = jnp.where(joint.diverged, jnp.nan, normalise(raw))
    return Salience(scored.get("a"), scored.get("b"), scored.get("hidden"), joint.diverged)
