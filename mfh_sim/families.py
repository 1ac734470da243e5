"""Presets of Venn-diagram families: the paper's gamma sweep and a de-confounded one.

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

from typing import Any

from mfh_sim.validation import require_integer, require_ratio

PAPER_OVERLAPS = (0, 2, 4, 6, 8, 10)


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
        points.append(dict(shared=overlap, a_only=10 - overlap, b_only=10 - overlap, unseen=overlap,
                           dim_a=25, dim_b=50))
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
