"""The head-to-head figures: KD gain against each predictor with the correlations and their
intervals (one family), and the predictors and claims across family designs (several)."""

from __future__ import annotations

import math

import numpy as np

from mfh_sim.experiments.hypotheses import PREDICTORS, SUBSETS, FamilyReport, HeadToHead


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


#: Cell colours of a claim's status in a family.
STATUS_COLOURS = {"holds": "#9fd49f", "unclear": "#e3e3e3", "reversed": "#f2a7a0", "n/a": "white"}


def plot_families(report: FamilyReport):
    """Left: Spearman's rho of each predictor (rows) with the KD gain in each family (columns);
    a dot marks a cell whose bootstrap 95% interval contains 0.  Right: each claim's statistic
    in each family, coloured by whether the claim holds there (green: interval on the claimed
    side of 0), is unclear (gray: it contains 0) or is reversed (red), with the verdict's count."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    names = list(report.families)
    predictors = list(PREDICTORS)
    rho = np.full((len(predictors), len(names)), np.nan)
    spans_zero = np.zeros_like(rho, bool)
    for column, summary in enumerate(report.families.values()):
        for row, predictor in enumerate(predictors):
            subset = "multi-class" if predictor == "nontarget_kl" else "all"
            score = next((s for s in summary.scores.get(subset, []) if s.predictor == predictor), None)
            if score is not None and math.isfinite(score.spearman):
                rho[row, column] = score.spearman
                spans_zero[row, column] = score.spearman_low <= 0 <= score.spearman_high
    claims = report.claims
    height = max(len(predictors), len(claims)) * 0.42 + 2.2
    figure, (left, right) = plt.subplots(
        1, 2, figsize=(1.05 * len(names) * 2 + 7.5, height),
        gridspec_kw={"width_ratios": (len(names) + 3.2, len(names) + 4.2), "wspace": 0.12})
    left.imshow(np.ma.masked_invalid(rho), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (row, column), value in np.ndenumerate(rho):
        text = "n/a" if math.isnan(value) else f"{value:+.2f}" + (" ·" if spans_zero[row, column] else "")
        left.text(column, row, text, ha="center", va="center", fontsize=7,
                  color="white" if abs(np.nan_to_num(value)) > 0.6 else "black")
    left.set_yticks(range(len(predictors)), [PREDICTORS[p][0] for p in predictors], fontsize=8)
    left.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    left.set_title("Spearman rho with the KD gain\n(· : 95% interval contains 0)", fontsize=9)

    statuses = ["holds", "unclear", "reversed", "n/a"]
    codes = np.array([[statuses.index(result.status(name)) for name in names] for result in claims])
    right.imshow(codes, cmap=ListedColormap([STATUS_COLOURS[s] for s in statuses]), vmin=-0.5, vmax=3.5,
                 aspect="auto")
    for row, result in enumerate(claims):
        for column, name in enumerate(names):
            value = result.values[name][0]
            right.text(column, row, "n/a" if math.isnan(value) else f"{value:+.2f}", ha="center", va="center",
                       fontsize=7)
    right.set_yticks(range(len(claims)), [r.claim.text for r in claims], fontsize=7)
    right.yaxis.tick_right()
    right.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    counts = [f"{sum(r.status(n) == 'holds' for n in names)}/{sum(r.status(n) != 'n/a' for n in names)}"
              for r in claims]
    for row, count in enumerate(counts):
        right.text(-0.6, row, count, ha="right", va="center", fontsize=7, fontweight="bold")
    right.set_title("each claim's statistic per family (green: holds, gray: unclear,\nred: reversed; "
                    "left: families where it holds / where it applies)", fontsize=9)
    figure.suptitle(f"The head-to-head across {len(names)} family designs "
                    f"({', '.join(sorted({f'{s.seeds} seeds' for s in report.families.values()}))} per config; "
                    f"bootstrap over configs, {report.n_boot} resamples)", fontsize=10)
    return figure
