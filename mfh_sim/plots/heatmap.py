"""The KD gain over a plane of two grid parameters, with the theory's zero contour."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm

from mfh_sim.results import SweepResult


def gain_grid(result: SweepResult, x: str, y: str, values: np.ndarray | None = None):
    """Arrange per-point ``values`` (default: the mean KD gain) on the (y, x) grid.

    Axis values are the requested grid values where the grid names them (ratios rounded to
    counts would scatter otherwise), else the config attribute.  Returns
    ``(x_levels, y_levels, grid)`` with ``grid[j, i]`` the value at (x_levels[i], y_levels[j]);
    cells without a grid point are NaN.
    """
    xs, ys = _axis_values(result, x), _axis_values(result, y)
    if values is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values = np.nanmean(result.delta, axis=1)
    x_levels, y_levels = np.unique(np.round(xs, 10)), np.unique(np.round(ys, 10))
    grid = np.full((y_levels.size, x_levels.size), np.nan)
    for xv, yv, value in zip(np.round(xs, 10), np.round(ys, 10), values):
        grid[np.searchsorted(y_levels, yv), np.searchsorted(x_levels, xv)] = value
    return x_levels, y_levels, grid


def _axis_values(result: SweepResult, name: str) -> np.ndarray:
    if result.grid and all(name in point for point in result.grid):
        return np.asarray([point[name] for point in result.grid], dtype=float)
    return np.asarray(getattr(result, name), dtype=float)


def plot_gain_heatmap(
    result: SweepResult,
    x: str = "gamma",
    y: str = "alpha",
    *,
    contour: np.ndarray | None = None,
    contour_label: str = "theory: KD gain = 0",
    ax=None,
    title: str | None = None,
    log_y: bool = False,
):
    """Heat map of the mean KD gain (points) over the (``x``, ``y``) grid of a sweep.

    ``contour`` (one value per grid point, e.g. the theory's predicted gain) adds its zero
    level as a black line: where the theory says KD starts to help.  Red: KD helps; blue: KD
    hurts; white: no effect.  Returns the figure.
    """
    x_levels, y_levels, grid = gain_grid(result, x, y)
    grid = 100 * grid
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.4, 4.0))
    else:
        fig = ax.figure
    finite = grid[np.isfinite(grid)]
    bound = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-3)
    mesh = ax.pcolormesh(x_levels, y_levels, grid, cmap="RdBu_r", shading="nearest",
                         norm=TwoSlopeNorm(0.0, -bound, bound))
    fig.colorbar(mesh, ax=ax, label="KD gain (points)")
    if contour is not None:
        _, _, contour_grid = gain_grid(result, x, y, np.asarray(contour, float))
        if np.isfinite(contour_grid).sum() >= 4 and np.nanmin(contour_grid) < 0 < np.nanmax(contour_grid):
            ax.contour(x_levels, y_levels, contour_grid, levels=[0.0], colors="black", linewidths=1.5)
            ax.plot([], [], color="black", label=contour_label)
            ax.legend(loc="upper right", fontsize=8, frameon=True)
    names = {"gamma": r"$\gamma$", "alpha": r"$\alpha$", "beta": r"$\beta$", "n_train": "n_train"}
    ax.set_xlabel(names.get(x, x))
    ax.set_ylabel(names.get(y, y))
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title or f"mean KD gain over {len(result.seeds)} seeds", fontsize=10)
    fig.tight_layout()
    return fig
