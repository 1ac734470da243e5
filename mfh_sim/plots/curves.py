"""The paper-style accuracy curve: teacher, KD student with a ±1 std band, no-KD dashed, theory."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from mfh_sim.plots.style import COLOURS
from mfh_sim.results import SweepResult

# Colours from the one palette; the paper's legend wording and markers are this figure's own.
_STYLE = {
    "teacher_acc": dict(color=COLOURS["teacher_acc"], label="teacher", marker="o"),
    "kd_acc": dict(color=COLOURS["kd_acc"], label="student, KD", marker="s"),
    "no_kd_acc": dict(color=COLOURS["no_kd_acc"], label="student, no KD", marker="^", linestyle="--"),
}


def _nan_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1), np.nanstd(values, axis=1, ddof=1)


def _theory_line(result: SweepResult, name: str, kind: str | bool) -> np.ndarray | None:
    if not kind or result.theory is None:
        return None
    # Finite-sample predictions carry the plain keys, the infinite-data limit the *_limit keys.
    key = name if kind == "finite" else f"{name}_limit"
    if key not in result.theory:
        return None
    line = np.asarray(result.theory[key], dtype=float)
    return line if np.isfinite(line).all() else None


def plot_curves(
    result: SweepResult,
    x: str = "gamma",
    *,
    ax=None,
    paper: Mapping[str, Sequence[float]] | None = None,
    theory: str | bool = "finite",
    title: str | None = None,
    xlabel: str | None = None,
):
    """Accuracy (%) against ``x`` (any grid keyword or config attribute, e.g. 'gamma', 'alpha').

    Draws the teacher, the KD student with a ±1 standard-deviation band over seeds (as the paper
    does), the no-KD student dashed, the theory's prediction as thin dotted lines where the
    result carries one (``theory='finite'``: the finite-sample prediction of :func:`mfh_sim.theory.predict`, drawn
    only where it is defined at every point; ``'population'``: the infinite-data
    prediction; ``False``: none), and the paper's reported means as open markers when ``paper``
    (a mapping with the key ``x`` and accuracy keys in percent) is given.  Returns the figure.
    """
    if theory not in ("finite", "population", True, False):
        raise ValueError(f"theory={theory!r} is not allowed: use 'finite', 'population' or False")
    theory_kind = "population" if theory is True else theory
    xs = np.asarray(getattr(result, x), dtype=float)
    order = np.argsort(xs, kind="stable")
    xs = xs[order]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 3.8))
    else:
        fig = ax.figure
    for name, style in _STYLE.items():
        mean, std = _nan_stats(100 * np.asarray(getattr(result, name), dtype=float)[order])
        ax.plot(xs, mean, **style)
        if name == "kd_acc":
            ax.fill_between(xs, mean - std, mean + std, color=style["color"], alpha=0.15, linewidth=0)
        line = _theory_line(result, name, theory_kind)
        if line is not None:
            ax.plot(xs, 100 * line[order], color=style["color"], linewidth=1.1, alpha=0.7, linestyle=":")
        if paper is not None and name in paper:
            ax.plot(paper[x], paper[name], linestyle="none", marker=style["marker"],
                    markerfacecolor="none", color=style["color"], alpha=0.7)
    handles, labels = ax.get_legend_handles_labels()
    if any(_theory_line(result, name, theory_kind) is not None for name in _STYLE):
        handles.append(plt.Line2D([], [], color="black", linestyle=":", linewidth=1.1))
        labels.append("finite-sample theory" if theory_kind == "finite" else "population theory")
    if paper is not None:
        handles.append(plt.Line2D([], [], color="black", marker="o", markerfacecolor="none", linestyle="none"))
        labels.append("paper (10 runs)")
    ax.legend(handles, labels, fontsize=8, frameon=False)
    ax.set_xlabel(xlabel or {"gamma": r"$\gamma$", "alpha": r"$\alpha$", "beta": r"$\beta$"}.get(x, x))
    ax.set_ylabel("test accuracy (%)")
    n_seeds = len(result.seeds)
    ax.set_title(title or f"{n_seeds} seeds; band: KD student ±1 std", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
