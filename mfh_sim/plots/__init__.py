"""Matplotlib figures in the paper's style.  Every function returns the figure and never shows it."""

from mfh_sim.plots.curves import plot_curves
from mfh_sim.plots.heatmap import gain_grid, plot_gain_heatmap
from mfh_sim.plots.hypotheses import plot_head_to_head
from mfh_sim.plots.salience import plot_salience
from mfh_sim.plots.theory import crossover_curve, theory_vs_simulation
from mfh_sim.plots.venn import plot_venn

__all__ = [
    "crossover_curve",
    "gain_grid",
    "plot_curves",
    "plot_gain_heatmap",
    "plot_head_to_head",
    "plot_salience",
    "plot_venn",
    "theory_vs_simulation",
]
