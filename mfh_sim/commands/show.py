"""``mfh-sim show DIR``: the summary table of a results directory, and optionally a plot.

    mfh-sim show results/x                   # the table (accuracies in %)
    mfh-sim show results/x --plot gain.png   # and the KD gain with its 95% interval

Reading a results directory never unpickles anything (see :mod:`mfh_sim.store`).  An unfinished
directory shows the grid points whose every seed is stored and how far the sweep got.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "show",
        help="print the summary table of a results directory (and plot the KD gain)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("directory", help="a results directory written by `mfh-sim sweep` or sweep(out=...)")
    parser.add_argument("--plot", metavar="PATH", default=None,
                        help="save a plot of the KD gain (mean, 95%% interval) against the varied parameter")
    parser.add_argument("--x", default=None, metavar="NAME",
                        help="the parameter on the plot's x axis (default: the first one varied)")
    parser.add_argument("--csv", metavar="PATH", default=None, help="also write the summary as CSV")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mfh_sim.commands.sweep import report_warnings
    from mfh_sim.store import load, open_existing

    store = open_existing(args.directory)
    stored, total = store.progress()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load(args.directory, partial=True)
        table = str(result) if len(result) else ""
        rows = result.summary() if len(result) else []
    report_warnings(caught)
    versions = store.manifest.get("versions", {})
    print(f"{args.directory}: {stored} of {total} runs stored"
          + ("" if stored == total else " (unfinished: re-run the same sweep to finish it)")
          + (f"; computed with jax {versions.get('jax')} on {versions.get('backend')}"
             f" ({versions.get('device')})" if versions else ""))
    if table:
        print(table)
    if args.csv and rows:
        result.to_csv(args.csv)
        print(f"summary written to {args.csv}", file=sys.stderr)
    if args.plot:
        if not rows:
            raise ValueError(f"{args.directory!r} has no finished grid point to plot yet")
        plot_gain(result, rows, args.plot, args.x)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def plot_gain(result, rows: list[dict], path: str, x_name: str | None = None) -> Path:
    """Save the KD gain (percentage points, mean and 95% interval) against one parameter.

    The x axis is ``x_name`` or the first grid keyword that varies (the realised gamma when none
    does); points that differ in other varied keywords are drawn as separate lines.
    """
    from mfh_sim.plots.style import COLOURS, save_figure, use_file_backend

    use_file_backend()
    import matplotlib.pyplot as plt

    varied = list(result.grid[0]) if result.grid else []
    x_name = x_name or (varied[0] if varied else "gamma")
    if x_name not in rows[0]:
        statistics = ("_mean", "_std", "_low", "_high", "_theory")
        allowed = sorted(k for k in rows[0] if not k.endswith(statistics))
        raise ValueError(f"--x {x_name!r} is not allowed: use one of {allowed}")
    others = [k for k in varied if k != x_name]
    lines: dict[tuple, list[dict]] = {}
    for row in rows:
        lines.setdefault(tuple(row[k] for k in others), []).append(row)
    figure, axes = plt.subplots(figsize=(5.5, 3.8))
    for label, members in lines.items():
        members = sorted(members, key=lambda r: r[x_name])
        x = np.asarray([float(r[x_name]) for r in members])
        mean = 100 * np.asarray([r["delta_mean"] for r in members])
        low = 100 * np.asarray([r["delta_low"] for r in members])
        high = 100 * np.asarray([r["delta_high"] for r in members])
        name = ", ".join(f"{k}={v}" for k, v in zip(others, label)) or None
        # One line wears the palette's KD-gain colour; several take matplotlib's cycle.
        (line,) = axes.plot(x, mean, marker="o", label=name, color=COLOURS["delta"] if len(lines) == 1 else None)
        axes.fill_between(x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    axes.axhline(0.0, color="0.5", linewidth=0.8)
    axes.set_xlabel(x_name)
    axes.set_ylabel("KD gain (points): KD - no-KD")
    axes.set_title(f"KD gain, mean and 95% interval over {len(result.seeds)} seeds")
    if len(lines) > 1:
        axes.legend(fontsize="small")
    figure.tight_layout()
    return save_figure(figure, path, dpi=120, close=True)
