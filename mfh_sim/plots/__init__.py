"""Matplotlib figures in the paper's style.  Every function returns the figure and never shows it."""

from mfh_sim.plots.curves import plot_curves
from mfh_sim.plots.venn import plot_venn

__all__ = ["plot_curves", "plot_venn"]
