"""``mfh-sim real``: does the hypothesis predict crossmodal KD on real paired data?"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mfh_sim.commands import UsageError, finite_number, integer, user_input, writable_folder

SOURCE_CHOICES = ("multifeature", "nutrimouse", "mnist", "basicmotions", "semi_synthetic")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "real",
        help="KD arms on real paired data: measure the gain, estimate the Venn diagram, score the predictors",
        description=(
            "Run every KD arm (transfer-set KD at label budgets 20/50/100, teachers on the "
            "modality-general and -specific parts of their view, same-sample KD, semi-synthetic "
            "views of known overlap) on real paired data: the UCI Multiple Features digits (binary "
            "pairs and 10 classes), MNIST halves, nutrimouse, BasicMotions, or your own arrays.  "
            "Gains carry corrected resampled t intervals; the Venn diagram comes from estimator v2; "
            "the predictors are scored with cluster-bootstrap intervals.  Writes real_kd.csv, "
            "real_kd.png, real_summary.md, real_scores.json and estimator_validation.csv to --out "
            "(resumable: the runs are stored under --out)."
        ),
    )
    parser.add_argument("--sources", nargs="+", default=None, choices=SOURCE_CHOICES, metavar="SOURCE",
                        help=f"data sources (default all: {' '.join(SOURCE_CHOICES)})")
    parser.add_argument("--tasks", nargs="+", default=None,
                        help="Multiple Features digit pairs such as 6v9 3v5 (default 6v9 3v5 1v7 4v9 2v7 0v8)")
    parser.add_argument("--views", nargs="+", default=None,
                        help="Multiple Features views (default all six: fourier profile karhunen pixel zernike morph)")
    parser.add_argument("--data", type=Path, default=None,
                        help="your own paired data: an .npz holding x_a, x_b, y instead of the sources")
    parser.add_argument("--splits", type=integer(2), default=10, help="random splits per point (>= 2; default 10)")
    parser.add_argument("--n-teacher", type=integer(2), default=None,
                        help="the teacher's labelled samples (default a quarter of each task, at most 500)")
    parser.add_argument("--steps", type=integer(1), default=1000, help="GD steps per training (default 1000)")
    parser.add_argument("--kd-weight", type=finite_number, default=1.0, help="KD term's weight >= 0 (default 1)")
    parser.add_argument("--temperature", type=finite_number, default=1.0,
                        help="KD temperature T > 0 (default 1)")
    parser.add_argument("--validate", type=integer(0), default=200,
                        help="simulated diagrams to validate the estimator on first (0: skip, else >= 3; default 200)")
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


def build_tasks(args: argparse.Namespace) -> list:
    """The tasks and their points' view pairs, checked: [(task, pairs or None for all)]."""
    from mfh_sim.real import sources

    if args.data is not None:
        if args.tasks or args.views or args.sources:
            raise UsageError("--data is not allowed with --tasks, --views or --sources: they choose among the sources")
        with user_input("--data"):
            task = sources.user_task(args.data, name=args.data.stem)
        return [(task, [("a", "b"), ("b", "a")])]
    chosen = args.sources or list(SOURCE_CHOICES)
    out = []
    if "multifeature" in chosen:
        pairs = _parse_tasks(args.tasks) if args.tasks else sources.DEFAULT_TASKS
        with user_input(names={"views": "--views", "tasks": "--tasks"}):
            digits = sources.digit_tasks(pairs, args.views, multiclass=True)
        few = [v for v in sources.MULTICLASS_VIEWS if v in digits[-1].views]
        few = few if len(few) >= 2 else list(digits[-1].views)
        out += [(t, None) for t in digits[:-1]] + [(digits[-1], [(a, b) for a in few for b in few if a != b])]
    elif args.tasks or args.views:
        raise UsageError("--tasks and --views are not allowed without the multifeature source")
    if "mnist" in chosen:
        out += [(t, None) for t in sources.mnist_tasks()]
    if "nutrimouse" in chosen:
        out += [(sources.nutrimouse_task(), None)]
    if "basicmotions" in chosen:
        out += [(sources.basicmotions_task(), None)]
    if "semi_synthetic" in chosen:
        out += [(t, [("a", "b")]) for t in sources.semi_synthetic_tasks()]
    return out


def run(args: argparse.Namespace) -> int:
    from mfh_sim.plots.real import plot_real_check
    from mfh_sim.plots.style import save_figure, use_file_backend
    from mfh_sim.real import arms, report, validation

    # Every input is checked before anything is computed or written (one line, exit 2).
    if args.validate in (1, 2):
        raise UsageError(f"--validate: {args.validate} is not allowed: 0 (skip) or >= 3 diagrams")
    out = writable_folder(args.out, "--out")
    with user_input(names={"n_teacher": "--n-teacher"}):
        tasks = build_tasks(args)
    points = []
    with user_input(names={"n_teacher": "--n-teacher", "steps": "--steps", "pairs": "--views",
                           "kd_weight": "--kd-weight", "temperature": "--temperature"}):
        for task, pairs in tasks:
            points += arms.make_points([task], pairs=pairs, n_teacher=args.n_teacher, steps=args.steps,
                                       kd_weight=args.kd_weight, temperature=args.temperature)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    summary = []
    if args.validate:
        check = validation.validate(args.validate, seed=args.root_seed)
        table = check.table()
        print(table + "\n")
        summary += ["## Estimator v2 on simulated diagrams of known truth", "", table, ""]
        check.write_csv(out / "estimator_validation.csv")
    result = report.check([t for t, _ in tasks], points, args.splits, root_seed=args.root_seed, out=out / "runs",
                          workers=args.workers, progress=not args.quiet)
    result.write_csv(out / "real_kd.csv")
    table = result.table()
    print(table)
    elapsed = time.perf_counter() - start
    summary += ["## KD on real data: gains and predictors, per arm", "", table, "",
                f"Wall time {elapsed:.0f} s for this invocation (runs {result.seconds['runs']:.0f} s, "
                f"estimator and theory {result.seconds['estimate_and_theory']:.0f} s; runs already stored "
                f"under --out are read back, not recomputed)."]
    (out / "real_summary.md").write_text("\n".join(summary) + "\n")
    (out / "real_scores.json").write_text(json.dumps(result.scores, indent=1))
    use_file_backend()
    save_figure(plot_real_check(result.rows), out / "real_kd.png", dpi=130, tight=True, close=True)
    print(f"\n{len(result.rows)} rows x {args.splits} splits; {elapsed:.0f} s; written to {out}")
    return 0
