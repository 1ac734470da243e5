"""The KD gain of a sweep against one of its parameters (``mfh-sim show --plot``)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from mfh_sim.plots.style import COLOURS

#: Suffixes of the summary's statistic columns (not parameters one can plot against).
_STATISTICS = ("_mean", "_std", "_low", "_high", "_theory")


def gain_axis(result: Any, rows: list[dict], x: str | None = None) -> str:
    """The parameter on the x axis: ``x``, or the first grid keyword that varies ('gamma' if none).

    Raises :class:`ValueError` naming ``x`` and the allowed columns when ``rows`` lack it.
    """
    varied = list(result.grid[0]) if result.grid else []
    x = x or (varied[0] if varied else "gamma")
    if not rows or x not in rows[0]:
        allowed = sorted(k for k in (rows[0] if rows else {}) if not k.endswith(_STATISTICS))
        raise ValueError(f"x={x!r} is not allowed: use one of {allowed}")
    return x


def plot_gain_curve(result: Any, rows: list[dict], x: str | None = None):
    """The KD gain (percentage points, KD - no-KD: mean and 95% interval) against ``x``.

    ``result`` is a :class:`~mfh_sim.results.SweepResult` and ``rows`` its ``table()``; where the
    rows carry the theory's prediction (``delta_theory``) it is drawn dotted in each line's colour.  Points
    that differ in another varied keyword are drawn as separate lines (one line wears the
    palette's KD-gain colour; several take matplotlib's cycle).  Returns the figure.
    """
    x = gain_axis(result, rows, x)
    varied = list(result.grid[0]) if result.grid else []
    others = [k for k in varied if k != x]
    lines: dict[tuple, list[dict]] = {}
    for row in rows:
        lines.setdefault(tuple(row[k] for k in others), []).append(row)
    # A text-valued parameter (kd_loss, model, ...) is drawn at evenly spaced positions.
    levels = sorted({row[x] for row in rows}, key=str)
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in levels)
    position = (lambda v: float(v)) if numeric else (lambda v: float(levels.index(v)))
    figure, axes = plt.subplots(figsize=(5.5, 3.8))
    drawn_theory = False
    for label, members in lines.items():
        members = sorted(members, key=lambda r: position(r[x]))
        xs = np.asarray([position(r[x]) for r in members])
        mean = 100 * np.asarray([r["delta_mean"] for r in members])
        low = 100 * np.asarray([r["delta_low"] for r in members])
        high = 100 * np.asarray([r["delta_high"] for r in members])
        name = ", ".join(f"{k}={v}" for k, v in zip(others, label)) or None
        (line,) = axes.plot(xs, mean, marker="o", label=name, color=COLOURS["delta"] if len(lines) == 1 else None)
        axes.fill_between(xs, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
        theory = 100 * np.asarray([r.get("delta_theory", np.nan) for r in members], dtype=float)
        if np.isfinite(theory).any():
            drawn_theory = True
            axes.plot(xs, theory, linestyle=":", color=line.get_color(), linewidth=1.4)
    axes.axhline(0.0, color="0.5", linewidth=0.8)
    axes.set_xlabel(x)
    if not numeric:
        axes.set_xticks(range(len(levels)), [str(v) for v in levels])
    axes.set_ylabel("KD gain (points): KD - no-KD")
    axes.set_title(f"KD gain, mean and 95% interval over {len(result.seeds)} seeds"
                   + ("; dotted: theory" if drawn_theory else ""))
    if len(lines) > 1:
        axes.legend(fontsize="small")
    figure.tight_layout()
    return figure
