"""Flax models: the paper's linear classifier and an MLP.

``init='torch'`` draws every weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which is
what ``torch.nn.Linear`` does by default and so what the paper's code used; ``init='lecun'`` uses
flax's LeCun-normal kernels with zero biases.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mfh_sim.choices import INITS, MODELS


def _torch_uniform(fan_in: int):
    bound = 1.0 / jnp.sqrt(jnp.asarray(fan_in, jnp.float32))

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class Dense(nn.Module):
    """A fully connected layer with the chosen initialisation."""

    features: int
    initializer: str = "torch"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        if self.initializer == "torch":
            kernel_init = bias_init = _torch_uniform(fan_in)
        else:
            kernel_init, bias_init = nn.initializers.lecun_normal(), nn.initializers.zeros
        return nn.Dense(self.features, kernel_init=kernel_init, bias_init=bias_init)(x)


class Classifier(nn.Module):
    """Linear (``hidden=()``) or ReLU MLP classifier returning logits of shape (..., n_classes).

    ``features`` returns the last hidden layer instead (Algorithm 1's hidden-layer salience).
    """

    n_classes: int = 2
    hidden: Sequence[int] = ()
    initializer: str = "torch"

    @nn.compact
    def __call__(self, x: jax.Array, features: bool = False) -> jax.Array:
        for width in self.hidden:
            x = nn.relu(Dense(width, self.initializer)(x))
        if features:
            return x
        return Dense(self.n_classes, self.initializer)(x)


class HintStudent(nn.Module):
    """A :class:`Classifier` (submodule ``student``) plus a linear ``regressor`` of its last hidden
    layer to ``hint_features`` outputs: returns ``(logits, regressed_features)``.

    Used by the feature-hint KD loss (:func:`mfh_sim.losses.feature_hint`); the student part has
    the same parameters as a plain :class:`Classifier`, so it can start from the same weights as
    the no-KD student (see :func:`hint_student_params`).
    """

    n_classes: int
    hidden: Sequence[int]
    hint_features: int
    initializer: str = "torch"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        student = Classifier(self.n_classes, self.hidden, self.initializer, name="student")
        features = student(x, features=True)
        regressed = Dense(self.hint_features, self.initializer, name="regressor")(features)
        return student(x), regressed


def hint_student_params(student_params: dict, key: jax.Array, hidden: Sequence[int], hint_features: int,
                        init: str = "torch") -> dict:
    """Parameters of a :class:`HintStudent` whose classifier is ``student_params`` (as returned by
    ``Classifier.init``) and whose regressor is freshly drawn from ``key``."""
    regressor = Dense(hint_features, init).init(key, jnp.zeros((1, hidden[-1]), jnp.float32))
    return {"params": {"student": student_params["params"], "regressor": regressor["params"]}}


def make_model(model: str, hidden: Sequence[int] = (), init: str = "torch", n_classes: int = 2) -> Classifier:
    """The classifier for ``model`` in {'linear', 'mlp'} (``hidden`` widths for the MLP)."""
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not allowed: use one of {MODELS}")
    if init not in INITS:
        raise ValueError(f"init={init!r} is not allowed: use one of {INITS}")
    return Classifier(n_classes=n_classes, hidden=tuple(hidden) if model == "mlp" else (), initializer=init)


def as_flax_params(kernel: jax.Array, bias: jax.Array) -> dict:
    """Parameters of a linear :class:`Classifier` holding ``kernel`` and ``bias``."""
    return {"params": {"Dense_0": {"Dense_0": {"kernel": kernel, "bias": bias}}}}
