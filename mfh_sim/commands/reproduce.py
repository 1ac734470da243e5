"""``mfh-sim reproduce``: regenerate the paper's figures and tables into a folder (default figures/)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mfh_sim.commands import UsageError, finite_number, integer, writable_folder

# Heavy imports (JAX through the simulator, matplotlib through the plots) happen inside the
# producers, so that `mfh-sim --help` loads neither; the backend is chosen in run(), never at
# import, so importing this module leaves a notebook's backend alone.


def _save(fig: Any, out: Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``stem``.png (150 dpi) and ``stem``.pdf into ``out`` and close it."""
    from mfh_sim.plots.style import save_figure

    paths = [save_figure(fig, out / f"{stem}.png", dpi=150), save_figure(fig, out / f"{stem}.pdf", close=True)]
    return paths


def _paper_curve(out: Path, stem: str, result, x: str, paper, title: str, venn_title: str) -> list[Path]:
    from mfh_sim.plots import plot_curves, plot_venn

    fig = plot_curves(result, x, paper=paper, title=title)
    venn = plot_venn(result.configs[2].venn, title=venn_title)
    return _save(fig, out, stem) + _save(venn, out, f"{stem}_venn") + [result.to_csv(out / f"{stem}.csv")]


def _trained_by(training: dict[str, Any]) -> str:
    """A title suffix naming the training mode when it is not the paper's GD ('' for the paper's)."""
    return f", converged ERM, l2 = {training['l2']:g}" if training else ""


def _fig2(out: Path, seeds: int, progress: bool, training: dict[str, Any]) -> list[Path]:
    from mfh_sim import experiments

    return _paper_curve(out, "fig2", experiments.fig2(seeds=seeds, progress=progress, **training), "gamma",
                        experiments.PAPER_FIG2,
                        f"Fig. 2: increase $\\gamma$ ({seeds} seeds{_trained_by(training)}; band ±1 std)",
                        "Fig. 2 geometry at overlap o = 4")


def _fig3(out: Path, seeds: int, progress: bool, training: dict[str, Any]) -> list[Path]:
    from mfh_sim import experiments

    return _paper_curve(out, "fig3", experiments.fig3(seeds=seeds, progress=progress, **training), "alpha",
                        experiments.PAPER_FIG3,
                        f"Fig. 3: increase $\\alpha$ ({seeds} seeds{_trained_by(training)}; band ±1 std)",
                        "Fig. 3 geometry at s = 20")


def write_table2(out_dir: str | Path, seeds: int = 200, progress: bool = False, **options: Any) -> list[Path]:
    """Run :func:`mfh_sim.experiments.table2` and write ``table2.csv``, ``table2.md`` and Algorithm
    1's salience figure (``table2_salience.png`` and ``.pdf``) into ``out_dir`` (created if missing).

    ``options`` go to :func:`~mfh_sim.experiments.table2` (for example fewer ``steps`` for a quick
    look).  Returns the written paths.
    """
    from mfh_sim.experiments import table2, table2_markdown
    from mfh_sim.files import atomic_write
    from mfh_sim.plots.salience import plot_salience
    from mfh_sim.plots.style import save_figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = table2(seeds=seeds, progress=progress, **options)
    written = [result.to_csv(out_dir / "table2.csv"), atomic_write(out_dir / "table2.md", table2_markdown(result))]
    figure = plot_salience(**result.salience_panels())
    written.append(save_figure(figure, out_dir / "table2_salience.png", dpi=150, tight=True))
    written.append(save_figure(figure, out_dir / "table2_salience.pdf", dpi=150, tight=True, close=True))
    return written


def _table2(out: Path, seeds: int, progress: bool, training: dict[str, Any]) -> list[Path]:
    return write_table2(out, seeds=seeds, progress=progress, **training)


#: Training sizes (100 to 5,000, log-spaced) at which the theory figure solves for the crossover
#: gamma*; each is a root search over the Fig. 2 geometry (seconds of CPU).
CROSSOVER_SIZES = 13


def _theory(out: Path, seeds: int, progress: bool, training: dict[str, Any]) -> list[Path]:
    import numpy as np

    from mfh_sim import experiments
    from mfh_sim.plots.theory import crossover_curve, theory_vs_simulation
    from mfh_sim.theory import crossover_from_gains, crossover_gamma_gcm

    result = experiments.fig2(seeds=seeds, progress=progress, **training)
    accuracies = theory_vs_simulation(
        result, "gamma", title=f"Fig. 2 geometry: theory and simulation ({seeds} seeds{_trained_by(training)})")
    gain = theory_vs_simulation(result, "gamma", keys=("delta",),
                                title=f"KD gain: theory and simulation{_trained_by(training)}")
    sizes = np.geomspace(100, 5000, CROSSOVER_SIZES)
    # The crossover's ridge: the training's own (ERM) or, for the paper's GD, the theory's GD map.
    predicted = crossover_gamma_gcm(experiments.fig2_blocks, n_train=[int(n) for n in sizes], dim_a=25, dim_b=50,
                                    overlap_max=10, l2=training.get("l2"))
    simulated = crossover_from_gains(np.asarray(experiments.FIG2_OVERLAPS), result.delta, n_decisive=20)
    crossover = crossover_curve(sizes, predicted, simulated=([200], [simulated]))
    crossover.axes[0].set_title("Fig. 2 geometry: where KD starts to help", fontsize=10)
    return (_save(accuracies, out, "theory_fig2") + _save(gain, out, "theory_fig2_gain")
            + _save(crossover, out, "theory_crossover"))


def _phase(out: Path, seeds: int, progress: bool, training: dict[str, Any]) -> list[Path]:
    import numpy as np

    from mfh_sim.plots import plot_gain_heatmap
    from mfh_sim.simulation import sweep

    points = [dict(gamma=float(g), alpha=float(a))
              for a in np.linspace(0.0, 0.8, 5) for g in np.linspace(0.1, 1.0, 10) if g <= 1 - a + 1e-9]
    plane = sweep(points=points, seeds=seeds, progress=progress, **training)
    fig = plot_gain_heatmap(plane, "gamma", "alpha", contour=plane.theory["delta"],
                            title=f"KD gain (points), n_train = 200, {seeds} seeds{_trained_by(training)}")
    return _save(fig, out, "phase_gamma_alpha") + [plane.to_csv(out / "phase_gamma_alpha.csv")]


def _hypotheses(out: Path, seeds: int, progress: bool, training: dict[str, Any]) -> list[Path]:
    from mfh_sim.experiments.hypotheses import FamilySpec, run_head_to_head
    from mfh_sim.plots.hypotheses import plot_head_to_head

    result = run_head_to_head(FamilySpec(), seeds=seeds, progress=progress)
    text = out / "hypotheses.txt"
    text.write_text(result.table() + "\n")
    return _save(plot_head_to_head(result), out, "hypotheses") + [text]


#: name -> (producer(out_dir, seeds, progress, training) -> written paths, default seeds), in running
#: order.  ``training`` is {} for the paper's GD, {'optimizer': 'erm', 'l2': l2} for converged ERM.
PRODUCERS: dict[str, tuple[Callable[[Path, int, bool, dict[str, Any]], list[Path]], int]] = {
    "fig2": (_fig2, 200),
    "fig3": (_fig3, 200),
    "table2": (_table2, 200),
    "theory": (_theory, 100),
    "phase": (_phase, 40),
    "hypotheses": (_hypotheses, 100),
}


#: Items that train only the paper's two-class linear models, so that optimizer='erm' applies.
ERM_ITEMS = ("fig2", "fig3", "table2", "theory", "phase")


def training_of(optimizer: str, l2: float | None) -> dict[str, Any]:
    """The training knobs every item gets: {} for 'sgd' (the paper's GD), else optimizer and l2.

    The pairing rule is :func:`mfh_sim.validation.require_optimizer`'s (no --l2 is l2 = 0); a
    pair it refuses is a UsageError carrying its reason.
    """
    from mfh_sim.validation import require_optimizer

    try:
        checked, ridge = require_optimizer(optimizer, 0.0 if l2 is None else l2)
    except ValueError as error:
        given = f"--optimizer {optimizer} " + ("without --l2" if l2 is None else f"--l2 {l2:g}")
        raise UsageError(f"{given}: {error}") from None
    return {"optimizer": "erm", "l2": ridge} if checked == "erm" else {}


def run(args: argparse.Namespace) -> int:
    # --only, --seeds and --optimizer are checked by the parser; --l2 with --optimizer and the
    # folder before anything is created.
    training = training_of(args.optimizer, args.l2)
    names = args.only or list(PRODUCERS)
    if training:
        refused = [name for name in names if name not in ERM_ITEMS]
        if args.only and refused:
            raise UsageError(f"--only {refused[0]} is not allowed with --optimizer erm: its family has "
                             f"multi-class configs, which converged ERM does not train (use one of "
                             f"{', '.join(ERM_ITEMS)})")
        if refused and not args.quiet:
            print(f"[{', '.join(refused)}] left out: --optimizer erm trains two-class linear models only",
                  flush=True)
        names = [name for name in names if name in ERM_ITEMS]
    out = writable_folder(args.out if args.out is not None else ("figures/erm" if training else "figures"),
                          "--out")
    from mfh_sim.plots.style import use_file_backend

    use_file_backend()  # after the checks: a typo is reported without loading matplotlib
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        start = time.perf_counter()
        producer, default_seeds = PRODUCERS[name]
        seeds = args.seeds or default_seeds
        if not args.quiet:
            print(f"[{name}] running ({seeds} seeds)...", flush=True)
        paths = producer(out, seeds, not args.quiet, training)
        if not args.quiet:
            print(f"[{name}] wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - start:.1f} s",
                  flush=True)
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "reproduce", help="regenerate the paper's figures and tables (PNG, PDF, CSV) into a folder",
        description="Regenerate the paper's figures and tables (Fig. 2, Fig. 3, Table 2, the theory's figures, "
                    "the gamma-alpha phase plane and the hypotheses' head-to-head) as PNG, PDF, CSV and Markdown "
                    "files in a folder; the same call gives byte-identical tables and CSVs.",
    )
    parser.add_argument("--out", default=None,
                        help="output folder (default: figures, or figures/erm with --optimizer erm)")
    parser.add_argument("--seeds", type=integer(2), default=None,
                        help="seeds per grid point for every item, >= 2 (default: 200 for fig2, fig3 and "
                             "table2; 100 for theory and hypotheses; 40 for phase)")
    parser.add_argument("--only", action="append", metavar="NAME", choices=list(PRODUCERS),
                        help=f"produce only this item (repeatable): {', '.join(PRODUCERS)}")
    parser.add_argument("--optimizer", choices=("sgd", "erm"), default="sgd",
                        help="how teachers and students train: 'sgd' (default) the paper's full-batch GD; "
                             "'erm' converged ridge-logistic ERM, where the exact theory holds (needs --l2; "
                             f"items {', '.join(ERM_ITEMS)})")
    parser.add_argument("--l2", type=finite_number, default=None,
                        help="ridge weight of --optimizer erm, > 0: each fit minimises the mean loss + "
                             "(l2/2)||theta||^2")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)
