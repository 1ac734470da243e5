"""``mfh-sim hypotheses``: the head-to-head of the hypotheses on random families of Venn configs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mfh_sim.commands import UsageError, finite_number, integer, one_line, user_input, writable_folder

#: The options of the families' fields (:class:`mfh_sim.experiments.families.FamilySpec`), so that a
#: refusal of ``n_configs=3`` names ``--configs``.
FAMILY_OPTIONS = {
    "n_configs": "--configs", "multiclass_share": "--multiclass-share", "n_train_values": "--n-train",
    "steps": "--steps", "seed": "--family-seed", "n_test": "--n-test", "n_visible": "--n-visible",
    "max_unseen": "--max-unseen", "max_nondecisive": "--max-nondecisive", "dim": "--dim",
}
#: The names of the family designs (:data:`mfh_sim.experiments.families.FAMILIES`), listed here so
#: that ``--help`` loads neither numpy's heavy parts nor JAX; tests/test_hypotheses.py keeps them equal.
FAMILY_NAMES = ("gamma-split", "uniform-counts", "gamma-alpha", "gamma-beta", "alpha-beta", "wide-n-train",
                "no-unseen", "varied-shapes")
#: The report of several families: STEM.{txt,json,png,pdf} in --out.
REPORT_STEM = "hypotheses_families"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "hypotheses",
        help="which hypothesis predicts the KD gain best (MFH's gamma, teacher accuracy, ...), per family",
        description=(
            "Simulate a random family of modality Venn diagrams and rank the candidate "
            "predictors of the KD gain (gamma, teacher accuracy, alpha, beta, complementarity, "
            "the theory's predicted gain, non-target divergence) by Spearman correlation with "
            "bootstrap intervals and by cross-fitted sign agreement.  One family writes "
            "hypotheses.json, hypotheses.txt and hypotheses.png to --out; several (--family "
            "repeated, or --family all) run one after the other into --out/NAME and add a "
            f"robustness report, {REPORT_STEM}.txt/.json/.png/.pdf, which judges each claim in "
            "every family.  Simulations go through a results store (--out/runs, or "
            "--out/NAME/runs): a rerun of the same command resumes."
        ),
    )
    parser.add_argument("--family", action="append", metavar="NAME", choices=(*FAMILY_NAMES, "all"),
                        help="family design (repeatable; 'all' for every one): " + ", ".join(FAMILY_NAMES)
                        + " (default gamma-split; mfh_sim.experiments.families.FAMILIES says what each draws)")
    parser.add_argument("--configs", type=integer(), default=None,
                        help="configs in each family (>= 10; default 240)")
    parser.add_argument("--seeds", type=integer(2), default=100, help="seeds per config (>= 2; default 100)")
    parser.add_argument("--multiclass-share", type=finite_number, default=None,
                        help="fraction of three-class configs in [0, 1] (default 0.2)")
    parser.add_argument("--n-train", type=integer(), nargs="+", default=None,
                        help="training sizes drawn per config, each >= 2 (default: the design's, 50 100 200 for "
                             "most)")
    parser.add_argument("--steps", type=integer(), default=None, help="SGD steps per training (default 1000)")
    parser.add_argument("--n-test", type=integer(), default=None, help="test samples (default 500)")
    parser.add_argument("--n-visible", type=integer(), default=None, help="visible decisive latents (default 16)")
    parser.add_argument("--max-unseen", type=integer(), default=None,
                        help="most unseen decisive latents (default: the design's, 16 for most)")
    parser.add_argument("--max-nondecisive", type=integer(), default=None,
                        help="largest non-decisive block (default 6)")
    parser.add_argument("--dim", type=integer(), default=None,
                        help="channels of each modality (default: the design's, 32 for most)")
    parser.add_argument("--family-seed", type=integer(0), default=0, help="seed of the families' draw (default 0)")
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


def _names(given: list[str] | None) -> list[str]:
    """The --family values, 'all' expanded; a design given twice is refused."""
    names: list[str] = []
    for name in given or ["gamma-split"]:
        for expanded in (FAMILY_NAMES if name == "all" else (name,)):
            if expanded in names:
                raise UsageError(f"--family {expanded} is given twice" + (" ('all' includes it)" if "all" in given
                                                                           else ""))
            names.append(expanded)
    return names


def run(args: argparse.Namespace) -> int:
    from mfh_sim.experiments.families import family_spec

    # Everything is checked before a family is simulated: a mistake leaves no folder behind.
    names = _names(args.family)
    changes = {field: value for field, value in (
        ("n_configs", args.configs), ("multiclass_share", args.multiclass_share),
        ("n_train_values", None if args.n_train is None else tuple(args.n_train)), ("steps", args.steps),
        ("n_test", args.n_test), ("n_visible", args.n_visible), ("max_unseen", args.max_unseen),
        ("max_nondecisive", args.max_nondecisive), ("dim", args.dim)) if value is not None}
    specs = {}
    for name in names:
        with user_input(names=FAMILY_OPTIONS):
            specs[name] = family_spec(name, seed=args.family_seed, **changes)
    writable_folder(args.out, "--out")
    stores = {name: args.out / "runs" if len(specs) == 1 else args.out / name / "runs" for name in specs}
    _check_stores(stores, specs, args.seeds, args.root_seed)
    common = dict(seeds=args.seeds, root_seed=args.root_seed, n_boot=args.bootstrap, workers=args.workers,
                  chunk_size=args.chunk_size, progress=not args.quiet)
    from mfh_sim.store import ResultsMismatchError

    try:
        if len(specs) == 1:
            return _one_family(args, *specs.items(), common)
        return _several_families(args, specs, common)
    except ResultsMismatchError as error:
        # Raised when a family's store opens, before that family runs (what _check_stores cannot
        # see from the manifest alone); the families before it are stored and resume.
        raise UsageError(f"--out: {one_line(error)}") from None


def _check_stores(stores: dict, specs: dict, seeds: int, root_seed: int) -> None:
    """Refuse, before anything runs, a results store of a family that holds other runs than this
    command asks for (other seeds, root seed, number of configs or package version)."""
    from mfh_sim.store import MANIFEST, package_version, read_manifest

    for name, folder in stores.items():
        if not (folder / MANIFEST).is_file():
            continue
        with user_input("--out"):
            manifest = read_manifest(folder)
        held = (len(manifest.get("seeds", [])), manifest.get("root_seed"), len(manifest.get("points", [])),
                manifest.get("package_version"))
        wanted = (seeds, root_seed, specs[name].n_configs, package_version())
        if held != wanted or manifest.get("seeds") != list(range(seeds)):
            raise UsageError(
                f"--out: {str(folder)!r} holds the {name} family's runs with {held[0]} seeds, root seed {held[1]}, "
                f"{held[2]} configs, mfh-sim {held[3]}; this command asks for {seeds} seeds, root seed "
                f"{root_seed}, {wanted[2]} configs, mfh-sim {wanted[3]}: give another --out, or the same "
                "options to resume"
            )


def _one_family(args: argparse.Namespace, item, common: dict) -> int:
    from mfh_sim.experiments.hypotheses import run_head_to_head

    name, spec = item
    result = run_head_to_head(spec, out=args.out / "runs", **common)
    result.family = name
    path = result.save(args.out)
    print(result.table())
    print(f"\n{name}: {len(result.configs)} configs x {len(result.seeds)} seeds in {result.wall_seconds:.1f} s; "
          f"written to {path}")
    if not args.no_figure:
        from mfh_sim.plots.hypotheses import plot_head_to_head
        from mfh_sim.plots.style import save_figure, use_file_backend

        use_file_backend()
        save_figure(plot_head_to_head(result), args.out / "hypotheses.png", dpi=130, tight=True, close=True)
        print(f"figure: {args.out / 'hypotheses.png'}")
    return 0


def _several_families(args: argparse.Namespace, specs: dict, common: dict) -> int:
    import sys

    from mfh_sim.experiments.hypotheses import run_families

    report = run_families(specs, out=args.out, log=lambda text: print(text, file=sys.stderr, flush=True), **common)
    paths = report.save(args.out, REPORT_STEM)
    print(report.table())
    print(f"\n{len(specs)} families in {report.wall_seconds:.1f} s; written to {paths[0]}, {paths[1]} and "
          f"{args.out}/NAME/")
    if not args.no_figure:
        from mfh_sim.plots.hypotheses import plot_families
        from mfh_sim.plots.style import save_figure, use_file_backend

        use_file_backend()
        figure = plot_families(report)
        for suffix in (".png", ".pdf"):
            save_figure(figure, args.out / f"{REPORT_STEM}{suffix}", dpi=130, tight=True)
        print(f"figure: {args.out / REPORT_STEM}.png and .pdf")
    return 0
