"""``mfh-sim show DIR``: the summary table of a results directory, and optionally a plot.

    mfh-sim show results/x                   # the table (accuracies in %, the theory beside them)
    mfh-sim show results/x --plot gain.png   # and the KD gain with its 95% interval and the theory

Reading a results directory never unpickles anything (see :mod:`mfh_sim.store`).  An unfinished
directory shows the grid points whose every seed is stored and how far the sweep got.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from mfh_sim.commands import UsageError, user_input, writable_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "show",
        help="print the summary table of a results directory (and plot the KD gain)",
        description="Print the summary table of a results directory (accuracies in %, the theory's prediction "
                    "beside them) and, with --plot, draw the KD gain against a varied parameter.",
    )
    parser.add_argument("directory", help="a results directory written by `mfh-sim sweep` or sweep(out=...)")
    parser.add_argument("--plot", metavar="PATH", default=None,
                        help="save a plot of the KD gain (mean, 95%% interval; the theory's prediction dotted) "
                             "against the varied parameter")
    parser.add_argument("--x", default=None, metavar="NAME",
                        help="the parameter on the plot's x axis (default: the first one varied)")
    parser.add_argument("--csv", metavar="PATH", default=None, help="also write the summary as CSV")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mfh_sim.commands.sweep import report_warnings
    from mfh_sim.results import SweepResult, from_store

    if args.x is not None and not args.plot:
        raise UsageError(f"--x {args.x!r} picks the x axis of the plot: give --plot PATH too")
    store = open_results(args.directory)
    if args.csv:
        writable_file(args.csv, "--csv")
    if args.plot:
        from mfh_sim.plots.style import FORMATS

        writable_file(args.plot, "--plot", FORMATS)
    stored, total = store.progress()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = from_store(store, partial=True)
        table = str(result) if len(result) else ""
        # A Table 2 directory prints its table; only a sweep has per-point summary rows to plot.
        sweep = isinstance(result, SweepResult)
        rows = result.table() if sweep and len(result) else []
    report_warnings(caught)
    x_name = None
    if args.plot:  # everything about the plot is checked before any file is written
        if not sweep:
            raise UsageError(f"--plot draws a sweep's KD gain; {args.directory!r} holds Table 2 results")
        if not rows:
            raise UsageError(f"--plot: {args.directory!r} has no finished grid point to plot yet")
        from mfh_sim.plots.gain import gain_axis

        with user_input("--x"):
            x_name = gain_axis(result, rows, args.x)
    versions = store.manifest.get("versions", {})
    print(f"{args.directory}: {stored} of {total} runs stored"
          + ("" if stored == total else " (unfinished: re-run the same sweep to finish it)")
          + (f"; computed with jax {versions.get('jax')} on {versions.get('backend')}"
             f" ({versions.get('device')})" if versions else ""))
    if table:
        print(table)
    if args.csv and table:
        result.to_csv(args.csv)
        print(f"summary written to {args.csv}", file=sys.stderr)
    if args.plot:
        plot_gain(result, rows, args.plot, x_name)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def open_results(text: str):
    """The results directory ``text`` opened for reading, or a one-line :class:`UsageError`."""
    path = Path(text)
    if not path.exists():
        raise UsageError(f"directory {text!r} does not exist: give a results directory written by "
                         "`mfh-sim sweep` or sweep(out=...)")
    if not path.is_dir():
        raise UsageError(f"directory {text!r} is a file, not a results directory (a folder holding a manifest.json)")
    from mfh_sim.store import open_existing

    with user_input("directory"):
        return open_existing(path)


def plot_gain(result, rows: list[dict], path: str, x_name: str | None = None) -> Path:
    """Save the KD gain (percentage points, mean and 95% interval) against one parameter.

    The figure is :func:`mfh_sim.plots.gain.plot_gain_curve`; the x axis is ``x_name`` (the
    ``--x`` option) or the first grid keyword that varies.
    """
    from mfh_sim.plots.style import save_figure, use_file_backend

    use_file_backend()
    from mfh_sim.plots.gain import gain_axis, plot_gain_curve

    try:
        x_name = gain_axis(result, rows, x_name)
    except ValueError as error:
        raise ValueError(f"--x: {error}") from None
    return save_figure(plot_gain_curve(result, rows, x_name), path, dpi=120, close=True)
