"""The generator: latents, hyperplane, labels and the two modalities' inputs (pure, jittable).

Everything that distinguishes one modality Venn diagram from another is *data* here (a
:class:`Layout` of index arrays and masks), not Python control flow, so configs with the same
channel counts share one compiled program and vmap together.

Shapes (channel counts, number of latents, sample sizes) are static: configs that differ in them
compile separately, so a grid point's random draws never depend on what else is in its sweep.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim.choices import HYPERPLANES
from mfh_sim.venn import VennConfig


class Layout(NamedTuple):
    """One Venn diagram as arrays (leading grid/run axes allowed once stacked).

    latents_a: int32 (dim_a,)   latent shown by each channel of x^a, -1 for noise
    latents_b: int32 (dim_b,)   latent shown by each channel of x^b, -1 for noise
    decisive:  float32 (n_latent,)  1 where the latent is decisive (enters the hyperplane)
    gaussian:  float32 ()       1 for a N(0, I) hyperplane, 0 for the all-ones hyperplane
    """

    latents_a: jax.Array
    latents_b: jax.Array
    decisive: jax.Array
    gaussian: jax.Array


def make_layout(venn: VennConfig, hyperplane: str = "gaussian", latent_padding: int = 0) -> Layout:
    """Host-side (numpy) layout of ``venn``.

    ``latent_padding`` (>= 0) appends latents that no channel shows and the label ignores (their
    ``decisive`` entries are 0): they fix the number of latents so that Venn diagrams of
    different sizes share one array shape.
    """
    if hyperplane not in HYPERPLANES:
        raise ValueError(f"hyperplane={hyperplane!r} is not allowed: use one of {HYPERPLANES}")
    if isinstance(latent_padding, bool) or not isinstance(latent_padding, (int, np.integer)) or latent_padding < 0:
        raise ValueError(f"latent_padding={latent_padding!r} is not allowed: it must be an integer >= 0")
    decisive = venn.decisive_mask()
    if latent_padding:
        decisive = np.concatenate([decisive, np.zeros(int(latent_padding), np.float32)])
    return Layout(
        latents_a=venn.channel_latents_a(),
        latents_b=venn.channel_latents_b(),
        decisive=decisive,
        gaussian=np.float32(hyperplane == "gaussian"),
    )


def hyperplane(key: jax.Array, layout: Layout) -> jax.Array:
    """Label direction w of shape (n_latent,): N(0, 1) or 1 on decisive latents, 0 elsewhere."""
    return hyperplane_from_normals(jax.random.normal(key, layout.decisive.shape), layout)


def hyperplane_from_normals(normals: jax.Array, layout: Layout) -> jax.Array:
    """:func:`hyperplane` given its (n_latent,) standard normals."""
    return jnp.where(layout.gaussian > 0, normals, 1.0) * layout.decisive


def simplex_vertices(n_classes: int) -> np.ndarray:
    """(n_classes, n_classes - 1) rows: the vertices of a regular simplex centred at 0.

    Row c is the centred basis vector e_c - 1/n_classes written in an orthonormal basis of the
    sum-zero subspace of R^n_classes, so all rows have the same norm and pairwise angle.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes={n_classes!r} is not allowed: it must be an integer >= 2")
    centred = np.eye(n_classes) - 1.0 / n_classes
    basis, _ = np.linalg.qr(centred[:, : n_classes - 1])  # orthonormal, each column sums to 0
    return (centred @ basis).astype(np.float32)


def class_directions(key: jax.Array, layout: Layout, n_classes: int) -> jax.Array:
    """Class score directions W of shape (n_latent, n_classes); the label is argmax_c (z . W_c).

    W = Q V^T with Q (n_latent, n_classes - 1) a random orthonormal frame of the decisive
    latents (QR of a Gaussian matrix masked to the decisive rows) and V the regular simplex of
    :func:`simplex_vertices`.  Since u = Q^T z ~ N(0, I) exactly and the simplex's symmetries
    permute the classes, every class has probability exactly 1/n_classes for every draw of W.
    Only Gaussian hyperplanes are supported with more than two classes.
    """
    frame = jax.random.normal(key, (layout.decisive.shape[-1], n_classes - 1)) * layout.decisive[:, None]
    orthonormal, _ = jnp.linalg.qr(frame)
    return orthonormal @ jnp.asarray(simplex_vertices(n_classes)).T


def corrupt_labels(key: jax.Array, labels: jax.Array, noise: float | jax.Array, n_classes: int) -> jax.Array:
    """Replace each label, with probability ``noise``, by a uniformly drawn other class.

    For two classes this flips the label.  The true class then has probability 1 - noise and
    each other class noise / (n_classes - 1).
    """
    flip_key, shift_key = jax.random.split(key)
    flip = jax.random.uniform(flip_key, labels.shape) < noise
    shift = jax.random.randint(shift_key, labels.shape, 1, n_classes)
    return jnp.where(flip, (labels + shift) % n_classes, labels).astype(labels.dtype)


#: sqrt(E[tanh(g)^2]) for g ~ N(0, 1), so that phi = tanh / this has unit variance on N(0, 1).
_TANH_SCALE = 0.6278


def mixing_weights(key: jax.Array, dim: int, depth: int) -> jax.Array:
    """(depth, dim, dim) N(0, 1) matrices for :func:`mix_channels` (scaled there)."""
    return jax.random.normal(key, (depth, dim, dim))


def mix_channels(
    x: jax.Array, channel_latents: jax.Array, weights: jax.Array, strength: float | jax.Array
) -> jax.Array:
    """A random tanh network of a modality's latent channels (noise channels are left alone).

    With m the mask of channels that show a latent, c = sum(m) and u_0 = x, each of the
    ``depth = weights.shape[0]`` layers computes

        u_l = (1 - s) u_{l-1} + s phi((u_{l-1} * m) M_l / sqrt(c)),   phi = tanh / 0.6278,

    on the latent channels, where M_l = ``weights[l]`` has N(0, 1) entries and s = ``strength``
    in [0, 1].  Each pre-activation has unit variance when the inputs do, and phi keeps unit
    variance on a standard normal, so channels stay on the scale of the linear generator's.  So
    every latent channel becomes a nonlinear function of all the latents that modality shows
    (its shared and specific, decisive and non-decisive blocks); s = 0 or depth 0 is the
    identity.  ``x`` is (n, dim), ``channel_latents`` (dim,), ``weights`` (depth, dim, dim).
    """
    mask = (channel_latents >= 0).astype(x.dtype)
    scale = jnp.sqrt(jnp.maximum(jnp.sum(mask), 1.0))
    u = x
    for layer in range(weights.shape[0]):
        mixed = jnp.tanh((u * mask) @ weights[layer] / scale) / _TANH_SCALE
        u = jnp.where(mask > 0, (1.0 - strength) * u + strength * mixed, x)
    return u


def _show(latents: jax.Array, channel_latents: jax.Array, noise: jax.Array) -> jax.Array:
    shown = jnp.take(latents, jnp.maximum(channel_latents, 0), axis=1)
    return jnp.where(channel_latents >= 0, shown, noise)


class Sample(NamedTuple):
    """A paired sample: x_a (n, dim_a), x_b (n, dim_b), labels (n,) int32 classes, z (n, n_latent)."""

    x_a: jax.Array
    x_b: jax.Array
    labels: jax.Array
    latents: jax.Array


def sample_width(layout: Layout) -> int:
    """Standard normals per sample row: the latents, then x^a's and x^b's noise channels."""
    return layout.decisive.shape[-1] + layout.latents_a.shape[-1] + layout.latents_b.shape[-1]


def sample(key: jax.Array, layout: Layout, w: jax.Array, n: int) -> Sample:
    """Draw ``n`` paired samples: z ~ N(0, I), labels from ``w``, x^a and x^b laid out by ``layout``.

    ``w`` of shape (n_latent,) is a hyperplane (two classes, y = 1[w.z > 0]); of shape
    (n_latent, n_classes) it holds class directions (see :func:`class_directions`) and
    y = argmax_c z.w_c.
    """
    return sample_from_normals(jax.random.normal(key, (n, sample_width(layout))), layout, w)


def sample_from_normals(draws: jax.Array, layout: Layout, w: jax.Array) -> Sample:
    """:func:`sample` given its (n, sample_width) standard normals (latents, then both noises)."""
    n_latent = w.shape[0]
    dim_a = layout.latents_a.shape[-1]
    latents = draws[:, :n_latent]
    if w.ndim == 1:
        labels = (latents @ w > 0).astype(jnp.int32)
    else:
        labels = jnp.argmax(latents @ w, axis=-1).astype(jnp.int32)
    x_a = _show(latents, layout.latents_a, draws[:, n_latent : n_latent + dim_a])
    x_b = _show(latents, layout.latents_b, draws[:, n_latent + dim_a :])
    return Sample(x_a, x_b, labels, latents)


def split(data: Sample, sizes: tuple[int, ...]) -> tuple[Sample, ...]:
    """Cut one sample into consecutive independent samples of the given sizes."""
    bounds = np.cumsum((0,) + tuple(sizes))
    return tuple(
        Sample(*(field[start:stop] for field in data)) for start, stop in zip(bounds[:-1], bounds[1:])
    )
