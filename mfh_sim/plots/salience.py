"""Algorithm 1's salience per channel as bars, the truly shared channels marked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mfh_sim.plots.style import OTHER_COLOUR, SHARED_COLOUR, SPECIFIC_COLOUR


def _indices(name: str, marks, panels: int, single: bool) -> list[np.ndarray]:
    if marks is None:
        return [np.zeros(0, np.int64)] * panels
    if single:
        marks = [marks]
    out = [np.asarray(m if m is not None else [], dtype=np.int64).ravel() for m in marks]
    if len(out) != panels:
        raise ValueError(f"{name} has {len(out)} entries for {panels} salience panels: give one per panel")
    return out


def _panels(salience, shared, specific):
    """Normalise the inputs to one (seeds, channels) array and index arrays per panel."""
    single = isinstance(salience, np.ndarray) and salience.ndim <= 2
    if single:
        salience = [salience]
    values = [np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in salience]
    shared = _indices("shared", shared, len(values), single)
    specific = _indices("specific", specific, len(values), single)
    for panel, value in enumerate(values):
        if value.ndim != 2:
            raise ValueError(
                f"salience panel {panel} has shape {value.shape}: give (channels,) or (seeds, channels)"
            )
        for name, marks in (("shared", shared[panel]), ("specific", specific[panel])):
            if marks.size and (marks.min() < 0 or marks.max() >= value.shape[1]):
                raise ValueError(
                    f"{name} channels of panel {panel} must lie in [0, {value.shape[1]}), "
                    f"got {marks.tolist()}"
                )
    return values, shared, specific


def plot_salience(
    salience: np.ndarray | Sequence[np.ndarray],
    shared: Sequence[int] | Sequence[Sequence[int]] | None,
    *,
    specific: Sequence[int] | Sequence[Sequence[int]] | None = None,
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
        specific: optionally, indices of the modality-specific decisive channels, marked in a
            third colour (same layout as ``shared``).
        titles: one title per panel.  modality: the modality whose channels are scored (label).
    Returns the matplotlib figure (never shown).  Raises :class:`ValueError` when the marks do
    not match the panels or lie outside the channels.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    values, shared, specific = _panels(salience, shared, specific)
    if titles is not None and len(titles) != len(values):
        raise ValueError(f"titles has {len(titles)} entries for {len(values)} panels")
    figure, axes = plt.subplots(len(values), 1, figsize=(8, 1.9 * len(values) + 0.6), squeeze=False)
    for panel, (ax, value) in enumerate(zip(axes[:, 0], values)):
        channels = np.arange(value.shape[1])
        finite = np.where(np.isfinite(value), value, np.nan)
        mean = np.nanmean(finite, axis=0) if np.isfinite(finite).any() else np.zeros(value.shape[1])
        spread = np.nanstd(finite, axis=0) if value.shape[0] > 1 else None
        colours = np.full(channels.size, OTHER_COLOUR, dtype=object)
        colours[specific[panel]] = SPECIFIC_COLOUR
        colours[shared[panel]] = SHARED_COLOUR
        ax.bar(channels, mean, color=list(colours), width=0.8,
               yerr=spread, error_kw={"elinewidth": 0.6, "capsize": 0, "ecolor": "black"})
        ax.set_xlim(-0.8, channels.size - 0.2)
        ax.set_ylim(bottom=0.0)
        ax.set_ylabel("salience")
        if titles is not None:
            ax.set_title(titles[panel], fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1, 0].set_xlabel(f"channel of $x^{modality}$")
    handles = [Patch(color=SHARED_COLOUR, label="shared decisive (modality-general)")]
    if any(marks.size for marks in specific):
        handles.append(Patch(color=SPECIFIC_COLOUR, label="modality-specific decisive"))
    handles.append(Patch(color=OTHER_COLOUR, label="other channel"))
    axes[0, 0].legend(
        handles=handles,
        fontsize=8, frameon=False, loc="upper right",
    )
    figure.tight_layout()
    return figure
