"""``mfh-sim real``: does the hypothesis predict crossmodal KD on real paired data?"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mfh_sim.commands import UsageError, integer, user_input, writable_folder


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "real",
        help="estimate real paired data's Venn diagram, predict the KD gain, then measure it",
        description=(
            "Validate the Venn-diagram estimator on simulated data of known truth, then, for every "
            "ordered pair of views and every binary task of the UCI Multiple Features digits (or "
            "your own paired arrays), estimate gamma/alpha/beta from linear probes, predict the KD "
            "gain with the theory, and measure it over random splits.  Writes real_kd.csv, "
            "real_kd.png, real_summary.md and estimator_validation.csv to --out (resumable: the "
            "runs are stored under --out)."
        ),
    )
    parser.add_argument("--tasks", nargs="+", default=None,
                        help="digit pairs such as 6v9 3v5 (default 6v9 3v5 1v7)")
    parser.add_argument("--views", nargs="+", default=None,
                        help="Multiple Features views (default all six: fourier profile karhunen pixel zernike morph)")
    parser.add_argument("--data", type=Path, default=None,
                        help="your own paired data: an .npz holding x_a, x_b, y (two classes) instead of the digits")
    parser.add_argument("--splits", type=integer(2), default=100, help="random splits per point (>= 2; default 100)")
    parser.add_argument("--n-train", type=integer(4), default=100, help="training samples per split (default 100)")
    parser.add_argument("--folds", type=integer(2), default=2, help="cross-validation folds of the probes (default 2)")
    parser.add_argument("--steps", type=integer(1), default=1000, help="GD steps per training (default 1000)")
    parser.add_argument("--validate", type=integer(0), default=24,
                        help="simulated diagrams to validate the estimator on first (0: skip, else >= 3; default 24)")
    parser.add_argument("--root-seed", type=integer(0, 2**32 - 1), default=0, help="root seed (default 0)")
    parser.add_argument("--workers", type=integer(1), default=None, help="threads (default: one per core)")
    parser.add_argument("--out", type=Path, default=Path("results/real"), help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _parse_tasks(words):
    pairs = []
    for word in words:
        parts = word.lower().split("v")
        if len(parts) != 2 or not all(p.isdigit() and len(p) == 1 for p in parts) or parts[0] == parts[1]:
            raise UsageError(f"--tasks {word!r} is not allowed: write a digit pair such as 6v9")
        pairs.append((int(parts[0]), int(parts[1])))
    return pairs


def run(args: argparse.Namespace) -> int:
    from mfh_sim import real
    from mfh_sim.plots.real import plot_real_check
    from mfh_sim.plots.style import save_figure, use_file_backend

    # Every input is checked before anything is computed or written (one line, exit 2).
    if args.validate in (1, 2):
        raise UsageError(f"--validate: {args.validate} is not allowed: 0 (skip) or >= 3 diagrams")
    out = writable_folder(args.out, "--out")
    if args.data is not None:
        if args.tasks or args.views:
            raise UsageError("--data is not allowed with --tasks or --views: they choose among the digits")
        with user_input("--data"):
            x_a, x_b, y = real.load_paired(args.data)
            x_a, x_b, y = real.check_paired(x_a, x_b, y, args.n_train, args.folds)
        tasks = [real.Task(args.data.stem, {"a": x_a, "b": x_b}, y)]
        pairs = [("a", "b"), ("b", "a")]
    else:
        pairs_wanted = _parse_tasks(args.tasks) if args.tasks else real.DEFAULT_TASKS
        with user_input(names={"views": "--views", "tasks": "--tasks", "task": "--tasks", "n_train": "--n-train"}):
            tasks = real.digit_tasks(pairs_wanted, args.views)
        pairs = None
    with user_input(names={"n_train": "--n-train", "folds": "--folds", "steps": "--steps", "pairs": "--views"}):
        points = real.make_points(tasks, args.n_train, pairs=pairs, steps=args.steps, folds=args.folds)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    summary = []
    if args.validate:
        validation = real.validate(args.validate, args.splits, n_train=args.n_train, seed=args.root_seed,
                                   out=out / "validation_runs", workers=args.workers, progress=not args.quiet)
        table = validation.table()
        print(table + "\n")
        summary += ["## The estimator on simulated data", "", table, ""]
        with (out / "estimator_validation.csv").open("w") as handle:
            keys = ("gamma", "alpha", "beta", "p_g", "p_a", "p_b", "p_u")
            handle.write(",".join([f"true_{k}" for k in keys] + [f"est_{k}" for k in keys]
                                  + ["predicted_gain", "real_gain"]) + "\n")
            for i in range(len(validation.truth["gamma"])):
                est = [validation.rows[f"{k}_hat" if k in ("gamma", "alpha", "beta") else k][i] for k in keys]
                values = [validation.truth[k][i] for k in keys] + est + [
                    validation.rows["predicted_gain"][i], validation.rows["real_gain"][i]]
                handle.write(",".join(f"{float(v):.6g}" for v in values) + "\n")
    result = real.check(points, args.splits, root_seed=args.root_seed, out=out / "runs",
                        workers=args.workers, progress=not args.quiet)
    result.write_csv(out / "real_kd.csv")
    table = result.table()
    print(table)
    elapsed = time.perf_counter() - start
    summary += ["## Predicting the KD gain on real data", "", table, "",
                f"Wall time {elapsed:.0f} s for this invocation (real-data runs {result.seconds['runs']:.0f} s, "
                f"estimator and theory {result.seconds['estimate_and_theory']:.0f} s; runs already stored "
                f"under --out are read back, not recomputed)."]
    (out / "real_summary.md").write_text("\n".join(summary) + "\n")
    (out / "real_scores.json").write_text(json.dumps(result.scores, indent=1))
    use_file_backend()
    save_figure(plot_real_check(result.rows), out / "real_kd.png", dpi=130, tight=True, close=True)
    print(f"\n{len(result.rows['task'])} rows x {args.splits} splits; {elapsed:.0f} s; written to {out}")
    return 0
