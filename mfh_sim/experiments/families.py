"""Families of Venn-diagram configs: the paper's gamma sweep, a de-confounded one, and the random
family of the hypothesis head-to-head (:class:`FamilySpec`, :func:`random_family`).

The paper's Fig. 2 sweep (Xue et al., ICLR 2023) raises the overlap o of the two modalities'
views of K = 20 decisive latents: x^b shows latents 0..9 and x^a latents (10-o)..(19-o), so
G = o, A = B = 10 - o and U = o latents are seen by neither modality.  As gamma = o / (20 - o)
rises, so does the share of decisive latents that neither modality sees (U / K = o / 20), which
acts on both models as label noise that the teacher's soft labels do not carry.  A KD gain that
grows with gamma along that sweep may be due to gamma or to that noise.

The de-confounded sweep holds the unseen share fixed: K and U are constant, the visible decisive
latents V = K - U split as G = g, A = B = (V - g) / 2, and g runs over even steps so that A and
B are whole.  Gamma = g / V then spans [0, 1] while U / K stays put.  What cannot stay put as
well: with G + A + B + U fixed, a modality's view G + A grows with G (holding the views, K and U
all fixed would fix G), so here both the teacher and the no-KD student see more as gamma rises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mfh_sim.config import SimConfig, make_config
from mfh_sim.experiments.paper import FIG2_OVERLAPS as PAPER_OVERLAPS  # noqa: E402
from mfh_sim.experiments.paper import fig2_point
from mfh_sim.validation import require_integer, require_ratio


def paper_gamma_sweep(overlaps: tuple[int, ...] = PAPER_OVERLAPS) -> list[dict[str, Any]]:
    """The paper's Fig. 2 points as :func:`mfh_sim.make_config` keywords (counts).

    ``overlaps`` are integers in [0, 10]; point o has G = o, A = B = 10 - o, U = o, dim_a = 25,
    dim_b = 50 (the paper's channel counts), so gamma = o / (20 - o) and the unseen share o / 20.
    """
    points = []
    for overlap in overlaps:
        overlap = require_integer("overlaps", overlap)
        if overlap > 10:
            raise ValueError(f"overlaps={overlaps!r} is not allowed: each overlap must be in [0, 10]")
        points.append(fig2_point(overlap))
    return points


def deconfounded_gamma_sweep(
    unseen_share: float = 0.25,
    n_visible: int = 20,
    shared: tuple[int, ...] | None = None,
    dim_a: int = 25,
    dim_b: int = 50,
) -> list[dict[str, Any]]:
    """Points of a gamma sweep with a fixed share of decisive latents that neither modality sees.

    Args:
        unseen_share: target U / K in [0, 1); U = round(unseen_share * n_visible /
            (1 - unseen_share)), the same at every point (the realised share is U / (n_visible + U)).
        n_visible: visible decisive latents V (even, >= 2), fixed along the sweep.
        shared: the values of G (even, in [0, V]); default 0, 2, ..., V (gamma = G / V).
        dim_a, dim_b: channel counts (each >= V, since at gamma = 1 a modality shows all V).

    Each point has G = g, A = B = (V - g) / 2 (so alpha = beta), U fixed; returned as
    :func:`mfh_sim.make_config` keywords.
    """
    share = require_ratio("unseen_share", unseen_share)
    if share >= 1.0:
        raise ValueError(f"unseen_share={unseen_share!r} is not allowed: it must be in [0, 1)")
    visible = require_integer("n_visible", n_visible, minimum=2)
    if visible % 2:
        raise ValueError(f"n_visible={n_visible!r} is not allowed: it must be even (A = B = (V - G) / 2)")
    if shared is None:
        shared = tuple(range(0, visible + 1, 2))
    for g in shared:
        g = require_integer("shared", g)
        if g > visible or g % 2:
            raise ValueError(
                f"shared={shared!r} is not allowed: each value must be even and in [0, n_visible={visible}]"
            )
    for name, dim in (("dim_a", dim_a), ("dim_b", dim_b)):
        if require_integer(name, dim, minimum=1) < visible:
            raise ValueError(f"{name}={dim!r} is not allowed: it must be >= n_visible={visible}")
    unseen = int(round(share * visible / (1.0 - share)))
    return [dict(shared=int(g), a_only=(visible - int(g)) // 2, b_only=(visible - int(g)) // 2,
                 unseen=unseen, dim_a=dim_a, dim_b=dim_b) for g in shared]


# --------------------------------------------------------------------------------- family
@dataclass(frozen=True)
class FamilySpec:
    """How the random family of Venn configs is drawn (validated on construction).

    Attributes:
        n_configs: configs in the family (>= 10).
        multiclass_share: fraction in [0, 1] of configs with ``n_classes`` classes (the rest
            have two); exactly round(multiclass_share * n_configs) of them.
        n_classes: classes of the multi-class configs (>= 3).
        n_visible: visible decisive latents |G u A u B| of every config (>= 2).
        max_unseen: unseen decisive latents U drawn uniformly from 0..max_unseen (>= 0).
        max_nondecisive: each non-decisive block (Gn, An, Bn) drawn from 0..max_nondecisive.
        dim: channels of each modality (>= n_visible + 2 max_nondecisive).
        n_train_values: training sizes (each >= 2), one drawn per config; each value is one
            compiled program per class count.
        n_test: test samples; steps: full-batch SGD steps (the paper's lr 0.1, linear models).
        seed: seed of the host-side draw of the family (integer >= 0).

    Per config: gamma ~ U(0, 1) sets G = round(gamma V); the remaining V - G visible latents
    split between A and B at a uniform fraction (redrawn until both modalities see at least one
    decisive latent); U and the non-decisive blocks are uniform integers; n_train uniform over
    ``n_train_values``.  Every config has the same number of latents (the rest is padding), so
    configs differ in static shape only through n_train and the class count.
    """

    n_configs: int = 240
    multiclass_share: float = 0.2
    n_classes: int = 3
    n_visible: int = 16
    max_unseen: int = 16
    max_nondecisive: int = 6
    dim: int = 32
    n_train_values: tuple[int, ...] = (50, 100, 200)
    n_test: int = 500
    steps: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_configs", require_integer("n_configs", self.n_configs, minimum=10))
        object.__setattr__(self, "multiclass_share", require_ratio("multiclass_share", self.multiclass_share))
        object.__setattr__(self, "n_classes", require_integer("n_classes", self.n_classes, minimum=3))
        object.__setattr__(self, "n_visible", require_integer("n_visible", self.n_visible, minimum=2))
        object.__setattr__(self, "max_unseen", require_integer("max_unseen", self.max_unseen))
        object.__setattr__(self, "max_nondecisive", require_integer("max_nondecisive", self.max_nondecisive))
        object.__setattr__(self, "dim", require_integer("dim", self.dim, minimum=1))
        object.__setattr__(self, "n_test", require_integer("n_test", self.n_test, minimum=1))
        object.__setattr__(self, "steps", require_integer("steps", self.steps, minimum=1))
        object.__setattr__(self, "seed", require_integer("seed", self.seed))
        values = self.n_train_values
        if isinstance(values, (int, np.integer)):
            values = (values,)
        try:
            values = tuple(require_integer("n_train_values", v, minimum=2) for v in values)
        except TypeError:
            raise ValueError(f"n_train_values={self.n_train_values!r} is not allowed: give sizes >= 2") from None
        if not values:
            raise ValueError("n_train_values=() is not allowed: give at least one training size >= 2")
        object.__setattr__(self, "n_train_values", values)
        needed = self.n_visible + 2 * self.max_nondecisive
        if self.dim < needed:
            raise ValueError(
                f"dim={self.dim} is not allowed: a modality may show n_visible + 2 max_nondecisive = "
                f"{needed} latents, so dim >= {needed}"
            )
        if self.n_classes - 1 > self.n_visible:
            raise ValueError(
                f"n_classes={self.n_classes} is not allowed with n_visible={self.n_visible}: "
                "it must be <= n_visible + 1"
            )

    @property
    def n_latent(self) -> int:
        """Latents of every config (blocks plus padding)."""
        return self.n_visible + self.max_unseen + 3 * self.max_nondecisive


def random_family(spec: FamilySpec | None = None) -> list[SimConfig]:
    """The family of configs ``spec`` describes (deterministic in ``spec.seed``)."""
    spec = spec or FamilySpec()
    rng = np.random.default_rng(spec.seed)
    visible = spec.n_visible
    n_multi = int(round(spec.multiclass_share * spec.n_configs))
    multiclass = np.zeros(spec.n_configs, bool)
    multiclass[rng.permutation(spec.n_configs)[:n_multi]] = True
    configs = []
    for index in range(spec.n_configs):
        shared = int(round(rng.uniform() * visible))
        while True:
            a_only = int(round(rng.uniform() * (visible - shared)))
            b_only = visible - shared - a_only
            if shared + a_only >= 1 and shared + b_only >= 1:
                break
        unseen = int(rng.integers(0, spec.max_unseen + 1))
        nondecisive = rng.integers(0, spec.max_nondecisive + 1, size=3)
        n_train = int(rng.choice(spec.n_train_values))
        blocks = visible + unseen + int(nondecisive.sum())
        configs.append(make_config(
            shared=shared, a_only=a_only, b_only=b_only, unseen=unseen,
            shared_nondecisive=int(nondecisive[0]), a_nondecisive=int(nondecisive[1]),
            b_nondecisive=int(nondecisive[2]), dim_a=spec.dim, dim_b=spec.dim,
            n_train=n_train, n_test=spec.n_test, steps=spec.steps,
            n_classes=spec.n_classes if multiclass[index] else 2,
            latent_padding=spec.n_latent - blocks,
        ))
    return configs
