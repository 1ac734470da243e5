"""Predicted against measured KD gain on real paired data (:mod:`mfh_sim.real`)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from mfh_sim.plots.style import COLOURS

_MARKERS = "osD^vP*X"


def plot_real_check(rows: dict, title: str = "Real crossmodal KD: predicted vs measured") -> Figure:
    """Two panels, one marker per (task, teacher view, student view) row, measured KD gain (points,
    with its 95% interval over splits) on the y axis: against the theory's predicted gain (left,
    the diagonal is perfect prediction) and against the estimated gamma (right)."""
    fig = Figure(figsize=(11, 4.6))
    left, right = fig.subplots(1, 2)
    gain = 100 * np.asarray(rows["real_gain"], float)
    err = np.abs(100 * np.stack([np.asarray(rows["real_gain_low"], float), np.asarray(rows["real_gain_high"], float)])
                 - gain)
    tasks = list(dict.fromkeys(rows["task"]))
    for axis, key, label in ((left, "predicted_gain", "theory's predicted KD gain (points)"),
                             (right, "gamma_hat", "estimated gamma")):
        x = np.asarray(rows[key], float) * (100 if key == "predicted_gain" else 1)
        for k, task in enumerate(tasks):
            sel = np.asarray(rows["task"]) == task
            axis.errorbar(x[sel], gain[sel], yerr=err[:, sel], fmt=_MARKERS[k % len(_MARKERS)], ms=5,
                          color=COLOURS["delta"], alpha=0.35 + 0.65 * (k + 1) / len(tasks), lw=0.8,
                          label=f"task {task}")
        axis.axhline(0, color="0.6", lw=0.8)
        if key == "predicted_gain":
            axis.axvline(0, color="0.6", lw=0.8)
            finite = np.concatenate([x[np.isfinite(x)], gain[np.isfinite(gain)]])
            lo, hi = (finite.min(), finite.max()) if finite.size else (-1, 1)
            axis.plot([lo, hi], [lo, hi], "--", color="0.3", lw=0.8, label="perfect prediction")
        axis.set_xlabel(label)
        axis.set_ylabel("measured KD gain (points, 95% CI)")
        axis.legend(fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig
