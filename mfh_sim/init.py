"""The one initialiser of every linear model of the package, from standard normals (no flax).

The protocols' linear models (the paper's, Table 2's, the real-data arms', Algorithm 1's pair)
take their initial weights from here; :mod:`mfh_sim.models` (flax) holds the MLPs and loads only
where a run trains one, so a linear run never imports flax.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from mfh_sim.choices import INITS

#: Standard deviation of N(0, 1) truncated to [-2, 2] (flax's truncated-normal convention).
_TRUNCATED_STD = 0.87962566103423978


def linear_init_size(fan_in: int, n_classes: int = 2) -> int:
    """How many standard normals :func:`linear_init` consumes for one layer."""
    return (fan_in + 1) * n_classes


def linear_init(normals: jax.Array, fan_in: int, *, init: str = "torch", n_classes: int = 2):
    """(kernel (fan_in, n_classes), bias (n_classes,)) of a linear layer from ``linear_init_size``
    standard normals: the one initialiser of every linear model of the package.

    Each normal z is mapped through the normal CDF to u = Phi(z) ~ U(0, 1) exactly, then
    ``init='torch'``: kernel and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), that is
    1/sqrt(fan_in) (2u - 1) (PyTorch's default for ``nn.Linear``);
    ``init='lecun'``: kernel ~ N(0, 1/fan_in) truncated to two standard deviations (flax's
    ``lecun_normal``), bias 0.
    A run draws all its normals in one call of the generator and cuts this layer's from them:
    a single threefry call compiles much faster on a CPU than several.  With a key of its own:
    ``linear_init(jax.random.normal(key, (linear_init_size(d),)), d)``.
    """
    values = normals.reshape(fan_in + 1, n_classes)
    uniform = jax.scipy.special.ndtr(values)
    if init == "torch":
        bound = 1.0 / jnp.sqrt(jnp.float32(fan_in))
        values = bound * (2.0 * uniform - 1.0)
        return values[:fan_in], values[fan_in]
    if init == "lecun":
        low, high = jax.scipy.special.ndtr(-2.0), jax.scipy.special.ndtr(2.0)
        truncated = jax.scipy.special.ndtri(low + uniform[:fan_in] * (high - low))
        kernel = truncated / _TRUNCATED_STD / jnp.sqrt(jnp.float32(fan_in))
        return kernel, jnp.zeros((n_classes,), jnp.float32)
    raise ValueError(f"init={init!r} is not allowed: use one of {INITS}")


def linear_layers(normals: jax.Array, fan_ins: Sequence[int], *, init: str = "torch",
                  n_classes: Sequence[int] | int = 2) -> list[tuple[jax.Array, jax.Array]]:
    """:func:`linear_init` of several layers of fan-ins ``fan_ins`` (and ``n_classes`` outputs
    each) cut in order from one vector of at least sum(linear_init_size) standard normals."""
    classes = [n_classes] * len(fan_ins) if isinstance(n_classes, int) else list(n_classes)
    layers, start = [], 0
    for fan_in, c in zip(fan_ins, classes):
        size = linear_init_size(fan_in, c)
        layers.append(linear_init(normals[start:start + size], fan_in, init=init, n_classes=c))
        start += size
    return layers
