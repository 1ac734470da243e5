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

from mfh_sim.venn import VennConfig

HYPERPLANES = ("gaussian", "ones")


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


def make_layout(venn: VennConfig, hyperplane: str = "gaussian") -> Layout:
    """Host-side (numpy) layout of ``venn``."""
    if hyperplane not in HYPERPLANES:
        raise ValueError(f"hyperplane={hyperplane!r} is not allowed: use one of {HYPERPLANES}")
    return Layout(
        latents_a=venn.channel_latents_a(),
        latents_b=venn.channel_latents_b(),
        decisive=venn.decisive_mask(),
        gaussian=np.float32(hyperplane == "gaussian"),
    )


def hyperplane(key: jax.Array, layout: Layout) -> jax.Array:
    """Label direction w of shape (n_latent,): N(0, 1) or 1 on decisive latents, 0 elsewhere."""
    return hyperplane_from_normals(jax.random.normal(key, layout.decisive.shape), layout)


def hyperplane_from_normals(normals: jax.Array, layout: Layout) -> jax.Array:
    """:func:`hyperplane` given its (n_latent,) standard normals."""
    return jnp.where(layout.gaussian > 0, normals, 1.0) * layout.decisive


def _show(latents: jax.Array, channel_latents: jax.Array, noise: jax.Array) -> jax.Array:
    shown = jnp.take(latents, jnp.maximum(channel_latents, 0), axis=1)
    return jnp.where(channel_latents >= 0, shown, noise)


class Sample(NamedTuple):
    """A paired sample: x_a (n, dim_a), x_b (n, dim_b), labels (n,) int32 in {0, 1}, z (n, n_latent)."""

    x_a: jax.Array
    x_b: jax.Array
    labels: jax.Array
    latents: jax.Array


def sample_width(layout: Layout) -> int:
    """Standard normals per sample row: the latents, then x^a's and x^b's noise channels."""
    return layout.decisive.shape[-1] + layout.latents_a.shape[-1] + layout.latents_b.shape[-1]


def sample(key: jax.Array, layout: Layout, w: jax.Array, n: int) -> Sample:
    """Draw ``n`` paired samples: z ~ N(0, I), y = 1[w.z > 0], x^a and x^b laid out by ``layout``."""
    return sample_from_normals(jax.random.normal(key, (n, sample_width(layout))), layout, w)


def sample_from_normals(draws: jax.Array, layout: Layout, w: jax.Array) -> Sample:
    """:func:`sample` given its (n, sample_width) standard normals (latents, then both noises)."""
    n_latent = w.shape[-1]
    dim_a = layout.latents_a.shape[-1]
    latents = draws[:, :n_latent]
    labels = (latents @ w > 0).astype(jnp.int32)
    x_a = _show(latents, layout.latents_a, draws[:, n_latent : n_latent + dim_a])
    x_b = _show(latents, layout.latents_b, draws[:, n_latent + dim_a :])
    return Sample(x_a, x_b, labels, latents)


def split(data: Sample, sizes: tuple[int, ...]) -> tuple[Sample, ...]:
    """Cut one sample into consecutive independent samples of the given sizes."""
    bounds = np.cumsum((0,) + tuple(sizes))
    return tuple(
        Sample(*(field[start:stop] for field in data)) for start, stop in zip(bounds[:-1], bounds[1:])
    )
