"""Matplotlib figures in the paper's style.  Every function returns the figure and never shows it."""
from mfh_sim.plots.salience import plot_salience  # noqa: F401
