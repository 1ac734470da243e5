"""Matplotlib figures in the paper's style.  Every function returns the figure and never shows it.

One palette and one saver for all of them: :mod:`mfh_sim.plots.style` (``COLOURS``,
``save_figure``).  Only ``plots/`` and ``commands/`` import matplotlib.
"""

from mfh_sim.plots.curves import plot_curves
from mfh_sim.plots.gain import plot_gain_curve
from mfh_sim.plots.heatmap import gain_grid, plot_gain_heatmap
from mfh_sim.plots.hypotheses import plot_head_to_head
from mfh_sim.plots.salience import plot_salience
from mfh_sim.plots.style import COLOURS, LABELS, save_figure
from mfh_sim.plots.theory import crossover_curve, theory_vs_simulation
from mfh_sim.plots.venn import plot_venn

__all__ = [
    "COLOURS",
    "LABELS",
    "crossover_curve",
    "gain_grid",
    "plot_curves",
    "plot_gain_curve",
    "plot_gain_heatmap",
    "plot_head_to_head",
    "plot_salience",
    "plot_venn",
    "save_figure",
    "theory_vs_simulation",
]
