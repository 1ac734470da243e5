"""KD on real paired data (:mod:`mfh_sim.real`): measured gains against the predictors, per arm."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from mfh_sim.plots.style import COLOURS

_MARKERS = {"transfer": "o", "general_teacher": "^", "specific_teacher": "v", "same_sample": "s",
            "semi_synthetic": "D"}


def plot_real_check(rows: list[dict], title: str = "Crossmodal KD on real paired data") -> Figure:
    """Three panels, one marker per row (arm, task, view pair, budget), measured KD gain (points,
    with its corrected 95% interval) on the y axis: against the estimated gamma (transfer and
    same-sample arms), against the teacher's accuracy (transfer and the general / specific
    teachers: the manipulation), and against the design gamma (semi-synthetic views)."""
    fig = Figure(figsize=(15, 4.6))
    axes = fig.subplots(1, 3)
    panels = ((axes[0], ("transfer", "same_sample"), "gamma_hat", "estimated gamma (estimator v2)"),
              (axes[1], ("transfer", "general_teacher", "specific_teacher"), "teacher_acc", "teacher accuracy"),
              (axes[2], ("semi_synthetic",), "gamma_design", "gamma by construction (semi-synthetic)"))
    for axis, arms, key, label in panels:
        for arm in arms:
            sel = [r for r in rows if r["arm"] == arm]
            if not sel:
                continue
            x = np.array([r[key] for r in sel], float)
            gain = 100 * np.array([r["gain"] for r in sel], float)
            err = np.abs(100 * np.array([[r["gain_low"] for r in sel], [r["gain_high"] for r in sel]], float) - gain)
            jitter = 0.01 * (np.arange(x.size) % 5 - 2) if key == "gamma_design" else 0.0
            axis.errorbar(x + jitter, gain, yerr=err, fmt=_MARKERS.get(arm, "o"), ms=4, lw=0.6, alpha=0.6,
                          color=COLOURS["delta"] if arm in ("transfer", "semi_synthetic") else None, label=arm)
        axis.axhline(0, color="0.6", lw=0.8)
        axis.set_xlabel(label)
        axis.set_ylabel("measured KD gain (points, corrected 95% CI)")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig
