"""The paper's synthetic experiments as presets (Xue et al., ICLR 2023, Section 3 and Appendix).

* :func:`fig2` — "increase gamma": x^a has 25 channels, x^b 50; K = 20 decisive latents under a
  Gaussian hyperplane; x^b shows latents 0..9, x^a shows latents (10-o)..(19-o) for overlap
  o in {0, 2, 4, 6, 8, 10}.  So G = o, A = B = 10 - o, and o latents are seen by neither modality
  (U = o); gamma = o / (20 - o).
* :func:`fig3` — "increase alpha": both inputs 50 channels; K = 50 decisive latents; x^b shows
  latents 0..9, x^a shows latents 0..(9+s) for s in {0, 10, 20, 30, 40}.  So G = 10, A = s,
  B = 0, U = 40 - s; alpha = s / (s + 10), gamma = 1 - alpha.

Both use the paper's recipe, which is also :func:`mfh_sim.simulate`'s default: linear models with
bias and two outputs, PyTorch's default initialisation, full-batch GD (learning rate 0.1, no
momentum, 1000 steps), n_train = 200 shared by teacher and students, n_test = 1000, and the KD loss
CE + KL with the KL averaged over batch and classes (``kd_reduction='paper'``).
The reported numbers (means of 10 runs, in percent) are kept in :data:`PAPER_FIG2` and
:data:`PAPER_FIG3` for comparison.

* Table 2 — "a modality-general teacher" with Algorithm 1: the protocol is
  :mod:`mfh_sim.protocols.table2`, the entry point :func:`mfh_sim.experiments.table2.table2`;
  see ``docs/table2.md``.

This module holds the paper's geometries (Fig. 2, Fig. 3, Table 2's rows) and reported numbers,
once: the experiments, the theory's checks, the notebooks, the tests and the benchmarks read them
from here.
"""

from __future__ import annotations

from typing import Any

from mfh_sim.results import SweepResult
from mfh_sim.simulation import sweep

__all__ = ["FIG2_OVERLAPS", "FIG3_EXTRA", "PAPER_FIG2", "PAPER_FIG3", "PAPER_RECIPE", "PAPER_ROWS",
           "PAPER_TABLE2", "fig2", "fig2_blocks", "fig2_point", "fig2_points", "fig3", "fig3_points"]

FIG2_OVERLAPS = (0, 2, 4, 6, 8, 10)
FIG3_EXTRA = (0, 10, 20, 30, 40)

#: The paper's protocol: the knobs every preset fixes (they equal the simulator's defaults).
PAPER_RECIPE: dict[str, Any] = dict(
    hyperplane="gaussian",
    n_train=200,
    n_test=1000,
    model="linear",
    init="torch",
    optimizer="sgd",
    learning_rate=0.1,
    momentum=0.0,
    steps=1000,
    ce_weight=1.0,
    kd_weight=1.0,
    temperature=1.0,
    kd_reduction="paper",
)

#: Fig. 2 as reported (accuracies in percent, means of 10 runs; read off the plot, about ±0.1).
PAPER_FIG2 = {
    "gamma": (0.0, 0.111, 0.25, 0.429, 0.667, 1.0),
    "teacher_acc": (71.4, 71.4, 71.1, 71.2, 71.1, 70.9),
    "kd_acc": (66.3, 67.1, 67.9, 68.7, 69.4, 70.1),
    "no_kd_acc": (67.9, 67.9, 67.9, 67.9, 67.9, 67.9),
}

#: Fig. 3 as reported (accuracies in percent, means of 10 runs).
PAPER_FIG3 = {
    "alpha": (0.0, 0.5, 0.667, 0.75, 0.8),
    "teacher_acc": (58.0, 64.2, 71.6, 78.1, 88.5),
    "kd_acc": (58.5, 58.3, 58.2, 57.6, 57.2),
    "no_kd_acc": (57.3, 57.3, 57.3, 57.3, 57.3),
}


#: Table 2's rows: (a_only, shared) decisive latents, gamma = shared / (shared + a_only).
PAPER_ROWS: tuple[tuple[int, int], ...] = ((30, 10), (20, 10), (10, 10), (10, 20), (10, 30))

#: The paper's Table 2 in percent: regular teacher, modality-general teacher, no KD, regular KD,
#: modality-general KD (ground-truth channels), keyed by (a_only, shared).
PAPER_TABLE2: dict[tuple[int, int], tuple[float, float, float, float, float]] = {
    (30, 10): (89.70, 64.84, 59.29, 59.46, 61.01),
    (20, 10): (89.41, 68.42, 61.98, 62.16, 64.50),
    (10, 10): (89.62, 73.41, 67.64, 67.86, 70.25),
    (10, 20): (89.82, 77.98, 73.48, 73.60, 75.43),
    (10, 30): (89.70, 79.41, 76.46, 76.53, 77.70),
}


def fig2_point(overlap: int) -> dict[str, int]:
    """The Venn diagram of Fig. 2 at overlap o (counts and channel dims): the one definition of
    the Fig. 2 geometry.  G = o, A = B = 10 - o, U = o, x^a 25 channels, x^b 50."""
    return dict(shared=overlap, a_only=10 - overlap, b_only=10 - overlap, unseen=overlap, dim_a=25, dim_b=50)


def fig2_blocks(overlap: float):
    """The decisive blocks (G, A, B, U) of Fig. 2 at a real overlap o (the theory interpolates):
    G = o, A = B = 10 - o, U = o; for :func:`mfh_sim.theory.crossover_gamma_gcm`."""
    from mfh_sim.theory.quadrature import Blocks

    return Blocks(overlap, 10.0 - overlap, 10.0 - overlap, overlap)


def fig2_points() -> list[dict[str, int]]:
    """The Venn diagrams of Fig. 2, one per overlap o (counts and channel dims)."""
    return [fig2_point(o) for o in FIG2_OVERLAPS]


def fig3_points() -> list[dict[str, int]]:
    """The Venn diagrams of Fig. 3, one per number s of extra teacher-only latents."""
    return [
        dict(shared=10, a_only=s, b_only=0, unseen=40 - s, dim_a=50, dim_b=50) for s in FIG3_EXTRA
    ]


def fig2(seeds: int = 10, root_seed: int = 0, *, progress: bool = False, **overrides: Any) -> SweepResult:
    """The paper's Fig. 2 ("increase gamma") over ``seeds`` seeds per overlap.

    Returns a :class:`~mfh_sim.results.SweepResult` whose ``.gamma`` is (0, 1/9, 1/4, 3/7, 2/3, 1)
    and whose accuracy arrays have shape (6, seeds).  ``overrides`` change any knob of the recipe
    (for example ``n_train=500`` or ``kd_reduction='batchmean'``).
    """
    return sweep(points=fig2_points(), seeds=seeds, root_seed=root_seed, progress=progress,
                 **{**PAPER_RECIPE, **overrides})


def fig3(seeds: int = 10, root_seed: int = 0, *, progress: bool = False, **overrides: Any) -> SweepResult:
    """The paper's Fig. 3 ("increase alpha") over ``seeds`` seeds per point.

    ``.alpha`` is (0, 1/2, 2/3, 3/4, 4/5) and the accuracy arrays have shape (5, seeds).
    """
    return sweep(points=fig3_points(), seeds=seeds, root_seed=root_seed, progress=progress,
                 **{**PAPER_RECIPE, **overrides})
