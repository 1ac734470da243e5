"""A drawing of a modality Venn diagram: the two modalities' circles, block sizes and ratios."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Circle

from mfh_sim.plots.style import MODALITY_COLOURS
from mfh_sim.venn import VennConfig


def plot_venn(venn: VennConfig, *, ax=None, title: str | None = None):
    """Draw ``venn``: x^a (teacher) and x^b (student) as overlapping circles.

    Each region is labelled with its decisive count (G, A, B) and non-decisive count (Gn, An,
    Bn); decisive latents seen by neither modality (U) and noise channels are written outside;
    gamma, alpha and beta are stated beneath.  Returns the figure.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.4))
    else:
        fig = ax.figure
    colour_a, colour_b = MODALITY_COLOURS["a"], MODALITY_COLOURS["b"]
    ax.add_patch(Circle((-0.55, 0), 1.0, facecolor=colour_a, alpha=0.18, edgecolor=colour_a))
    ax.add_patch(Circle((0.55, 0), 1.0, facecolor=colour_b, alpha=0.18, edgecolor=colour_b))
    text = dict(ha="center", va="center", fontsize=9)
    ax.text(-1.05, 0.08, f"A = {venn.a_only}", **text)
    ax.text(-1.05, -0.22, f"An = {venn.a_nondecisive}", color="0.35", **text)
    ax.text(0.0, 0.08, f"G = {venn.shared}", **text)
    ax.text(0.0, -0.22, f"Gn = {venn.shared_nondecisive}", color="0.35", **text)
    ax.text(1.05, 0.08, f"B = {venn.b_only}", **text)
    ax.text(1.05, -0.22, f"Bn = {venn.b_nondecisive}", color="0.35", **text)
    ax.text(-0.55, 1.15, f"$x^a$ (teacher), {venn.dim_a} channels", color=colour_a, **text)
    ax.text(0.55, -1.17, f"$x^b$ (student), {venn.dim_b} channels", color=colour_b, **text)
    ax.text(1.55, 0.95, f"unseen decisive\nU = {venn.unseen}", **text)
    noise_a = venn.dim_a - venn.channels_used_a
    noise_b = venn.dim_b - venn.channels_used_b
    ax.text(
        0.0, -1.55,
        rf"$\gamma$ = {venn.gamma:.3f}   $\alpha$ = {venn.alpha:.3f}   $\beta$ = {venn.beta:.3f}"
        f"\nnoise channels: {noise_a} in $x^a$, {noise_b} in $x^b$;  grey: non-decisive",
        **text,
    )
    ax.set_xlim(-2.0, 2.1)
    ax.set_ylim(-1.9, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
