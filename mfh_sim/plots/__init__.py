"""Matplotlib figures in the paper's style.  Every function returns the figure and never shows it."""
