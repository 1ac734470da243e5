"""The paper's synthetic experiments and the hypothesis studies built on them.

* :mod:`mfh_sim.experiments.paper`: Fig. 2 and Fig. 3, the paper's geometries and reported
  numbers (defined once, here);
* :mod:`mfh_sim.experiments.table2`: Table 2 (the modality-general teacher) and its result;
* :mod:`mfh_sim.experiments.families`: families of Venn configs (the paper's gamma sweep, a
  de-confounded one, the random family of the head-to-head);
* :mod:`mfh_sim.experiments.hypotheses`: the head-to-head of the hypotheses' predictors.

The paper's experiments are the package's: ``experiments.fig2(...)``, ``experiments.table2(...)``.
"""

from mfh_sim.experiments.paper import (
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
)
from mfh_sim.experiments.table2 import Table2Result, table2, table2_markdown

__all__ = ["FIG2_OVERLAPS", "FIG3_EXTRA", "PAPER_FIG2", "PAPER_FIG3", "PAPER_RECIPE", "PAPER_ROWS",
           "PAPER_TABLE2", "Table2Result", "fig2", "fig2_blocks", "fig2_point", "fig2_points", "fig3", "fig3_points",
           "table2", "table2_markdown"]
