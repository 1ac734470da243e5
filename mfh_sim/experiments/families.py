"""Families of Venn-diagram configs: the paper's gamma sweep, a de-confounded one, and the named
random family designs of the hypothesis head-to-head (:data:`FAMILIES`, :func:`family_spec`,
:func:`random_family`; :class:`FamilySpec` and :class:`ShapesFamilySpec` say what each draws).

Why several designs: a rank correlation across the configs of a random family depends on how the
family makes gamma, alpha, beta, the unseen share and n_train move together, so a conclusion of the
head-to-head is about crossmodal KD only if it holds whatever the design
(:func:`mfh_sim.experiments.hypotheses.run_families` checks each claim in each design).

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

import math
from dataclasses import dataclass, replace
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


# ------------------------------------------------------------------------ random families
#: How :class:`FamilySpec` draws a config's visible decisive counts (G, A, B); see its docstring.
DIAGRAMS = ("gamma-split", "uniform-counts", "gamma-alpha", "gamma-beta", "alpha-beta")


@dataclass(frozen=True)
class FamilySpec:
    """A random family of Venn configs for the head-to-head (validated on construction).

    Attributes:
        diagram: how each config's visible decisive counts (G, A, B) are drawn, one of
            :data:`DIAGRAMS`:

            * ``'gamma-split'``: gamma ~ U(0, 1) sets G = round(gamma n_visible); the other
              n_visible - G latents split between A and B at a uniform fraction;
            * ``'uniform-counts'``: G, A and B each uniform on 0..max_block, independently (so
              n_visible varies, and gamma is rarely above 0.6);
            * ``'gamma-alpha'``, ``'gamma-beta'``: the pair of ratios uniform over the pairs that
              a diagram can have (the triangle gamma + alpha <= 1, resp. gamma + beta <= 1), the
              third ratio following from them;
            * ``'alpha-beta'``: (alpha, beta) uniform over the unit square.

            The ratio designs round the pair to counts of n_visible latents
            (:meth:`mfh_sim.VennConfig.from_ratios`).  Every design redraws a diagram until both
            modalities see a decisive latent (and a multi-class config has n_classes - 1 of them).
        n_configs: configs in the family (>= 10).
        multiclass_share: fraction in [0, 1] of configs with ``n_classes`` classes (the rest
            have two); exactly round(multiclass_share * n_configs) of them.
        n_classes: classes of the multi-class configs (>= 3).
        n_visible: visible decisive latents |G u A u B| of every config (>= 2; not with
            ``'uniform-counts'``).
        max_block: largest G, A and B of ``'uniform-counts'`` (>= 1; only there).
        max_unseen: unseen decisive latents U drawn uniformly from 0..max_unseen (>= 0).
        max_nondecisive: each non-decisive block (Gn, An, Bn) drawn from 0..max_nondecisive.
        dim: channels of each modality (at least the most latents a modality can show).
        n_train_values: training sizes (each >= 2), one drawn uniformly per config; each value
            is one compiled program per class count.
        n_test: test samples; steps: full-batch SGD steps (the paper's lr 0.1, linear models).
        seed: seed of the host-side draw of the family (integer >= 0).

    Per config, in this order from one numpy generator: (G, A, B) by ``diagram``, U, the three
    non-decisive blocks, n_train.  Every config has the same number of latents (the rest is
    padding), so configs differ in static shape only through n_train and the class count.
    """

    diagram: str = "gamma-split"
    n_configs: int = 240
    multiclass_share: float = 0.2
    n_classes: int = 3
    n_visible: int = 16
    max_block: int = 12
    max_unseen: int = 16
    max_nondecisive: int = 6
    dim: int = 32
    n_train_values: tuple[int, ...] = (50, 100, 200)
    n_test: int = 500
    steps: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.diagram not in DIAGRAMS:
            raise ValueError(f"diagram={self.diagram!r} is not allowed: use one of {DIAGRAMS}")
        object.__setattr__(self, "n_configs", require_integer("n_configs", self.n_configs, minimum=10))
        object.__setattr__(self, "multiclass_share", require_ratio("multiclass_share", self.multiclass_share))
        object.__setattr__(self, "n_classes", require_integer("n_classes", self.n_classes, minimum=3))
        object.__setattr__(self, "n_visible", require_integer("n_visible", self.n_visible, minimum=2))
        object.__setattr__(self, "max_block", require_integer("max_block", self.max_block, minimum=1))
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
        # A knob the diagram does not read is refused rather than silently ignored.
        defaults = FamilySpec.__dataclass_fields__
        unused = "n_visible" if self.diagram == "uniform-counts" else "max_block"
        if getattr(self, unused) != defaults[unused].default:
            raise ValueError(f"{unused}={getattr(self, unused)} is not allowed with diagram={self.diagram!r}: "
                             f"that design does not use {unused}")
        needed = self.most_visible_per_modality + 2 * self.max_nondecisive
        if self.dim < needed:
            raise ValueError(
                f"dim={self.dim} is not allowed: a modality may show {self.most_visible_per_modality} visible "
                f"decisive + 2 max_nondecisive = {needed} latents, so dim >= {needed}"
            )
        if self.n_classes - 1 > self.most_visible:
            raise ValueError(
                f"n_classes={self.n_classes} is not allowed with at most {self.most_visible} visible decisive "
                f"latents: it must be <= {self.most_visible + 1}"
            )

    @property
    def most_visible(self) -> int:
        """The most visible decisive latents |G u A u B| a config of the family can have."""
        return 3 * self.max_block if self.diagram == "uniform-counts" else self.n_visible

    @property
    def most_visible_per_modality(self) -> int:
        """The most visible decisive latents one modality (G + A or G + B) can show."""
        return 2 * self.max_block if self.diagram == "uniform-counts" else self.n_visible

    @property
    def n_latent(self) -> int:
        """Latents of every config (blocks plus padding)."""
        return self.most_visible + self.max_unseen + 3 * self.max_nondecisive

    def describe(self) -> str:
        """What the family draws, in one paragraph (generated from the fields)."""
        visible = {
            "gamma-split": f"gamma ~ U(0, 1) sets G = round({self.n_visible} gamma) of {self.n_visible} visible "
                           "decisive latents, the rest split between A and B at a uniform fraction",
            "uniform-counts": f"G, A and B each uniform on 0..{self.max_block}",
            "gamma-alpha": f"(gamma, alpha) uniform over gamma + alpha <= 1, rounded to {self.n_visible} visible "
                           "decisive latents",
            "gamma-beta": f"(gamma, beta) uniform over gamma + beta <= 1, rounded to {self.n_visible} visible "
                          "decisive latents",
            "alpha-beta": f"(alpha, beta) uniform over [0, 1]^2, rounded to {self.n_visible} visible decisive "
                          "latents",
        }[self.diagram]
        n_multi = int(round(self.multiclass_share * self.n_configs))
        sizes = ", ".join(str(v) for v in self.n_train_values)
        unseen = f"U uniform on 0..{self.max_unseen}" if self.max_unseen else "no unseen decisive latent (U = 0)"
        return (f"{self.n_configs} configs: {visible}; {unseen}; non-decisive blocks "
                f"uniform on 0..{self.max_nondecisive}; n_train uniform over {{{sizes}}}; {n_multi} configs with "
                f"{self.n_classes} classes, the rest two; {self.dim} channels per modality, {self.n_test} test "
                f"samples, full-batch SGD for {self.steps} steps; family seed {self.seed}")

    def points(self) -> list[dict[str, Any]]:
        """The family as :func:`mfh_sim.make_config` keyword dicts (deterministic in ``seed``)."""
        rng = np.random.default_rng(self.seed)
        n_multi = int(round(self.multiclass_share * self.n_configs))
        multiclass = np.zeros(self.n_configs, bool)
        multiclass[rng.permutation(self.n_configs)[:n_multi]] = True
        points = []
        for index in range(self.n_configs):
            classes = self.n_classes if multiclass[index] else 2
            shared, a_only, b_only = _draw_visible(rng, self, classes)
            unseen = int(rng.integers(0, self.max_unseen + 1))
            nondecisive = rng.integers(0, self.max_nondecisive + 1, size=3)
            n_train = int(rng.choice(self.n_train_values))
            blocks = shared + a_only + b_only + unseen + int(nondecisive.sum())
            points.append(dict(
                shared=shared, a_only=a_only, b_only=b_only, unseen=unseen,
                shared_nondecisive=int(nondecisive[0]), a_nondecisive=int(nondecisive[1]),
                b_nondecisive=int(nondecisive[2]), dim_a=self.dim, dim_b=self.dim,
                n_train=n_train, n_test=self.n_test, steps=self.steps, n_classes=classes,
                latent_padding=self.n_latent - blocks,
            ))
        return points


def _draw_visible(rng: np.random.Generator, spec: FamilySpec, classes: int) -> tuple[int, int, int]:
    """(G, A, B) of one config by ``spec.diagram``, redrawn until both modalities see a decisive
    latent and there are at least ``classes - 1`` visible ones."""
    from mfh_sim.venn import VennConfig

    visible = spec.n_visible
    if spec.diagram == "gamma-split":
        # The order of the draws is that of the family before the designs were named (its
        # configs, and so the head-to-head's numbers, are unchanged).
        shared = int(round(rng.uniform() * visible))
        while True:
            a_only = int(round(rng.uniform() * (visible - shared)))
            b_only = visible - shared - a_only
            if shared + a_only >= 1 and shared + b_only >= 1:
                return shared, a_only, b_only
    while True:
        if spec.diagram == "uniform-counts":
            shared, a_only, b_only = (int(v) for v in rng.integers(0, spec.max_block + 1, size=3))
        else:
            first, second = rng.uniform(), rng.uniform()
            if spec.diagram != "alpha-beta" and first + second > 1.0:
                # Reflecting the upper triangle onto the lower one keeps the draw uniform on it.
                first, second = 1.0 - first, 1.0 - second
            if spec.diagram != "alpha-beta" and first == 0.0:
                continue  # gamma = 0 fixes alpha = beta = 1: not a point of the continuous pair
            names = {"gamma-alpha": ("gamma", "alpha"), "gamma-beta": ("gamma", "beta"),
                     "alpha-beta": ("alpha", "beta")}[spec.diagram]
            venn = VennConfig.from_ratios(**dict(zip(names, (first, second))), n_visible=visible, warn=False)
            shared, a_only, b_only = venn.shared, venn.a_only, venn.b_only
        if shared + a_only >= 1 and shared + b_only >= 1 and shared + a_only + b_only >= classes - 1:
            return shared, a_only, b_only


# ----------------------------------------------------------- shapes of dims and n_train
@dataclass(frozen=True)
class ShapesFamilySpec:
    """A random family grouped by *shape* (channel dims, n_train, student sample), two classes.

    The family of the theory's benchmark (``benchmarks/theory_family.py``), drawn by
    :func:`shapes_family_points`: ``n_shapes`` shapes of ``per_shape`` Venn diagrams each.

    Attributes:
        n_shapes: shapes (>= 1).  per_shape: diagrams per shape (>= 1).
        seed: seed of the host-side draw (integer >= 0).
    """

    n_shapes: int = 10
    per_shape: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_shapes", require_integer("n_shapes", self.n_shapes, minimum=1))
        object.__setattr__(self, "per_shape", require_integer("per_shape", self.per_shape, minimum=1))
        object.__setattr__(self, "seed", require_integer("seed", self.seed))

    @property
    def n_configs(self) -> int:
        return self.n_shapes * self.per_shape

    def describe(self) -> str:
        return (f"{self.n_configs} configs in {self.n_shapes} shapes of {self.per_shape}: per shape dim_a, dim_b "
                "uniform on 20..60, n_train log-uniform on [max(dim_a, dim_b) + 5, 400], students on the "
                "teacher's sample (even shapes) or a fresh one (odd); per diagram n_visible uniform on 3..28 "
                "split by gamma ~ U(0, 1) and a uniform A/B fraction, U uniform on 0..12, non-decisive blocks "
                "on 0..8, kd_weight uniform on [0.5, 2], Gaussian hyperplane; two classes, the paper's GD; "
                f"family seed {self.seed}")

    def points(self) -> list[dict[str, Any]]:
        """The family as :func:`mfh_sim.make_config` keyword dicts (without the shape index)."""
        return [{k: v for k, v in p.items() if k != "shape"}
                for p in shapes_family_points(self.seed, self.n_shapes, self.per_shape)]


def _shape_counts(rng: np.random.Generator, dim_a: int, dim_b: int) -> dict[str, int]:
    """One Venn diagram's block counts that fit in dim_a x dim_b channels (rejection sampling).

    The visible decisive latents V ~ U{3..28} split by gamma ~ U(0, 1) into G = round(gamma V)
    and the rest, which a uniform fraction splits into A and B, so that gamma spans [0, 1]
    (independent uniform counts would rarely give gamma > 0.6); U ~ U{0..12} and the
    non-decisive blocks ~ U{0..8} are independent.
    """
    while True:
        visible = int(rng.integers(3, 29))
        shared = int(round(rng.uniform() * visible))
        a_only = int(round(rng.uniform() * (visible - shared)))
        counts = dict(
            shared=shared, a_only=a_only, b_only=visible - shared - a_only,
            unseen=int(rng.integers(0, 13)), shared_nondecisive=int(rng.integers(0, 9)),
            a_nondecisive=int(rng.integers(0, 9)), b_nondecisive=int(rng.integers(0, 9)),
        )
        used_a = counts["shared"] + counts["a_only"] + counts["shared_nondecisive"] + counts["a_nondecisive"]
        used_b = counts["shared"] + counts["b_only"] + counts["shared_nondecisive"] + counts["b_nondecisive"]
        if used_a <= dim_a and used_b <= dim_b:
            return counts


def _block_latents(point: dict[str, Any]) -> int:
    return sum(point[k] for k in ("shared", "a_only", "b_only", "unseen", "shared_nondecisive",
                                  "a_nondecisive", "b_nondecisive"))


def shapes_family_points(seed: int, shapes: int = 10, per_shape: int = 4) -> list[dict[str, Any]]:
    """The shapes family: ``shapes`` x ``per_shape`` :func:`mfh_sim.make_config` keyword dicts.

    Deterministic in ``seed`` (an integer >= 0).  Per shape: dim_a, dim_b uniform on 20..60,
    n_train log-uniform on [max(dim_a, dim_b) + 5, 400], students on the teacher's own sample
    (even shapes) or on a fresh one (odd shapes); per diagram the counts of :func:`_shape_counts`,
    kd_weight uniform on [0.5, 2] (two decimals) and a Gaussian hyperplane.  The diagrams of a
    shape are padded (``latent_padding``) to the same number of latents, which changes no
    distribution and gives them one compiled program.  Each dict also carries ``"shape"`` (its
    shape index), which is not a config keyword (:meth:`ShapesFamilySpec.points` drops it).
    """
    rng = np.random.default_rng(require_integer("seed", seed))
    family = []
    for shape in range(require_integer("shapes", shapes, minimum=1)):
        dim_a, dim_b = (int(v) for v in rng.integers(20, 61, size=2))
        low = max(dim_a, dim_b) + 5
        n_train = int(round(math.exp(rng.uniform(math.log(low), math.log(400)))))
        fresh = bool(shape % 2)
        points = []
        for _ in range(require_integer("per_shape", per_shape, minimum=1)):
            points.append(dict(
                **_shape_counts(rng, dim_a, dim_b), dim_a=dim_a, dim_b=dim_b, n_train=n_train,
                fresh_student_sample=fresh, kd_weight=round(float(rng.uniform(0.5, 2.0)), 2),
                hyperplane="gaussian", shape=shape,
            ))
        widest = max(_block_latents(p) for p in points)
        for p in points:
            p["latent_padding"] = widest - _block_latents(p)
        family.extend(points)
    return family


def knob_family(count: int = 36, seed: int = 20261205, per_shape: int = 4) -> list[SimConfig]:
    """A random family of ``count`` SimConfigs across the generator's and optimiser's extensions
    (the theory's check of docs/theory.md 4.14; its default seed is that family's).

    Pure and deterministic in (count, seed).  Groups of ``per_shape`` diagrams share a *shape*
    (dim_a, dim_b uniform on 20..60, n_train log-uniform on [max(dims) + 5, 400], the students'
    protocol alternating, and the static knobs: n_classes uniform in {2, 3, 4}, mixing_depth in
    {0, 1, 2}, label noise on with probability 2/3), so that each group compiles once; per diagram,
    every block count random (:func:`_shape_counts`), label_noise ~ U(0.1, 0.3) where on,
    mixing_strength ~ U(0.2, 0.8) where the depth is > 0, heavy-ball momentum 0 with probability
    1/3 and ~ U(0.5, 0.9) otherwise, kd_weight ~ U(0.5, 2), Gaussian hyperplane, T = 1, the
    paper's reduction and GD recipe (learning rate 0.1, 1,000 steps).  Each knob is off in part of
    the family, so every term is seen alone and with the others.
    """
    count = require_integer("count", count, minimum=1)
    per_shape = require_integer("per_shape", per_shape, minimum=1)
    rng = np.random.default_rng(require_integer("seed", seed))
    family: list[SimConfig] = []
    shape = 0
    while len(family) < count:
        dim_a, dim_b = (int(v) for v in rng.integers(20, 61, size=2))
        low = max(dim_a, dim_b) + 5
        n_train = int(round(math.exp(rng.uniform(math.log(low), math.log(400)))))
        classes = int(rng.integers(2, 5))
        depth = int(rng.integers(0, 3))
        noisy = bool(rng.uniform() < 2.0 / 3.0)
        points = []
        for _ in range(min(per_shape, count - len(family))):
            points.append(dict(
                **_shape_counts(rng, dim_a, dim_b), dim_a=dim_a, dim_b=dim_b, n_train=n_train,
                fresh_student_sample=bool(shape % 2), kd_weight=round(float(rng.uniform(0.5, 2.0)), 2),
                hyperplane="gaussian", n_classes=classes,
                label_noise=round(float(rng.uniform(0.1, 0.3)), 3) if noisy else 0.0,
                mixing_depth=depth,
                mixing_strength=round(float(rng.uniform(0.2, 0.8)), 3) if depth else 1.0,
                momentum=0.0 if rng.uniform() < 1.0 / 3.0 else round(float(rng.uniform(0.5, 0.9)), 3),
            ))
        widest = max(_block_latents(p) for p in points)
        for p in points:
            p["latent_padding"] = widest - _block_latents(p)
            family.append(make_config(**p))
        shape += 1
    return family


def validation_family(count: int, seed: int = 0, dim: int = 40) -> list[SimConfig]:
    """``count`` random configs across the Venn space, for validating an estimator of the diagram
    (:func:`mfh_sim.real.validate`): decisive blocks G, A, B of 0-12 latents (at least one
    visible), 0-16 unseen, 0-4 non-decisive per region, ``dim`` channels per view, the hyperplane
    Gaussian or all-ones (alternately).  A pure function of (count, seed)."""
    from mfh_sim.venn import VennConfig

    count = require_integer("count", count, minimum=1)
    rng = np.random.default_rng(require_integer("seed", seed))
    out: list[SimConfig] = []
    while len(out) < count:
        g, a, b = (int(v) for v in rng.integers(0, 13, size=3))
        unseen = int(rng.integers(0, 17))
        gn, an, bn = (int(v) for v in rng.integers(0, 5, size=3))
        if g + a + b == 0:
            continue
        venn = VennConfig(shared=g, a_only=a, b_only=b, unseen=unseen, shared_nondecisive=gn, a_nondecisive=an,
                          b_nondecisive=bn, dim_a=dim, dim_b=dim)
        out.append(make_config(venn=venn, hyperplane="gaussian" if len(out) % 2 == 0 else "ones"))
    return out


# ------------------------------------------------------------------------- named designs
Family = FamilySpec | ShapesFamilySpec

#: The named family designs of the head-to-head (``mfh-sim hypotheses --family NAME``), each at
#: family seed 0 (:func:`family_spec` sets another).  :meth:`describe` says what each draws.  At one
#: seed the designs of :class:`FamilySpec` read one numpy stream, so some share draws: 'wide-n-train'
#: has the diagrams of 'gamma-split', 'gamma-beta' is 'gamma-alpha' with A and B swapped, and all put
#: their multi-class configs at the same positions.
FAMILIES: dict[str, Family] = {
    # The family of the head-to-head before the designs were named.
    "gamma-split": FamilySpec(),
    "uniform-counts": FamilySpec(diagram="uniform-counts", max_block=12, max_unseen=12, dim=36),
    "gamma-alpha": FamilySpec(diagram="gamma-alpha"),
    "gamma-beta": FamilySpec(diagram="gamma-beta"),
    "alpha-beta": FamilySpec(diagram="alpha-beta"),
    "wide-n-train": FamilySpec(n_train_values=(50, 100, 200, 500, 1000)),
    "no-unseen": FamilySpec(max_unseen=0),
    "varied-shapes": ShapesFamilySpec(n_shapes=12, per_shape=20),
}
DEFAULT_FAMILY = "gamma-split"


def family_spec(name: str, **changes: Any) -> Family:
    """The design ``name`` (a key of :data:`FAMILIES`) with ``changes`` to its fields.

    ``family_spec('wide-n-train', seed=1)``; ``n_configs`` is accepted by every design (for
    ``'varied-shapes'`` it must be a multiple of ``per_shape``).  Raises :class:`ValueError`
    naming an unknown design or a field the design does not have.
    """
    if not isinstance(name, str) or name not in FAMILIES:
        raise ValueError(f"family={name!r} is not allowed: use one of {', '.join(FAMILIES)}")
    spec = FAMILIES[name]
    changes = dict(changes)
    if isinstance(spec, ShapesFamilySpec) and "n_configs" in changes:
        n_configs = require_integer("n_configs", changes.pop("n_configs"), minimum=1)
        per_shape = changes.get("per_shape", spec.per_shape)
        if n_configs % per_shape:
            raise ValueError(f"n_configs={n_configs} is not allowed with family={name!r}: it must be a "
                             f"multiple of per_shape={per_shape}")
        changes["n_shapes"] = n_configs // per_shape
    fields = type(spec).__dataclass_fields__
    for key in changes:
        if key not in fields:
            raise ValueError(f"{key}={changes[key]!r} is not allowed with family={name!r}: that design's "
                             f"fields are {', '.join(fields)}")
    return replace(spec, **changes)


def random_family(spec: Family | str | None = None) -> list[SimConfig]:
    """The configs of ``spec`` (a spec, a name of :data:`FAMILIES`, or None: the default design)."""
    if spec is None or isinstance(spec, str):
        spec = family_spec(spec or DEFAULT_FAMILY)
    return [make_config(**point) for point in spec.points()]
