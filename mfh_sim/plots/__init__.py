"""Matplotlib figures in the paper's style.  Every function returns the figure and never shows it."""
from mfh_sim.plots.hypotheses import plot_head_to_head  # noqa: E402,F401
