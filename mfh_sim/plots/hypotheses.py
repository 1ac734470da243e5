"""The head-to-head figure: KD gain against each predictor, and the correlations with intervals."""

from __future__ import annotations

import math

import numpy as np

from mfh_sim.experiments.hypotheses import PREDICTORS, SUBSETS, HeadToHead


def plot_head_to_head(result: HeadToHead):
    """Top: the KD gain (points, mean over seeds) of every config against each available predictor,
    two-class and multi-class configs marked apart.  Bottom: Spearman's rho of each predictor
    with the gain and its bootstrap 95% interval, per subset of the family."""
    import matplotlib.pyplot as plt

    available = [name for name, values in result.predictors.items() if np.isfinite(values).any()]
    columns = max(len(available), 1)
    figure = plt.figure(figsize=(2.4 * columns, 6.4))
    grid = figure.add_gridspec(2, columns, height_ratios=(1, 1.1), hspace=0.55, wspace=0.35)
    multi = result.multiclass
    gain = 100 * result.gain
    for column, name in enumerate(available):
        axis = figure.add_subplot(grid[0, column])
        values = result.predictors[name]
        finite = values[np.isfinite(values)]
        if np.isposinf(values).any() and finite.size:
            # +inf (complementarity where both modalities see the same decisive latents) is drawn
            # at the right edge.
            edge = finite.max() + 0.15 * (np.ptp(finite) or 1.0)
            values = np.where(np.isposinf(values), edge, values)
        for mask, marker, color, label in ((~multi, "o", "C0", "2 classes"),
                                           (multi, "^", "C1", f"{result.spec.n_classes} classes")):
            keep = mask & np.isfinite(values)
            if keep.any():
                axis.scatter(values[keep], gain[keep], s=9, marker=marker, color=color, alpha=0.6, label=label)
        axis.axhline(0.0, color="0.5", lw=0.8)
        label = PREDICTORS.get(name, (name, 0))[0]
        if np.isposinf(result.predictors[name]).any():
            label += "\n(+inf at right edge)"
        axis.set_xlabel(label, fontsize=8)
        if column == 0:
            axis.set_ylabel("KD gain (points)")
            axis.legend(fontsize=7, loc="best")
        axis.tick_params(labelsize=7)

    axis = figure.add_subplot(grid[1, :])
    names = [name for name in PREDICTORS if any(
        s.predictor == name and math.isfinite(s.spearman) for scores in result.scores.values() for s in scores)]
    subsets = [s for s in SUBSETS if s in result.scores]
    width = 0.8 / max(len(subsets), 1)
    for offset, subset in enumerate(subsets):
        by_name = {s.predictor: s for s in result.scores[subset]}
        xs, rho, low, high = [], [], [], []
        for index, name in enumerate(names):
            score = by_name.get(name)
            if score is None or not math.isfinite(score.spearman):
                continue
            xs.append(index - 0.4 + width * (offset + 0.5))
            rho.append(score.spearman)
            low.append(score.spearman - score.spearman_low)
            high.append(score.spearman_high - score.spearman)
        axis.errorbar(xs, rho, yerr=[low, high], fmt="o", capsize=3, label=f"{subset} configs")
    axis.axhline(0.0, color="0.5", lw=0.8)
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels([PREDICTORS[n][0] for n in names], fontsize=8, rotation=12)
    axis.set_ylabel("Spearman rho with KD gain")
    axis.set_ylim(-1.05, 1.05)
    axis.legend(fontsize=8, ncol=len(subsets))
    axis.set_title(f"{len(result.configs)} Venn configs x {len(result.seeds)} seeds; bars: bootstrap 95% intervals",
                   fontsize=9)
    return figure
