"""Hand-run timing of the finite-sample theory (not a test): ``PYTHONPATH=. python benchmarks/theory_speed.py``.

Prints wall and CPU (process) time, and the minor page faults (memory the kernel handed the
process afresh: see :mod:`mfh_sim.memory`), of :func:`~mfh_sim.theory.api.predict` for single configs
(memo cleared, so every call solves), and of :func:`~mfh_sim.theory.api.predict_many` on a
66-config grid (Fig. 2 overlaps 0-10 x n_train 100/200/400 x both protocols), on a 1,000-config
sweep that asks 10 distinct theory questions (a grid of 10 overlaps x 100 values of a knob the
theory ignores, ``n_test``) and on 1,000 configs of which 100 are distinct 'ones' questions.

``--compare`` repeats every line with the coarse first phase of the fixed point switched off
(``gcm.COARSE_NODES = None``), so the two columns come from one run on the same (possibly shared)
machine.  ``--skip-grid`` leaves out the 66-config grid (the slowest line).  ``--head-to-head`` adds
the default head-to-head family (``mfh-sim reproduce``'s hypotheses item: 192 two-class and 48
three-class configs, every one a distinct question), its two parts and the whole.
``--crossover`` adds the theory figure's crossover curve (``mfh-sim reproduce``'s theory item:
:func:`~mfh_sim.theory.crossover_gamma_gcm` at 13 training sizes), with the number of problems it
solved.  ``--no-defaults`` leaves out every line but those two options' (for timing them alone).
"""

from __future__ import annotations

import argparse
import resource
import time

import mfh_sim
from mfh_sim.theory import api, gcm

SINGLE = {
    "fig2 o=5 (gaussian, same sample)": dict(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50),
    "fig2 o=5 (gaussian, fresh sample)": dict(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50,
                                              fresh_student_sample=True),
    "n=100, 50 student channels (gaussian)": dict(shared=4, a_only=4, b_only=4, unseen=2,
                                                  shared_nondecisive=3, dim_a=30, dim_b=50,
                                                  n_train=100),
    "fig3 alpha=0 (gaussian)": dict(shared=10, a_only=0, b_only=0, unseen=40, dim_a=50, dim_b=50),
    "T=4 batchmean (gaussian)": dict(shared=6, a_only=3, b_only=3, unseen=4, dim_a=40, dim_b=40,
                                     kd_weight=2.0, temperature=4.0, kd_reduction="batchmean"),
    "table2 (ones, fresh)": dict(shared=10, a_only=10, b_only=0, hyperplane="ones",
                                 fresh_student_sample=True),
    "fig2 o=5 (ones, same sample)": dict(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50,
                                         hyperplane="ones"),
    # The extensions of docs/theory.md 4.10-4.13.
    "label noise 0.2 (gaussian, same sample)": dict(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50,
                                                    label_noise=0.2),
    "momentum 0.9 (gaussian, same sample)": dict(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50,
                                                 momentum=0.9, learning_rate=0.01),
    "mixing depth 2 (gaussian, same sample)": dict(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50,
                                                   mixing_depth=2, mixing_strength=0.5),
    "3 classes (same sample)": dict(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50, n_classes=3),
    "4 classes (fresh sample)": dict(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50, n_classes=4,
                                     fresh_student_sample=True),
    "4 classes, noise, mixing, momentum (same sample)": dict(
        shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50, n_classes=4, label_noise=0.2,
        mixing_depth=1, mixing_strength=0.5, momentum=0.5),
    "10 classes (same sample)": dict(shared=10, a_only=5, b_only=5, unseen=5, dim_a=40, dim_b=40, n_classes=10),
}


def _clear() -> None:
    api._CACHE.clear()
    getattr(api, "_LIMIT_CACHE", {}).clear()


def _faults() -> int:
    """Minor page faults of this process so far (pages the kernel handed it afresh)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _timed(fn) -> tuple[float, float, int]:
    _clear()
    w, c, f = time.perf_counter(), time.process_time(), _faults()
    fn()
    return time.perf_counter() - w, time.process_time() - c, _faults() - f


def _multiclass_setup() -> None:
    """The C-class theory's one-time costs per process: scipy.stats' quasi-Monte Carlo module, the
    Sobol points and the accuracy interpolant of each C (cached afterwards)."""
    from mfh_sim.theory import multiclass

    for classes in (3, 4, 10):
        for coarse in (False, True):
            multiclass.normals(classes, multiclass.points_for(classes, coarse))
        multiclass.accuracy(0.5, classes)
    multiclass.normals(4, multiclass.MAX_POINTS)  # the infinite-data limit's kappa


def head_to_head_cases() -> list[tuple[str, object]]:
    """The default head-to-head family's theory: its two-class configs, three-class ones, all."""
    from mfh_sim.experiments.families import FamilySpec

    family = [mfh_sim.make_config(**point) for point in FamilySpec().points()]
    two = [c for c in family if c.n_classes == 2]
    multi = [c for c in family if c.n_classes > 2]
    return [
        (f"predict_many: head-to-head, {len(two)} two-class configs", lambda: api.predict_many(two)),
        (f"predict_many: head-to-head, {len(multi)} three-class configs", lambda: api.predict_many(multi)),
        (f"predict_many: head-to-head, all {len(family)} configs", lambda: api.predict_many(family)),
    ]


def crossover_cases() -> list[tuple[str, object]]:
    """The theory figure's crossover gamma* at its 13 training sizes (grid, then Brent per size),
    counting the problems solved (each a full fixed-point solve)."""
    import numpy as np

    from mfh_sim.commands.reproduce import CROSSOVER_SIZES
    from mfh_sim.experiments import fig2_blocks
    from mfh_sim.theory import crossover_gamma_gcm, highdim

    sizes = [int(n) for n in np.geomspace(100, 5000, CROSSOVER_SIZES)]

    def run() -> None:
        solve = highdim.finite_accuracies_many
        counts = []

        def counting(items, **options):
            counts.append(len(items))
            return solve(items, **options)

        highdim.finite_accuracies_many = counting
        try:
            crossover_gamma_gcm(fig2_blocks, n_train=sizes, dim_a=25, dim_b=50, overlap_max=10)
        finally:
            highdim.finite_accuracies_many = solve
        print(f"  (the crossover solved {sum(counts)} problems in {len(counts)} calls: "
              f"{counts[0]} in its grid, {sum(counts[1:])} in Brent's refinements)", flush=True)

    return [(f"crossover_gamma_gcm: {len(sizes)} training sizes", run)]


def cases(skip_grid: bool = False) -> list[tuple[str, object]]:
    """(label, zero-argument callable) for every timed line (the C-class setup first, once)."""
    out: list[tuple[str, object]] = [("one-time C-class setup (C = 3, 4, 10; cached per process)", _multiclass_setup)]
    for label, knobs in SINGLE.items():
        config = mfh_sim.make_config(**knobs)
        out.append((f"predict: {label}", lambda config=config: api.predict(config)))
    if not skip_grid:
        grid = [mfh_sim.make_config(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25,
                                    dim_b=50, n_train=n, fresh_student_sample=fresh)
                for o in range(11) for n in (100, 200, 400) for fresh in (False, True)]
        out.append((f"predict_many: {len(grid)}-config grid", lambda: api.predict_many(grid)))
    sweep = [mfh_sim.make_config(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25,
                                 dim_b=50, n_test=1000 + j)
             for o in range(10) for j in range(100)]
    out.append((f"predict_many: {len(sweep)}-config sweep (10 distinct, gaussian)",
                lambda: api.predict_many(sweep)))
    ones = [mfh_sim.make_config(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25, dim_b=50,
                                n_train=60 + 10 * n, hyperplane="ones", n_test=1000 + j,
                                fresh_student_sample=bool(n % 2))
            for o in range(10) for n in range(10) for j in range(10)]
    out.append((f"predict_many: {len(ones)}-config sweep (100 distinct, ones)",
                lambda: api.predict_many(ones)))
    mixed = [mfh_sim.make_config(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25, dim_b=50,
                                 n_classes=3 + (o % 2), label_noise=0.1 * (o % 3), n_test=1000 + j)
             for o in range(10) for j in range(100)]
    out.append((f"predict_many: {len(mixed)}-config sweep (10 distinct, 3-4 classes, label noise)",
                lambda: api.predict_many(mixed)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true",
                        help="also time every line with the coarse first phase off")
    parser.add_argument("--skip-grid", action="store_true", help="leave out the 66-config grid")
    parser.add_argument("--head-to-head", action="store_true",
                        help="add the default head-to-head family (two-class, three-class, all)")
    parser.add_argument("--no-defaults", action="store_true",
                        help="leave out the default lines: only --head-to-head's and --crossover's")
    parser.add_argument("--crossover", action="store_true",
                        help="add the theory figure's crossover curve (13 root searches)")
    parser.add_argument("--solve-points", type=int, default=None,
                        help="rule points per batch of the fixed-point solve (default gcm.SOLVE_POINTS)")
    args = parser.parse_args(argv)
    if args.solve_points is not None:
        if args.solve_points < 1:
            parser.error(f"--solve-points {args.solve_points}: it must be >= 1")
        gcm.SOLVE_POINTS = args.solve_points
    default = getattr(gcm, "COARSE_NODES", None)
    lines = (([] if args.no_defaults else cases(args.skip_grid)) + (head_to_head_cases() if args.head_to_head else [])
             + (crossover_cases() if args.crossover else []))
    for label, fn in lines:
        wall, cpu, faults = _timed(fn)
        line = f"{label:62s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  page faults {faults:9,d}"
        if args.compare:
            gcm.COARSE_NODES = None
            try:
                wall0, cpu0, _ = _timed(fn)
            finally:
                gcm.COARSE_NODES = default
            line += f"   | coarse phase off: wall {wall0:6.2f} s  cpu {cpu0:6.2f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
