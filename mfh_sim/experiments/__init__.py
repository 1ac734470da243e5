"""The paper's synthetic experiments and the hypothesis studies built on them.

* :mod:`mfh_sim.experiments.paper`: Fig. 2, Fig. 3 and Table 2, their geometries and the paper's
  reported numbers (defined once, here);
* :mod:`mfh_sim.experiments.families`: families of Venn configs (the paper's gamma sweep, a
  de-confounded one, the random family of the head-to-head);
* :mod:`mfh_sim.experiments.hypotheses`: the head-to-head of the hypotheses' predictors.

The names of :mod:`~mfh_sim.experiments.paper` are re-exported: ``experiments.fig2(...)``.
"""

from mfh_sim.experiments.paper import (  # noqa: F401
    FIG2_OVERLAPS,
    FIG3_EXTRA,
    PAPER_FIG2,
    PAPER_FIG3,
    PAPER_RECIPE,
    PAPER_ROWS,
    PAPER_TABLE2,
    fig2,
    fig2_blocks,
    fig2_point,
    fig2_points,
    fig3,
    fig3_points,
    table2,
    table2_markdown,
)

__all__ = ["FIG2_OVERLAPS", "FIG3_EXTRA", "PAPER_FIG2", "PAPER_FIG3", "PAPER_RECIPE", "PAPER_ROWS",
           "PAPER_TABLE2", "fig2", "fig2_blocks", "fig2_point", "fig2_points", "fig3", "fig3_points", "table2",
           "table2_markdown"]
