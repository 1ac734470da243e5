"""``mfh-sim reproduce``: regenerate the paper's figures and tables into a folder (default figures/)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from mfh_sim import experiments
from mfh_sim.general_teacher import write_table2
from mfh_sim.plots import plot_curves, plot_venn


def _save(fig, out: Path, stem: str) -> list[Path]:
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def _fig2(out: Path, seeds: int, progress: bool) -> list[Path]:
    result = experiments.fig2(seeds=seeds, progress=progress)
    fig = plot_curves(result, "gamma", paper=experiments.PAPER_FIG2,
                      title=f"Fig. 2: increase $\\gamma$ ({seeds} seeds; band ±1 std)")
    venn = plot_venn(result.configs[2].venn, title="Fig. 2 geometry at overlap o = 4")
    return _save(fig, out, "fig2") + _save(venn, out, "fig2_venn") + [result.to_csv(out / "fig2.csv")]


def _fig3(out: Path, seeds: int, progress: bool) -> list[Path]:
    result = experiments.fig3(seeds=seeds, progress=progress)
    fig = plot_curves(result, "alpha", paper=experiments.PAPER_FIG3,
                      title=f"Fig. 3: increase $\\alpha$ ({seeds} seeds; band ±1 std)")
    venn = plot_venn(result.configs[2].venn, title="Fig. 3 geometry at s = 20")
    return _save(fig, out, "fig3") + _save(venn, out, "fig3_venn") + [result.to_csv(out / "fig3.csv")]


def _table2(out: Path, seeds: int, progress: bool) -> list[Path]:
    return write_table2(out, seeds=seeds, progress=progress)


#: name -> producer(out_dir, seeds, progress) -> written paths, in the order they run.
PRODUCERS: dict[str, Callable[[Path, int, bool], list[Path]]] = {
    "fig2": _fig2,
    "fig3": _fig3,
    "table2": _table2,
}


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(PRODUCERS)
    for name in names:
        if name not in PRODUCERS:
            raise ValueError(f"--only {name!r} is not allowed: use one of {sorted(PRODUCERS)}")
    if args.seeds < 2:
        raise ValueError(f"--seeds {args.seeds} is not allowed: it must be >= 2")
    for name in names:
        start = time.perf_counter()
        if not args.quiet:
            print(f"[{name}] running ({args.seeds} seeds)...", flush=True)
        paths = PRODUCERS[name](out, args.seeds, not args.quiet)
        if not args.quiet:
            print(f"[{name}] wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - start:.1f} s",
                  flush=True)
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "reproduce", help="regenerate the paper's figures and tables (PNG, PDF, CSV) into a folder"
    )
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    parser.add_argument("--seeds", type=int, default=200, help="seeds per grid point (default: 200)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"produce only this item (repeatable): {', '.join(PRODUCERS)}")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)
