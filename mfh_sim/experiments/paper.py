"""The paper's synthetic experiments as presets (Xue et al., ICLR 2023, Section 3 and Appendix).

* :func:`fig2` — "increase gamma": x^a has 25 channels, x^b 50; K = 20 decisive latents under a
  Gaussian hyperplane; x^b shows latents 0..9, x^a shows latents (10-o)..(19-o) for overlap
  o in {0, 2, 4, 6, 8, 10}.  So G = o, A = B = 10 - o, and o latents are seen by neither modality
  (U = o); gamma = o / (20 - o).
* :func:`fig3` — "increase alpha": both inputs 50 channels; K = 50 decisive latents; x^b shows
  latents 0..9, x^a shows latents 0..(9+s) for s in {0, 10, 20, 30, 40}.  So G = 10, A = s,
  B = 0, U = 40 - s; alpha = s / (s + 10), gamma = 1 - alpha.

Both use the paper's recipe, which is also :func:`mfh_sim.simulate`'s default: linear models with
bias and two outputs, PyTorch's default initialisation, full-batch GD (learning rate 0.1, no
momentum, 1000 steps), n_train = 200 shared by teacher and students, n_test = 1000, and the KD loss
CE + KL with the KL averaged over batch and classes (``kd_reduction='paper'``).
The reported numbers (means of 10 runs, in percent) are kept in :data:`PAPER_FIG2` and
:data:`PAPER_FIG3` for comparison.

* :func:`table2` — "a modality-general teacher" with Algorithm 1: the protocol is
  :mod:`mfh_sim.protocols.table2`, run through the generic engine; see ``docs/table2.md``.

This module holds the paper's geometries (Fig. 2, Fig. 3, Table 2's rows) and reported numbers,
once: the experiments, the theory's checks, the notebooks, the tests and the benchmarks read them
from here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from mfh_sim.protocols.table2 import (
    ALGORITHM1_DATA,
    MODES,
    TABLE2,
    Table2Spec,
    _require_count,
    _require_modes,
    table2_point,
    table2_venn,
)
from mfh_sim.results import SweepResult, Table2Result
from mfh_sim.simulation import sweep
from mfh_sim.validation import require_optimizer

__all__ = ["FIG2_OVERLAPS", "FIG3_EXTRA", "PAPER_FIG2", "PAPER_FIG3", "PAPER_RECIPE", "PAPER_ROWS",
           "PAPER_TABLE2", "fig2", "fig2_blocks", "fig2_point", "fig2_points", "fig3", "fig3_points", "table2",
           "table2_markdown"]

FIG2_OVERLAPS = (0, 2, 4, 6, 8, 10)
FIG3_EXTRA = (0, 10, 20, 30, 40)

#: The paper's protocol: the knobs every preset fixes (they equal the simulator's defaults).
PAPER_RECIPE: dict[str, Any] = dict(
    hyperplane="gaussian",
    n_train=200,
    n_test=1000,
    model="linear",
    init="torch",
    optimizer="sgd",
    learning_rate=0.1,
    momentum=0.0,
    steps=1000,
    ce_weight=1.0,
    kd_weight=1.0,
    temperature=1.0,
    kd_reduction="paper",
)

#: Fig. 2 as reported (accuracies in percent, means of 10 runs; read off the plot, about ±0.1).
PAPER_FIG2 = {
    "gamma": (0.0, 0.111, 0.25, 0.429, 0.667, 1.0),
    "teacher_acc": (71.4, 71.4, 71.1, 71.2, 71.1, 70.9),
    "kd_acc": (66.3, 67.1, 67.9, 68.7, 69.4, 70.1),
    "no_kd_acc": (67.9, 67.9, 67.9, 67.9, 67.9, 67.9),
}

#: Fig. 3 as reported (accuracies in percent, means of 10 runs).
PAPER_FIG3 = {
    "alpha": (0.0, 0.5, 0.667, 0.75, 0.8),
    "teacher_acc": (58.0, 64.2, 71.6, 78.1, 88.5),
    "kd_acc": (58.5, 58.3, 58.2, 57.6, 57.2),
    "no_kd_acc": (57.3, 57.3, 57.3, 57.3, 57.3),
}


#: Table 2's rows: (a_only, shared) decisive latents, gamma = shared / (shared + a_only).
PAPER_ROWS: tuple[tuple[int, int], ...] = ((30, 10), (20, 10), (10, 10), (10, 20), (10, 30))

#: The paper's Table 2 in percent: regular teacher, modality-general teacher, no KD, regular KD,
#: modality-general KD (ground-truth channels), keyed by (a_only, shared).
PAPER_TABLE2: dict[tuple[int, int], tuple[float, float, float, float, float]] = {
    (30, 10): (89.70, 64.84, 59.29, 59.46, 61.01),
    (20, 10): (89.41, 68.42, 61.98, 62.16, 64.50),
    (10, 10): (89.62, 73.41, 67.64, 67.86, 70.25),
    (10, 20): (89.82, 77.98, 73.48, 73.60, 75.43),
    (10, 30): (89.70, 79.41, 76.46, 76.53, 77.70),
}


def fig2_point(overlap: int) -> dict[str, int]:
    """The Venn diagram of Fig. 2 at overlap o (counts and channel dims): the one definition of
    the Fig. 2 geometry.  G = o, A = B = 10 - o, U = o, x^a 25 channels, x^b 50."""
    return dict(shared=overlap, a_only=10 - overlap, b_only=10 - overlap, unseen=overlap, dim_a=25, dim_b=50)


def fig2_blocks(overlap: float):
    """The decisive blocks (G, A, B, U) of Fig. 2 at a real overlap o (the theory interpolates):
    G = o, A = B = 10 - o, U = o; for :func:`mfh_sim.theory.crossover_gamma_gcm`."""
    from mfh_sim.theory.quadrature import Blocks

    return Blocks(overlap, 10.0 - overlap, 10.0 - overlap, overlap)


def fig2_points() -> list[dict[str, int]]:
    """The Venn diagrams of Fig. 2, one per overlap o (counts and channel dims)."""
    return [fig2_point(o) for o in FIG2_OVERLAPS]


def fig3_points() -> list[dict[str, int]]:
    """The Venn diagrams of Fig. 3, one per number s of extra teacher-only latents."""
    return [
        dict(shared=10, a_only=s, b_only=0, unseen=40 - s, dim_a=50, dim_b=50) for s in FIG3_EXTRA
    ]


def fig2(seeds: int = 10, root_seed: int = 0, *, progress: bool = False, **overrides: Any) -> SweepResult:
    """The paper's Fig. 2 ("increase gamma") over ``seeds`` seeds per overlap.

    Returns a :class:`~mfh_sim.results.SweepResult` whose ``.gamma`` is (0, 1/9, 1/4, 3/7, 2/3, 1)
    and whose accuracy arrays have shape (6, seeds).  ``overrides`` change any knob of the recipe
    (for example ``n_train=500`` or ``kd_reduction='batchmean'``).
    """
    return sweep(points=fig2_points(), seeds=seeds, root_seed=root_seed, progress=progress,
                 **{**PAPER_RECIPE, **overrides})


def fig3(seeds: int = 10, root_seed: int = 0, *, progress: bool = False, **overrides: Any) -> SweepResult:
    """The paper's Fig. 3 ("increase alpha") over ``seeds`` seeds per point.

    ``.alpha`` is (0, 1/2, 2/3, 3/4, 4/5) and the accuracy arrays have shape (5, seeds).
    """
    return sweep(points=fig3_points(), seeds=seeds, root_seed=root_seed, progress=progress,
                 **{**PAPER_RECIPE, **overrides})


# ============================================================================ Table 2
def _require_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {minimum}")
    return int(value)


def _require_rows(rows: Any, dim_a: int, dim_b: int) -> tuple[tuple[int, int], ...]:
    try:
        rows = tuple(tuple(row) for row in rows)
    except TypeError:
        raise ValueError(f"rows={rows!r} is not allowed: give (a_only, shared) pairs") from None
    if not rows or any(len(row) != 2 for row in rows):
        raise ValueError(f"rows={rows!r} is not allowed: give at least one (a_only, shared) pair")
    for a_only, shared in rows:
        table2_venn(a_only, shared, dim_a, dim_b)  # validates counts against the dims
    return tuple((int(a), int(g)) for a, g in rows)


def table2(
    seeds: int | Iterable[int] = 10,
    root_seed: int = 0,
    modes: Sequence[str] = MODES,
    *,
    rows: Sequence[tuple[int, int]] = PAPER_ROWS,
    count: int | None = None,
    dim_a: int = 50,
    dim_b: int = 50,
    n_train: int = 200,
    n_test: int = 1000,
    steps: int = 1000,
    permutations: int = 100,
    algorithm1_steps: int = 1000,
    algorithm1_data: str = "all",
    optimizer: str = "sgd",
    l2: float = 0.0,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: bool = False,
    out: str | os.PathLike | None = None,
    resume: bool = True,
    devices: Sequence[Any] | int | None = None,
) -> Table2Result:
    """The paper's Table 2: regular vs modality-general teacher, and their crossmodal KD students.

    Args:
        seeds: number of seeds (>= 1) or distinct seed indices; each seed draws fresh data.
        root_seed: integer in [0, 2**32), the root of every key.
        modes: selection modes of the modality-general teacher, any of :data:`MODES`.
        rows: (a_only, shared) decisive latents per row (default: the paper's five rows, gamma
            0.25, 0.33, 0.5, 0.66, 0.75); a_only + shared <= dim_a, shared <= dim_b.
        count: channels in the modality-general selection; None (default) = the true |G| of
            each row, as in the paper.
        dim_a, dim_b: channels of x^a and x^b.  n_train: size of the teachers' and of the
            students' training samples; n_test: test sample size.
        steps: GD steps (lr 0.1) of every teacher and student.  permutations, algorithm1_steps:
            Algorithm 1's M and joint-training steps.  algorithm1_data: 'all' (default: the
            teachers' and students' samples together, all the paired data there is at training
            time) or 'teacher' (the teachers' sample only, as in the paper's code).
        optimizer, l2: how teachers and students are trained: 'sgd' (default, the paper's
            full-batch GD, ``steps`` steps, l2 must be 0) or 'erm' (converged ridge-logistic ERM
            by Newton's method, :mod:`mfh_sim.erm`: mean loss + l2/2 ||theta||^2 with l2 > 0;
            ``steps`` is then unused by them).  Same data draws either way (paired).
        chunk_size, workers: runs per compiled call per device and chunks in flight (default:
            cache-sized on a CPU, sized to the device's memory on accelerators).
        progress: print a progress bar to stderr.
        out, resume: a results directory, written block by block; re-running the same call
            after an interruption computes only the missing blocks (see :mod:`mfh_sim.store`
            and :func:`mfh_sim.simulation.sweep`).  devices: as for ``sweep``.
    Returns a :class:`Table2Result`.  Raises :class:`ValueError` on bad input, before any JAX
    computation.
    """
    from mfh_sim.engine import execute
    from mfh_sim.progress import ProgressBar
    from mfh_sim.validation import require_seeds

    seeds = require_seeds(seeds)
    if isinstance(root_seed, (bool, np.bool_)) or not isinstance(root_seed, (int, np.integer)) or not (
        0 <= root_seed < 2**32
    ):
        raise ValueError(f"root_seed={root_seed!r} is not allowed: it must be an integer in [0, 2**32)")
    modes = _require_modes(modes)
    dim_a = _require_int("dim_a", dim_a, 1)
    dim_b = _require_int("dim_b", dim_b, 1)
    rows = _require_rows(rows, dim_a, dim_b)
    if count is not None:
        count = _require_count(count, dim_a, modes)
    else:
        for _, shared in rows:
            _require_count(shared, dim_a, modes, name="shared")
    if algorithm1_data not in ALGORITHM1_DATA:
        raise ValueError(
            f"algorithm1_data={algorithm1_data!r} is not allowed: use one of {ALGORITHM1_DATA}"
        )
    optimizer, l2 = require_optimizer(optimizer, l2)
    spec = Table2Spec(
        dim_a=dim_a,
        dim_b=dim_b,
        n_train=_require_int("n_train", n_train, 2),
        n_test=_require_int("n_test", n_test, 1),
        steps=_require_int("steps", steps, 1),
        permutations=_require_int("permutations", permutations, 1),
        algorithm1_steps=_require_int("algorithm1_steps", algorithm1_steps, 1),
        algorithm1_data=algorithm1_data,
        modes=modes,
        optimizer=optimizer,
        l2=l2,
    )
    if chunk_size is not None:
        chunk_size = _require_int("chunk_size", chunk_size, 1)
    if workers is not None:
        workers = _require_int("workers", workers, 1)
    if not isinstance(resume, (bool, np.bool_)):
        raise ValueError(f"resume={resume!r} is not allowed: use True or False")
    points = [table2_point(a_only, shared, spec, count) for a_only, shared in rows]
    store, completed = None, []
    if out is not None:
        from mfh_sim._version import versions
        from mfh_sim.store import ResultStore

        grid = [{"a_only": a_only, "shared": shared} for a_only, shared in rows]
        store = ResultStore.open(out, TABLE2, points, grid, seeds, int(root_seed), resume=bool(resume),
                                 versions=versions())
        completed = store.completed()
    already = sum(block.stop - block.start for block in completed)
    bar = ProgressBar(len(rows) * len(seeds) - already, label="Table 2 runs", enabled=progress)
    try:
        arrays = execute(
            TABLE2, points, seeds, int(root_seed), chunk_size=chunk_size, workers=workers,
            progress=bar.update, devices=devices, completed=completed,
            on_block=store.write if store is not None else None,
        )
    finally:
        bar.close()
    return Table2Result.from_arrays(points, arrays, seeds, int(root_seed))


def table2_markdown(result: Table2Result) -> str:
    """The text of ``table2.md``: a heading, how to read it, and :meth:`Table2Result.to_markdown`."""
    spec = result.spec
    trained = ("teachers and students by converged ridge-logistic ERM, l2 = "
               f"{spec.l2:g}" if spec.optimizer == "erm" else f"teachers and students by full-batch GD, "
               f"{spec.steps} steps")
    return (
        "# Table 2: modality-general teacher (accuracies in %)\n\n"
        f"{len(result.seeds)} seeds per row, root seed {result.root_seed}, {trained}; mod.-general KD - "
        "regular KD is the paired difference with its 95% t-interval; recovery is the share "
        "of the truly shared channels among Algorithm 1's top |G|, beside chance |G|/dim_a.\n\n"
        + result.to_markdown()
    )
