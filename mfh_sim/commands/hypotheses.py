"""``mfh-sim hypotheses``: the head-to-head of the hypotheses on a random family of Venn configs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mfh_sim.commands import finite_number, integer, user_input, writable_folder

#: The options of the family's fields (:class:`mfh_sim.experiments.families.FamilySpec`), so that a
#: refusal of ``n_configs=3`` names ``--configs``.
FAMILY_OPTIONS = {
    "n_configs": "--configs", "multiclass_share": "--multiclass-share", "n_train_values": "--n-train",
    "steps": "--steps", "seed": "--family-seed", "n_test": "--n-test", "n_visible": "--n-visible",
    "max_unseen": "--max-unseen", "max_nondecisive": "--max-nondecisive", "dim": "--dim",
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "hypotheses",
        help="which hypothesis predicts the KD gain best (MFH's gamma, teacher accuracy, ...)",
        description=(
            "Simulate a random family of modality Venn diagrams and rank the candidate "
            "predictors of the KD gain (gamma, teacher accuracy, alpha, beta, complementarity, "
            "non-target divergence) by Spearman correlation with bootstrap intervals and by "
            "cross-fitted sign agreement.  Writes hypotheses.json, hypotheses.txt and "
            "hypotheses.png to --out."
        ),
    )
    parser.add_argument("--configs", type=integer(), default=240, help="configs in the family (>= 10; default 240)")
    parser.add_argument("--seeds", type=integer(2), default=100, help="seeds per config (>= 2; default 100)")
    parser.add_argument("--multiclass-share", type=finite_number, default=0.2,
                        help="fraction of three-class configs in [0, 1] (default 0.2)")
    parser.add_argument("--n-train", type=integer(), nargs="+", default=[50, 100, 200],
                        help="training sizes drawn per config, each >= 2 (default 50 100 200)")
    parser.add_argument("--steps", type=integer(), default=1000, help="SGD steps per training (default 1000)")
    parser.add_argument("--n-test", type=integer(), default=500, help="test samples (default 500)")
    parser.add_argument("--n-visible", type=integer(), default=16, help="visible decisive latents (default 16)")
    parser.add_argument("--max-unseen", type=integer(), default=16, help="most unseen decisive latents (default 16)")
    parser.add_argument("--max-nondecisive", type=integer(), default=6,
                        help="largest non-decisive block (default 6)")
    parser.add_argument("--dim", type=integer(), default=32, help="channels of each modality (default 32)")
    parser.add_argument("--family-seed", type=integer(0), default=0, help="seed of the family's draw (default 0)")
    parser.add_argument("--root-seed", type=integer(0, 2**32 - 1), default=0,
                        help="root seed of the simulations, in [0, 2**32) (default 0)")
    parser.add_argument("--bootstrap", type=integer(10), default=2000, help="bootstrap resamples (>= 10; default 2000)")
    parser.add_argument("--workers", type=integer(1), default=None, help="threads (default: one per core)")
    parser.add_argument("--chunk-size", type=integer(1), default=None,
                        help="runs per vmapped chunk (default: 8 on a CPU)")
    parser.add_argument("--out", type=Path, default=Path("results/hypotheses"), help="output folder")
    parser.add_argument("--no-figure", action="store_true", help="skip the figure")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mfh_sim.experiments.hypotheses import FamilySpec, run_head_to_head

    # Everything is checked before the family is simulated: a mistake leaves no folder behind.
    with user_input(names=FAMILY_OPTIONS):
        spec = FamilySpec(
            n_configs=args.configs, multiclass_share=args.multiclass_share,
            n_train_values=tuple(args.n_train), steps=args.steps, seed=args.family_seed,
            n_test=args.n_test, n_visible=args.n_visible, max_unseen=args.max_unseen,
            max_nondecisive=args.max_nondecisive, dim=args.dim,
        )
    writable_folder(args.out, "--out")
    result = run_head_to_head(spec, seeds=args.seeds, root_seed=args.root_seed, n_boot=args.bootstrap,
                              workers=args.workers, chunk_size=args.chunk_size, progress=not args.quiet)
    path = result.save(args.out)
    print(result.table())
    print(f"\n{len(result.configs)} configs x {len(result.seeds)} seeds in {result.wall_seconds:.1f} s; "
          f"written to {path}")
    if not args.no_figure:
        from mfh_sim.plots.hypotheses import plot_head_to_head
        from mfh_sim.plots.style import save_figure, use_file_backend

        use_file_backend()
        save_figure(plot_head_to_head(result), args.out / "hypotheses.png", dpi=130, tight=True, close=True)
        print(f"figure: {args.out / 'hypotheses.png'}")
    return 0
