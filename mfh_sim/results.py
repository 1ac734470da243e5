"""Result containers: one Venn diagram (:class:`SimulationResult`) or a grid (:class:`SweepResult`).

Per-seed accuracies are fractions in [0, 1]; ``delta = kd_acc - no_kd_acc`` is the KD gain.
Summaries leave out diverged runs (NaN) with a warning.  A :class:`SweepResult` saves to a
``.npz`` of plain arrays plus a JSON description (loadable with ``allow_pickle=False``, so opening
a results file cannot run code).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.config import SimConfig
from mfh_sim.protocols.table2 import Table2Spec, table2_venn
from mfh_sim.stats import Summary, summarize
from mfh_sim.validation import json_default
from mfh_sim.venn import VennConfig

ACCURACIES = ("teacher_acc", "no_kd_acc", "kd_acc")
FLAGS = ("teacher_diverged", "no_kd_diverged", "kd_diverged")
FORMAT_VERSION = 1




def complete_seeds(teacher: np.ndarray, no_kd: np.ndarray, kd: np.ndarray) -> np.ndarray:
    """Mask of the seeds where teacher, no-KD and KD student all trained to a finite result.

    Divergence is caused by the treatment (a KD student fails where its no-KD twin does not, or
    its teacher fails), so a summary that dropped NaNs column by column would compare different
    seeds.  Every summary is taken over these seeds only, so that kd_acc_mean - no_kd_acc_mean
    equals delta_mean exactly.
    """
    return np.isfinite(teacher) & np.isfinite(no_kd) & np.isfinite(kd)


def divergence_counts(teacher: np.ndarray, no_kd: np.ndarray, kd: np.ndarray) -> dict[str, int]:
    """Seeds (last axis) on which each model has no finite result: ``teacher_diverged``,
    ``no_kd_diverged``, ``kd_diverged`` (a KD student whose teacher diverged counts too), and
    ``n_complete``, the seeds where all three are finite."""
    return {"teacher_diverged": int((~np.isfinite(teacher)).sum()),
            "no_kd_diverged": int((~np.isfinite(no_kd)).sum()),
            "kd_diverged": int((~np.isfinite(kd)).sum()),
            "n_complete": int(complete_seeds(teacher, no_kd, kd).sum())}


def _divergence_warning(where: str, counts: dict[str, int], seeds: int) -> str:
    return (f"{where}: {seeds - counts['n_complete']} of {seeds} seeds have a diverged model "
            f"(teacher {counts['teacher_diverged']}, no-KD {counts['no_kd_diverged']}, KD "
            f"{counts['kd_diverged']}); every summary is over the {counts['n_complete']} seeds where "
            "all three are finite")


def _paired_delta(kd: np.ndarray, no_kd: np.ndarray) -> np.ndarray:
    return kd.astype(np.float64) - no_kd.astype(np.float64)


@dataclass
class SimulationResult:
    """Accuracies of teacher, no-KD student and KD student for one config over many seeds.

    Attributes:
        config: the realised :class:`SimConfig` (``config.venn`` holds the realised counts and
            ratios).
        teacher_acc, no_kd_acc, kd_acc: (seeds,) test accuracies in [0, 1]; NaN if diverged.
        delta: (seeds,) paired KD gain ``kd_acc - no_kd_acc``.
        seeds: the seed indices; root_seed: the root of every key.
        theory: the theory's prediction for the same config (same keys), or None if the theory
            does not cover it.
        versions: package versions and backend that produced the numbers.
    """

    config: SimConfig
    teacher_acc: np.ndarray
    no_kd_acc: np.ndarray
    kd_acc: np.ndarray
    seeds: np.ndarray
    root_seed: int
    teacher_diverged: np.ndarray | None = None
    no_kd_diverged: np.ndarray | None = None
    kd_diverged: np.ndarray | None = None
    theory: dict[str, Any] | None = None
    theory_declined: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    requested: dict[str, Any] = field(default_factory=dict)

    @property
    def delta(self) -> np.ndarray:
        return _paired_delta(self.kd_acc, self.no_kd_acc)

    @property
    def venn(self) -> VennConfig:
        return self.config.venn

    @property
    def gamma(self) -> float:
        return self.config.venn.gamma

    @property
    def alpha(self) -> float:
        return self.config.venn.alpha

    @property
    def beta(self) -> float:
        return self.config.venn.beta

    def summary(self, name: str) -> Summary:
        """:class:`Summary` of ``teacher_acc``, ``no_kd_acc``, ``kd_acc`` or ``delta`` (paired),
        over the seeds where all three models are finite (:func:`complete_seeds`; a warning
        naming the config and the per-model counts when any seed is left out)."""
        if name not in ACCURACIES + ("delta",):
            raise ValueError(f"name={name!r} is not allowed: use one of {ACCURACIES + ('delta',)}")
        complete = complete_seeds(self.teacher_acc, self.no_kd_acc, self.kd_acc)
        if not complete.all():
            warnings.warn(_divergence_warning(self._where(), self.divergence, complete.size),
                          RuntimeWarning, stacklevel=2)
        return summarize(np.asarray(getattr(self, name))[complete], name=name)

    @property
    def divergence(self) -> dict[str, int]:
        """Per-model divergence counts over the seeds (:func:`divergence_counts`)."""
        return divergence_counts(self.teacher_acc, self.no_kd_acc, self.kd_acc)

    def _where(self) -> str:
        return _config_label(self.config)

    @property
    def n_diverged(self) -> int:
        flags = [f for f in (self.teacher_diverged, self.no_kd_diverged, self.kd_diverged) if f is not None]
        return int(np.any(np.stack(flags), axis=0).sum()) if flags else 0

    def reproduce(self) -> dict[str, Any]:
        """What is needed to reproduce these numbers: config, seeds, root seed and versions."""
        return {
            "config": self.config.as_dict(),
            "seeds": [int(s) for s in self.seeds],
            "root_seed": self.root_seed,
            "versions": self.versions,
        }

    def __str__(self) -> str:
        venn = self.config.venn
        lines = [
            f"mfh_sim simulation: gamma={venn.gamma:.3f}, alpha={venn.alpha:.3f}, beta={venn.beta:.3f} "
            f"(G={venn.shared}, A={venn.a_only}, B={venn.b_only}, unseen={venn.unseen}), "
            f"n_train={self.config.n_train}, {len(self.seeds)} seeds",
            f"{'':>10} {'mean %':>8} {'std':>6} {'95% CI':>17}"
            + (f"   {'theory %':>8}   {'limit %':>8}" if self.theory else ""),
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for label, name in (("teacher", "teacher_acc"), ("no-KD", "no_kd_acc"),
                                ("KD", "kd_acc"), ("KD gain", "delta")):
                s = self.summary(name)
                row = (f"{label:>10} {100 * s.mean:8.2f} {100 * s.std:6.2f} "
                       f"[{100 * s.low:6.2f}, {100 * s.high:6.2f}]")
                if self.theory and self.theory.get(name) is not None:
                    row += f"   {100 * self.theory[name]:8.2f}"
                    limit = self.theory.get(f"{name}_limit")
                    row += f"   {100 * limit:8.2f}" if limit is not None else ""
                lines.append(row)
        if self.theory:
            lines.append(f"theory %: the finite-sample theory at n_train={self.config.n_train} "
                         "(mfh_sim.theory.predict); limit %: the same with infinite data")
        elif self.theory_declined:
            lines.append(f"theory: declined, {self.theory_declined}")
        counts = self.divergence
        if counts["n_complete"] < len(self.seeds):
            lines.append(f"diverged: teacher {counts['teacher_diverged']}, no-KD {counts['no_kd_diverged']}, "
                         f"KD {counts['kd_diverged']} of {len(self.seeds)} seeds; every row is over the "
                         f"{counts['n_complete']} seeds where all three are finite")
        return "\n".join(lines)

    __repr__ = __str__


@dataclass
class SweepResult:
    """Results of a grid of configs times seeds.

    ``teacher_acc``, ``no_kd_acc``, ``kd_acc``, ``delta`` and the divergence flags have shape
    (grid points, seeds).  ``grid[i]`` holds the keyword values that define point ``i``; any grid
    keyword or config attribute reads as an array over points (``result.gamma``,
    ``result.n_train``, ...; ratios are the realised ones).  ``theory`` (when available) maps
    each accuracy name to an array over points.
    """

    configs: list[SimConfig]
    grid: list[dict[str, Any]]
    arrays: dict[str, np.ndarray]
    seeds: np.ndarray
    root_seed: int
    theory: dict[str, np.ndarray] | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def delta(self) -> np.ndarray:
        return _paired_delta(self.arrays["kd_acc"], self.arrays["no_kd_acc"])

    @property
    def n_diverged(self) -> int:
        """Number of (grid point, seed) runs in which any of the three trainings diverged."""
        flags = [self.arrays[f] for f in FLAGS if f in self.arrays]
        return int(np.any(np.stack(flags), axis=0).sum()) if flags else 0

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("__") or name in ("configs", "grid", "arrays"):
            raise AttributeError(name)
        if name in self.arrays:
            return self.arrays[name]
        if self.grid and all(name in point for point in self.grid) and name not in ("gamma", "alpha", "beta"):
            return np.asarray([point[name] for point in self.grid])
        config = self.configs[0] if self.configs else None
        if config is not None and (hasattr(config, name) or hasattr(config.venn, name)):
            owner = (lambda c: c) if hasattr(config, name) else (lambda c: c.venn)
            return np.asarray([getattr(owner(c), name) for c in self.configs])
        raise AttributeError(f"SweepResult has no field {name!r}")

    def point(self, index: int) -> SimulationResult:
        """Grid point ``index`` as a :class:`SimulationResult`."""
        theory = None
        if self.theory is not None:
            theory = {k: float(v[index]) for k, v in self.theory.items()}
        return SimulationResult(
            config=self.configs[index],
            **{name: self.arrays[name][index] for name in ACCURACIES + FLAGS},
            seeds=self.seeds,
            root_seed=self.root_seed,
            theory=theory,
            versions=self.versions,
            requested=self.grid[index],
        )

    def summary(self) -> list[dict[str, Any]]:
        """One row per grid point: its grid values, ratios, and mean/std/CI of each accuracy."""
        rows = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for index, config in enumerate(self.configs):
                row: dict[str, Any] = dict(self.grid[index])
                row.update(gamma=config.venn.gamma, alpha=config.venn.alpha, beta=config.venn.beta)
                teacher, no_kd, kd = (self.arrays[name][index] for name in ACCURACIES)
                complete = complete_seeds(teacher, no_kd, kd)
                for name in ACCURACIES + ("delta",):
                    values = self.delta[index] if name == "delta" else self.arrays[name][index]
                    s = summarize(values[complete])
                    row.update({f"{name}_mean": s.mean, f"{name}_std": s.std,
                                f"{name}_low": s.low, f"{name}_high": s.high})
                    if self.theory is not None and name in self.theory:
                        row[f"{name}_theory"] = float(self.theory[name][index])
                        if f"{name}_limit" in self.theory:
                            row[f"{name}_theory_limit"] = float(self.theory[f"{name}_limit"][index])
                flags = [self.arrays[f][index] for f in FLAGS if f in self.arrays]
                # A run counts once, whichever of its trainings diverged.
                row["n_diverged"] = int(np.any(np.stack(flags), axis=0).sum()) if flags else 0
                row.update(divergence_counts(teacher, no_kd, kd))
                rows.append(row)
        diverged = self.n_diverged
        if diverged:
            named = [f"{_point_label(self.grid[i], self.configs[i])} ({_divergence_text(r)})"
                     for i, r in enumerate(rows) if r["n_complete"] < len(self.seeds)]
            warnings.warn(
                f"{diverged} of {self.arrays['kd_acc'].size} runs diverged (non-finite loss): "
                + "; ".join(named[:5]) + ("; ..." if len(named) > 5 else "")
                + ". Each point's summaries are over its seeds where teacher, no-KD and KD are all "
                "finite (columns n_complete, teacher_diverged, no_kd_diverged, kd_diverged)",
                RuntimeWarning, stacklevel=2,
            )
        return rows

    def to_pandas(self, tidy: bool = True):
        """A DataFrame: one row per (grid point, seed) if ``tidy``, else :meth:`summary`'s rows."""
        try:
            import pandas as pd
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas needs pandas: pip install 'mfh-sim[pandas]'") from error
        if not tidy:
            return pd.DataFrame(self.summary())
        rows = []
        for index, config in enumerate(self.configs):
            base = {"point": index, **self.grid[index], "gamma": config.venn.gamma,
                    "alpha": config.venn.alpha, "beta": config.venn.beta}
            for column, seed in enumerate(self.seeds):
                row = dict(base, seed=int(seed))
                for name in ACCURACIES + FLAGS:
                    row[name] = self.arrays[name][index, column].item()
                row["delta"] = float(self.delta[index, column])
                rows.append(row)
        return pd.DataFrame(rows)

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`summary` as CSV (accuracies as fractions; empty = missing)."""
        return write_csv(path, self.summary())

    # ------------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save to ``path`` (a ``.npz``; arrays only, metadata as a JSON string inside)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        meta = {
            "format": FORMAT_VERSION,
            "configs": [c.as_dict() for c in self.configs],
            "grid": self.grid,
            "root_seed": self.root_seed,
            "versions": self.versions,
        }
        payload = {name: np.asarray(value) for name, value in self.arrays.items()}
        payload["seeds"] = np.asarray(self.seeds)
        if self.theory is not None:
            for name, value in self.theory.items():
                payload[f"theory__{name}"] = np.asarray(value, dtype=np.float64)
        payload["meta"] = np.asarray(json.dumps(meta, default=json_default))
        import io

        from mfh_sim.store import atomic_write

        buffer = io.BytesIO()
        np.savez(buffer, **payload)
        return atomic_write(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> SweepResult:
        """Load a result written by :meth:`save` (never unpickles anything)."""
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in data.files if k not in ("meta", "seeds") and not k.startswith("theory__")}
            theory = {k[len("theory__"):]: data[k] for k in data.files if k.startswith("theory__")} or None
            seeds = data["seeds"]
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: format {meta.get('format')!r} is not supported (expected {FORMAT_VERSION})")
        return cls(
            configs=[SimConfig.from_dict(c) for c in meta["configs"]],
            grid=meta["grid"],
            arrays=arrays,
            seeds=seeds,
            root_seed=meta["root_seed"],
            theory=theory,
            versions=meta["versions"],
        )

    def __str__(self) -> str:
        rows = self.summary()
        # Realised ratios are always shown; the grid's own ratio columns would repeat them.
        varied = list(dict.fromkeys(k for point in self.grid for k in point
                                    if k not in ("gamma", "alpha", "beta")))
        head = " ".join(f"{k:>10}" for k in varied)
        lines = [f"mfh_sim sweep: {len(self)} grid points x {len(self.seeds)} seeds (accuracies in %)",
                 f"{head} {'gamma':>6} {'alpha':>6} {'beta':>6} {'teacher':>8} {'no-KD':>8} {'KD':>8} {'KD gain':>16}"]
        for row in rows:
            cells = " ".join(f"{_short(row.get(k, '')):>10}" for k in varied)
            lines.append(
                f"{cells} {row['gamma']:6.3f} {row['alpha']:6.3f} {row['beta']:6.3f} "
                f"{100 * row['teacher_acc_mean']:8.2f} "
                f"{100 * row['no_kd_acc_mean']:8.2f} {100 * row['kd_acc_mean']:8.2f} "
                f"{100 * row['delta_mean']:+6.2f} [{100 * row['delta_low']:+.2f},{100 * row['delta_high']:+.2f}]"
            )
        diverged = self.n_diverged
        if diverged:
            lines.append(f"{diverged} runs diverged (non-finite loss); each point's row is over its seeds "
                         "where teacher, no-KD and KD are all finite:")
            for index, row in enumerate(rows):
                if row["n_complete"] < len(self.seeds):
                    lines.append(f"  {_point_label(self.grid[index], self.configs[index])}: "
                                 f"{_divergence_text(row)} of {len(self.seeds)} seeds")
        return "\n".join(lines)

    __repr__ = __str__


def _config_label(config: SimConfig) -> str:
    v = config.venn
    return (f"config gamma={v.gamma:.3f}, alpha={v.alpha:.3f}, beta={v.beta:.3f}, "
            f"n_train={config.n_train}, learning_rate={config.learning_rate}")


def _point_label(grid: dict[str, Any], config: SimConfig) -> str:
    shown = ", ".join(f"{k}={_short(v)}" for k, v in grid.items())
    return f"{shown} ({_config_label(config)})" if shown else _config_label(config)


def _divergence_text(row: dict[str, Any]) -> str:
    return (f"diverged: teacher {row['teacher_diverged']}, no-KD {row['no_kd_diverged']}, "
            f"KD {row['kd_diverged']}")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _csv_cell(value: Any) -> str:
    """One CSV cell: empty for None and non-finite floats, floats to 10 decimals (repr of the
    rounded value), text quoted if it holds a comma or a quote."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 10)) if math.isfinite(value) else ""
    text = str(value)
    return '"' + text.replace('"', '""') + '"' if ("," in text or '"' in text) else text


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` (dicts; the first row's keys are the columns) as CSV to ``path``, atomically.

    The one CSV writer of every result (:meth:`SweepResult.to_csv`, :meth:`Table2Result.to_csv`).
    """
    from mfh_sim.store import atomic_write

    if not rows:
        raise ValueError(f"rows=[] is not allowed: there is nothing to write to {str(path)!r}")
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join(_csv_cell(row.get(c)) for c in columns) for row in rows]
    return atomic_write(Path(path), "\n".join(lines) + "\n")


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
    def from_arrays(cls, points: Sequence[Any], arrays: dict[str, np.ndarray], seeds: np.ndarray,
                    root_seed: int) -> Table2Result:
        """The result of the engine's arrays (points, seeds, *shape) for Table 2 ``points``
        (:class:`~mfh_sim.protocols.table2.Table2Point`, all with one spec)."""
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
            lines.append(
                f"{row['mode']:>17} {row['gamma']:5.2f} {_pct(row['regular_teacher']):>6} "
                f"{_pct(row['general_teacher']):>6} {_pct(row['no_kd']):>6} "
                f"{_pct(row['regular_kd']):>6} {_pct(row['general_kd']):>6} "
                f"{_signed(row['general_minus_regular_kd']):>6} "
                f"[{_signed(row['general_minus_regular_kd_low'])},"
                f"{_signed(row['general_minus_regular_kd_high'])}] {_pct(row['recovery']):>7} "
                f"{_pct(row['chance_recovery']):>6}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.2f}"


def _signed(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:+.2f}"






# ---------------------------------------------------------------------------------- loading
def from_store(store, *, partial: bool = False):
    """The result held by an open :class:`mfh_sim.store.ResultStore` (see :func:`load`)."""
    arrays, keep = store.gather(partial=partial)
    manifest = store.manifest
    if store.protocol.name == "table2":
        return Table2Result.from_arrays(
            [store.points[i] for i in keep], {name: values[keep] for name, values in arrays.items()},
            store.seeds, int(manifest["root_seed"]),
        )
    theory = store.theory()
    if theory is not None:
        theory = {k: v[keep] for k, v in theory.items()}
    return SweepResult(
        configs=[store.points[i] for i in keep],
        grid=[manifest["grid"][i] for i in keep],
        arrays={name: values[keep] for name, values in arrays.items()},
        seeds=store.seeds,
        root_seed=int(manifest["root_seed"]),
        theory=theory,
        versions=manifest.get("versions", {}),
    )


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a CSV written by :func:`write_csv` (``to_csv`` of any result), one dict per
    row: integers and floats parsed, empty cells as NaN, text as text."""
    import csv

    def cell(text: str) -> Any:
        if text == "":
            return math.nan
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with Path(path).open(newline="") as handle:
        return [{k: cell(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def load(path: str | Path, *, partial: bool = False):
    """Open any saved result: a results directory (``sweep(out=DIR)`` or ``table2(out=DIR)``,
    see :mod:`mfh_sim.store`), a ``.npz`` written by :meth:`SweepResult.save`, or a ``.csv``
    written by ``to_csv`` (a summary: returned as its rows, see :func:`read_csv`).

    ``partial`` (directories only): return the points whose every seed is stored instead of
    refusing an unfinished directory.  Never unpickles anything.
    """
    path = Path(path)
    if path.is_dir():
        from mfh_sim.store import load as load_directory

        return load_directory(path, partial=partial)
    if not path.is_file():
        raise ValueError(f"path={str(path)!r} is not allowed: no such file or results directory")
    if path.suffix == ".csv":
        return read_csv(path)
    if path.suffix != ".npz":
        raise ValueError(
            f"path={str(path)!r} is not allowed: give a results directory, a .npz written by "
            "SweepResult.save or a .csv written by to_csv"
        )
    return SweepResult.load(path)
