"""Table 2 of the paper: the modality-general teacher, its entry point and its result.

:func:`table2` runs the protocol of :mod:`mfh_sim.protocols.table2` through the one runner
(:func:`mfh_sim.engine.run`: devices, memory-sized chunks, the results store, resume and more
seeds) and returns a :class:`Table2Result`: per-seed accuracies of the regular and the
modality-general teachers and of their crossmodal KD students, Algorithm 1's salience and
recovery, paired differences with t-intervals, and the table as CSV, Markdown and text.  The
paper's rows and numbers are :data:`mfh_sim.experiments.paper.PAPER_ROWS` and ``PAPER_TABLE2``;
``docs/table2.md`` sets them side by side.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.engine import run
from mfh_sim.experiments.paper import PAPER_ROWS
from mfh_sim.files import number_text, write_csv
from mfh_sim.protocols import Protocol
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
from mfh_sim.stats import Summary, summarize
from mfh_sim.validation import require_integer, require_optimizer, require_root_seed, require_seeds

__all__ = ["Table2Result", "table2", "table2_markdown"]


# ============================================================================ Table 2
def _require_int(name: str, value: Any, minimum: int) -> int:
    # Table 2's counts are exact integers: 3.0 is refused (mfh_sim.validation accepts it).
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {minimum}")
    return require_integer(name, value, minimum)


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
    seeds = require_seeds(seeds)
    root_seed = require_root_seed(root_seed)
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
    points = [table2_point(a_only, shared, spec, count) for a_only, shared in rows]
    outcome = run(TABLE2, points, seeds, root_seed=root_seed, grid=[{"a_only": a, "shared": g} for a, g in rows],
                  out=out, resume=resume, progress=progress, label="Table 2 runs", devices=devices,
                  chunk_size=chunk_size, workers=workers)
    return Table2Result.from_run(TABLE2, points, outcome.arrays, seeds=seeds, root_seed=root_seed)


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


# ------------------------------------------------------------------------------ Table 2
_COLUMNS = ("regular_teacher", "general_teacher", "no_kd", "regular_kd", "general_kd")
_HEADERS = {
    "regular_teacher": "regular teacher",
    "general_teacher": "mod.-general teacher",
    "no_kd": "no KD",
    "regular_kd": "regular KD",
    "general_kd": "mod.-general KD",
}


@dataclass(frozen=True)
class Table2Result:
    """Per-seed Table 2 accuracies (fractions in [0, 1]; NaN = diverged) and Algorithm 1 output.

    Attributes:
        rows: (a_only, shared) per row; gamma = shared / (shared + a_only).
        modes: selection modes, in the order of the ``general_*`` arrays' second axis.
        seeds: seed indices; root_seed: the root of every key; counts: |G| selected per row.
        regular_teacher, no_kd, regular_kd: (rows, seeds).
        general_teacher, general_kd: (rows, modes, seeds).
        recovery: (rows, seeds), share of the shared channels among Algorithm 1's top |G|.
        salience: (rows, seeds, dim_a), normalised Algorithm 1 salience of x^a's channels.
        spec: the protocol's static settings.
    """

    rows: tuple[tuple[int, int], ...]
    modes: tuple[str, ...]
    seeds: np.ndarray
    root_seed: int
    counts: tuple[int, ...]
    regular_teacher: np.ndarray
    no_kd: np.ndarray
    regular_kd: np.ndarray
    general_teacher: np.ndarray
    general_kd: np.ndarray
    recovery: np.ndarray
    salience: np.ndarray
    spec: Table2Spec = field(default_factory=Table2Spec)

    def __len__(self) -> int:
        """Number of Table 2 rows (Venn diagrams)."""
        return len(self.rows)

    @classmethod
    def from_run(cls, protocol: Protocol, points: Sequence[Any], arrays: dict[str, np.ndarray], *,
                 seeds: np.ndarray, root_seed: int, **unused: Any) -> Table2Result:
        """The result of the engine's arrays (points, seeds, *shape) for Table 2 ``points``
        (:class:`~mfh_sim.protocols.table2.Table2Point`, all with one spec): the result type the
        Table 2 protocol names (see :func:`mfh_sim.engine.run` and :func:`mfh_sim.load`)."""
        spec = points[0].spec
        return cls(
            rows=tuple((p.a_only, p.shared) for p in points),
            modes=tuple(spec.modes),
            seeds=np.asarray(seeds),
            root_seed=int(root_seed),
            counts=tuple(p.count for p in points),
            regular_teacher=arrays["regular_teacher"],
            no_kd=arrays["no_kd"],
            regular_kd=arrays["regular_kd"],
            general_teacher=np.moveaxis(arrays["general_teacher"], 2, 1),
            general_kd=np.moveaxis(arrays["general_kd"], 2, 1),
            recovery=arrays["recovery"],
            salience=arrays["salience"],
            spec=spec,
        )

    @property
    def gammas(self) -> tuple[float, ...]:
        """gamma of the regular teacher per row: shared / (shared + a_only)."""
        return tuple(g / (a + g) for a, g in self.rows)

    @property
    def chance_recovery(self) -> tuple[float, ...]:
        """Expected recovery of a random top-|G| choice per row: |G| / dim_a."""
        return tuple(g / self.spec.dim_a for _, g in self.rows)

    def shared_channels(self, row: int) -> np.ndarray:
        """Indices of the truly shared channels of x^a in row ``row``."""
        a_only, shared = self.rows[row]
        return table2_venn(a_only, shared, self.spec.dim_a, self.spec.dim_b).channels_of("G", "a")

    def specific_channels(self, row: int) -> np.ndarray:
        """Indices of the a-specific decisive channels of x^a in row ``row``."""
        a_only, shared = self.rows[row]
        return table2_venn(a_only, shared, self.spec.dim_a, self.spec.dim_b).channels_of("A", "a")

    def salience_panels(self) -> dict[str, Any]:
        """Keywords of :func:`mfh_sim.plots.salience.plot_salience` for one panel per row: the
        per-seed salience, the shared and the a-specific channels, and a title."""
        rows = range(len(self.rows))
        return {
            "salience": [self.salience[r] for r in rows],
            "shared": [self.shared_channels(r) for r in rows],
            "specific": [self.specific_channels(r) for r in rows],
            "titles": [f"gamma = {gamma:.2f} (A = {a}, G = {g})" for gamma, (a, g) in zip(self.gammas, self.rows)],
        }

    def _mode_index(self, mode: str) -> int:
        if mode not in self.modes:
            raise ValueError(f"mode={mode!r} is not allowed: this result holds {self.modes}")
        return self.modes.index(mode)

    def values(self, column: str, mode: str | None = None) -> np.ndarray:
        """Per-seed values (rows, seeds) of ``column`` (one of the five accuracy columns or
        'recovery'); ``mode`` picks the selection for the two modality-general columns."""
        if column in ("general_teacher", "general_kd"):
            if mode is None:
                raise ValueError(f"column={column!r} needs mode=one of {self.modes}")
            return getattr(self, column)[:, self._mode_index(mode)]
        if column in ("regular_teacher", "no_kd", "regular_kd", "recovery"):
            return getattr(self, column)
        raise ValueError(
            f"column={column!r} is not allowed: use one of {_COLUMNS + ('recovery',)}"
        )

    def summary(self, column: str, mode: str | None = None) -> list[Summary]:
        """Mean and 95% t-interval of ``column`` per row (diverged runs left out)."""
        values = self.values(column, mode)
        return [summarize(values[r], name=f"{column} row {self.rows[r]}") for r in range(len(self.rows))]

    def difference(
        self, column: str, baseline: str, mode: str | None = None, baseline_mode: str | None = None
    ) -> list[Summary]:
        """Paired per-seed difference ``column - baseline`` per row, with its 95% t-interval."""
        first = self.values(column, mode).astype(np.float64)
        second = self.values(baseline, baseline_mode).astype(np.float64)
        return [
            summarize(first[r] - second[r], name=f"{column} - {baseline} row {self.rows[r]}")
            for r in range(len(self.rows))
        ]

    def general_minus_regular_kd(self, mode: str) -> list[Summary]:
        """Paired (modality-general KD - regular KD) per row: what the restricted teacher adds
        over the regular one, for the selection ``mode``."""
        return self.difference("general_kd", "regular_kd", mode)

    def kd_gain(self, mode: str) -> list[Summary]:
        """Paired KD gain (modality-general KD - no KD) per row: what distilling from the
        modality-general teacher of ``mode`` adds over the student trained alone.  (Before
        version 0.2 this name meant :meth:`general_minus_regular_kd`.)"""
        return self.difference("general_kd", "no_kd", mode)

    # ------------------------------------------------------------------------ tables
    def table(self) -> list[dict[str, Any]]:
        """One dict per (row, mode): counts, gamma, means (fractions) and the paired difference
        modality-general KD - regular KD with its 95% interval."""
        out = []
        means = {
            name: [s.mean for s in self.summary(name)]
            for name in ("regular_teacher", "no_kd", "regular_kd")
        }
        recovery = [s.mean for s in self.summary("recovery")] if self._has_recovery() else None
        for mode in self.modes:
            general_teacher = self.summary("general_teacher", mode)
            general_kd = self.summary("general_kd", mode)
            gain = self.general_minus_regular_kd(mode)
            for r, (a_only, shared) in enumerate(self.rows):
                out.append({
                    "mode": mode,
                    "gamma": self.gammas[r],
                    "a_only": a_only,
                    "shared": shared,
                    "selected": self.counts[r],
                    "seeds": len(self.seeds),
                    "regular_teacher": means["regular_teacher"][r],
                    "general_teacher": general_teacher[r].mean,
                    "no_kd": means["no_kd"][r],
                    "regular_kd": means["regular_kd"][r],
                    "general_kd": general_kd[r].mean,
                    "general_minus_regular_kd": gain[r].mean,
                    "general_minus_regular_kd_low": gain[r].low,
                    "general_minus_regular_kd_high": gain[r].high,
                    "recovery": recovery[r] if recovery is not None else math.nan,
                    "chance_recovery": self.chance_recovery[r],
                })
        return out

    def _has_recovery(self) -> bool:
        return bool(np.isfinite(self.recovery).any())

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`table` as CSV (accuracies and rates as fractions in [0, 1]; empty = NaN)."""
        return write_csv(path, self.table())

    def to_markdown(self) -> str:
        """The table in percent, one block of rows per mode, as GitHub-flavoured Markdown."""
        head = (
            "| mode | gamma | (A, G) | regular teacher | mod.-general teacher | no KD | regular KD "
            "| mod.-general KD | mod.-general KD - regular KD [95% CI] | recovery (chance) |"
        )
        lines = [head, "|" + "---|" * 10]
        for row in self.table():
            lines.append(
                f"| {row['mode']} | {row['gamma']:.2f} | ({row['a_only']}, {row['shared']}) "
                f"| {_pct(row['regular_teacher'])} | {_pct(row['general_teacher'])} "
                f"| {_pct(row['no_kd'])} | {_pct(row['regular_kd'])} | {_pct(row['general_kd'])} "
                f"| {_signed(row['general_minus_regular_kd'])} "
                f"[{_signed(row['general_minus_regular_kd_low'])}, "
                f"{_signed(row['general_minus_regular_kd_high'])}] "
                f"| {_pct(row['recovery'])} ({_pct(row['chance_recovery'])}) |"
            )
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        lines = [
            f"Table 2 (modality-general teacher): {len(self.rows)} rows x {len(self.seeds)} seeds, "
            "accuracies in %, gen.-reg. KD = mod.-general KD - regular KD (paired, 95% CI)",
            f"{'mode':>17} {'gamma':>5} {'reg.T':>6} {'gen.T':>6} {'noKD':>6} {'regKD':>6} "
            f"{'genKD':>6} {'gen.-reg. KD [95% CI]':>22} {'recov.':>7} {'chance':>6}",
        ]
        for row in self.table():
            gain = (f"{_signed(row['general_minus_regular_kd'])} [{_signed(row['general_minus_regular_kd_low'])},"
                    f"{_signed(row['general_minus_regular_kd_high'])}]")
            lines.append(
                f"{row['mode']:>17} {row['gamma']:5.2f} {_pct(row['regular_teacher']):>6} "
                f"{_pct(row['general_teacher']):>6} {_pct(row['no_kd']):>6} "
                f"{_pct(row['regular_kd']):>6} {_pct(row['general_kd']):>6} "
                f"{gain:>22} {_pct(row['recovery']):>7} {_pct(row['chance_recovery']):>6}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else number_text(100 * value, ".2f")


def _signed(value: float) -> str:
    return "n/a" if not np.isfinite(value) else number_text(100 * value, "+.2f")
