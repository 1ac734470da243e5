"""Algorithm 1's salience per channel as bars, the truly shared channels marked."""

from __future__ import annotations

from typing import Sequence

import numpy as np

SHARED_COLOR = "tab:orange"
OTHER_COLOR = "tab:gray"


def _panels(salience, shared) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Normalise the inputs to one (seeds, channels) array and one index array per panel."""
    if isinstance(salience, np.ndarray) and salience.ndim <= 2:
        salience, shared = [salience], [shared]
    values = [np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in salience]
    marks = [np.asarray(s if s is not None else [], dtype=np.int64).ravel() for s in shared]
    if len(values) != len(marks):
        raise ValueError(
            f"shared has {len(marks)} entries for {len(values)} salience panels: give one per panel"
        )
    for panel, (value, mark) in enumerate(zip(values, marks)):
        if value.ndim != 2:
            raise ValueError(
                f"salience panel {panel} has shape {value.shape}: give (channels,) or (seeds, channels)"
            )
        if mark.size and (mark.min() < 0 or mark.max() >= value.shape[1]):
            raise ValueError(
                f"shared channels of panel {panel} must lie in [0, {value.shape[1]}), got {mark.tolist()}"
            )
    return values, marks


def plot_salience(
    salience: np.ndarray | Sequence[np.ndarray],
    shared: Sequence[int] | Sequence[Sequence[int]] | None,
    *,
    titles: Sequence[str] | None = None,
    modality: str = "a",
):
    """Bars of salience (in [0, 1]) per channel, truly shared channels in a different colour.

    Args:
        salience: one panel as (channels,) or (seeds, channels), or a sequence of such arrays
            for several panels (one above the other).  Several seeds give the mean as the bar
            and +-1 standard deviation as a whisker.
        shared: indices of the truly shared channels, or one such sequence per panel (None or
            empty: nothing marked).
        titles: one title per panel.  modality: the modality whose channels are scored (label).
    Returns the matplotlib figure (never shown).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    values, marks = _panels(salience, shared)
    if titles is not None and len(titles) != len(values):
        raise ValueError(f"titles has {len(titles)} entries for {len(values)} panels")
    figure, axes = plt.subplots(
        len(values), 1, figsize=(8, 1.9 * len(values) + 0.6), sharex=False, squeeze=False
    )
    for panel, (ax, value, mark) in enumerate(zip(axes[:, 0], values, marks)):
        channels = np.arange(value.shape[1])
        finite = np.where(np.isfinite(value), value, np.nan)
        mean = np.nanmean(finite, axis=0) if np.isfinite(finite).any() else np.zeros(value.shape[1])
        spread = np.nanstd(finite, axis=0) if value.shape[0] > 1 else None
        colours = np.full(channels.size, OTHER_COLOR, dtype=object)
        colours[mark] = SHARED_COLOR
        ax.bar(channels, mean, color=list(colours), width=0.8,
               yerr=spread, error_kw={"elinewidth": 0.6, "capsize": 0, "ecolor": "black"})
        ax.set_xlim(-0.8, channels.size - 0.2)
        ax.set_ylim(0.0, 1.05 if mean.size == 0 or np.nanmax(mean + (spread if spread is not None else 0)) <= 1.05 else None)
        ax.set_ylabel("salience")
        if titles is not None:
            ax.set_title(titles[panel], fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1, 0].set_xlabel(f"channel of $x^{modality}$")
    axes[0, 0].legend(
        handles=[Patch(color=SHARED_COLOR, label="shared (modality-general) channel"),
                 Patch(color=OTHER_COLOR, label="other channel")],
        fontsize=8, frameon=False, loc="upper right",
    )
    figure.tight_layout()
    return figure
