"""Theory lines over simulated markers.  Functions return the figure and never call show()."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from mfh_sim.plots.style import COLOURS, LABELS
from mfh_sim.results import SweepResult
from mfh_sim.stats import summarize


def _x_values(result: SweepResult, x: str) -> np.ndarray:
    if x in ("gamma", "alpha", "beta"):
        return np.asarray([getattr(c.venn, x) for c in result.configs], dtype=float)
    return np.asarray(getattr(result, x), dtype=float)


def theory_vs_simulation(
    result: SweepResult,
    x: str = "gamma",
    keys: Sequence[str] = ("teacher_acc", "no_kd_acc", "kd_acc"),
    *,
    population: bool = True,
    finite: bool = True,
    ax=None,
    title: str | None = None,
):
    """Simulated means (markers, 95% t-intervals) with the theory's lines, in percent, against ``x``.

    Solid lines: the finite-sample prediction (:func:`mfh_sim.theory.predict`, keys ``<key>``);
    dashed: the infinite-data limit (keys ``<key>_limit``).  ``x`` is a ratio ('gamma', 'alpha', 'beta') or any grid
    keyword or config attribute (e.g. 'n_train').  ``keys`` may include 'delta'.
    """
    if result.theory is None:
        raise ValueError("result.theory is None: run the sweep with theory=True on a covered config")
    xs = _x_values(result, x)
    order = np.argsort(xs)
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.2, 3.8))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    for key in keys:
        colour = COLOURS.get(key, None)
        values = result.delta if key == "delta" else result.arrays[key]
        stats = [summarize(v) for v in values]
        mean = np.array([s.mean for s in stats]) * 100
        low = np.array([s.low for s in stats]) * 100
        high = np.array([s.high for s in stats]) * 100
        ax.errorbar(xs[order], mean[order], yerr=[(mean - low)[order], (high - mean)[order]], fmt="o",
                    color=colour, ms=4, capsize=2, label=f"{LABELS.get(key, key)} (simulated)")
        if finite and key in result.theory:
            ax.plot(xs[order], 100 * result.theory[key][order], "-", color=colour, lw=1.4,
                    label=f"{LABELS.get(key, key)} (finite-n theory)")
        if population and f"{key}_limit" in result.theory:
            ax.plot(xs[order], 100 * result.theory[f"{key}_limit"][order], "--", color=colour, lw=1.0, alpha=0.8,
                    label=f"{LABELS.get(key, key)} (infinite data)")
    ax.set_xlabel(x)
    ax.set_ylabel("accuracy (%)" if "delta" not in keys else "percentage points")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    return fig


def crossover_curve(n_values: Sequence[float], gammas: Sequence[float], *, simulated=None, ax=None):
    """The predicted crossover gamma* against n_train (log x), optional simulated (n, gamma*) markers."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(4.6, 3.4))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    ax.plot(n_values, gammas, "-", color="tab:red", label="high-dimensional theory")
    if simulated is not None:
        n_sim, g_sim = simulated
        ax.plot(n_sim, g_sim, "o", color="k", ms=4, label="simulated (CE + KL)")
    ax.set_xscale("log")
    ax.set_xlabel("n_train")
    ax.set_ylabel("crossover gamma*")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    return fig
