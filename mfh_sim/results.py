"""Result containers: one Venn diagram (:class:`SimulationResult`), a grid (:class:`SweepResult`),
a saved summary table (:class:`SummaryTable`), and :func:`load`, which opens every file and folder
the package writes.

Per-seed accuracies are fractions in [0, 1]; ``delta = kd_acc - no_kd_acc`` is the KD gain.
Summaries leave out diverged runs (NaN) with a warning.  The results behave alike:
``summary(metric)`` (mean, standard deviation and 95% t-interval over seeds), ``to_pandas()``
(one row per run), ``save(path)`` (a ``.npz`` of plain arrays plus a JSON description, loadable
with ``allow_pickle=False``, so opening a results file cannot run code) and ``mfh_sim.load``.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.config import SimConfig
from mfh_sim.files import atomic_write, number_text, read_csv, write_csv
from mfh_sim.protocols import Protocol, resolve
from mfh_sim.stats import Summary, summarize
from mfh_sim.validation import json_default
from mfh_sim.venn import VennConfig

ACCURACIES = ("teacher_acc", "no_kd_acc", "kd_acc")
FLAGS = ("teacher_diverged", "no_kd_diverged", "kd_diverged")
#: What ``summary(metric)`` accepts: the three accuracies and the paired KD gain.
METRICS = ACCURACIES + ("delta",)
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


def _require_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not allowed: use one of {METRICS}")


def _tidy_rows(configs: Sequence[SimConfig], grid: Sequence[dict], arrays: dict[str, np.ndarray],
               seeds: np.ndarray) -> list[dict[str, Any]]:
    """One dict per (point, seed): the point's grid values and realised ratios, then every metric."""
    delta = _paired_delta(arrays["kd_acc"], arrays["no_kd_acc"])
    rows = []
    for index, config in enumerate(configs):
        base = {"point": index, **grid[index], "gamma": config.venn.gamma, "alpha": config.venn.alpha,
                "beta": config.venn.beta}
        for column, seed in enumerate(seeds):
            row = dict(base, seed=int(seed))
            for name in ACCURACIES + FLAGS:
                if name in arrays:
                    row[name] = arrays[name][index, column].item()
            row["delta"] = float(delta[index, column])
            rows.append(row)
    return rows


def _pandas():
    try:
        import pandas as pd
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas needs pandas: pip install 'mfh-sim[pandas]'") from error
    return pd


def _save_npz(path: str | Path, kind: str, configs: Sequence[SimConfig], grid: Sequence[dict],
              arrays: dict[str, np.ndarray], seeds: np.ndarray, root_seed: int,
              theory: dict[str, np.ndarray] | None, versions: dict[str, str]) -> Path:
    """Write a result as a ``.npz``: the arrays, and its description as JSON (no pickles)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    meta = {"format": FORMAT_VERSION, "kind": kind, "configs": [c.as_dict() for c in configs], "grid": list(grid),
            "root_seed": int(root_seed), "versions": versions}
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload["seeds"] = np.asarray(seeds)
    for name, value in (theory or {}).items():
        payload[f"theory__{name}"] = np.asarray(value, dtype=np.float64)
    payload["meta"] = np.asarray(json.dumps(meta, default=json_default))
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    return atomic_write(path, buffer.getvalue())


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

    def summary(self, metric: str) -> Summary:
        """:class:`Summary` of ``teacher_acc``, ``no_kd_acc``, ``kd_acc`` or ``delta`` (paired),
        over the seeds where all three models are finite (:func:`complete_seeds`; a warning
        naming the config and the per-model counts when any seed is left out)."""
        _require_metric(metric)
        complete = complete_seeds(self.teacher_acc, self.no_kd_acc, self.kd_acc)
        if not complete.all():
            warnings.warn(_divergence_warning(self._where(), self.divergence, complete.size),
                          RuntimeWarning, stacklevel=2)
        return summarize(np.asarray(getattr(self, metric))[complete], name=metric)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-seed metric as a (1, seeds) array (the layout of :attr:`SweepResult.arrays`)."""
        return {name: np.asarray(getattr(self, name))[None] for name in ACCURACIES + FLAGS
                if getattr(self, name) is not None}

    def to_pandas(self):
        """A DataFrame with one row per seed: the ratios, every accuracy, flag and the KD gain."""
        return _pandas().DataFrame(_tidy_rows([self.config], [self.requested], self.arrays, self.seeds))

    def save(self, path: str | Path) -> Path:
        """Save to ``path`` (a ``.npz``; arrays only, metadata as JSON inside); :func:`load` reads it."""
        theory = {k: np.asarray([v], np.float64) for k, v in self.theory.items()} if self.theory else None
        return _save_npz(path, "simulation", [self.config], [self.requested], self.arrays, self.seeds,
                         self.root_seed, theory, self.versions)

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
            f"mfh_sim simulation: {venn.ratios_text()} "
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
                row = (f"{label:>10} {_pct(s.mean, '8.2f')} {_pct(s.std, '6.2f')} "
                       f"[{_pct(s.low, '6.2f')}, {_pct(s.high, '6.2f')}]")
                if self.theory and self.theory.get(name) is not None:
                    row += f"   {_pct(self.theory[name], '8.2f')}"
                    limit = self.theory.get(f"{name}_limit")
                    row += f"   {_pct(limit, '8.2f')}" if limit is not None else ""
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
    each accuracy name to an array over points (NaN where the theory declines a config).
    """

    configs: list[SimConfig]
    grid: list[dict[str, Any]]
    arrays: dict[str, np.ndarray]
    seeds: np.ndarray
    root_seed: int
    theory: dict[str, np.ndarray] | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_run(cls, protocol: Protocol, points: Sequence[SimConfig], arrays: dict[str, np.ndarray], *,
                 seeds: np.ndarray, root_seed: int, grid: Sequence[dict] | None = None,
                 theory: dict[str, np.ndarray] | None = None, versions: dict[str, str] | None = None) -> SweepResult:
        """The result of the paper protocol's arrays (points, seeds) for ``points`` (the result type
        the protocol names, see :func:`mfh_sim.engine.run` and :func:`load`)."""
        return cls(configs=list(points), grid=list(grid) if grid is not None else [{} for _ in points],
                   arrays=dict(arrays), seeds=np.asarray(seeds), root_seed=int(root_seed), theory=theory,
                   versions=dict(versions or {}))

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

    def summary(self, metric: str | None = None) -> list[Summary] | list[dict[str, Any]]:
        """``summary(metric)``: one :class:`Summary` of ``metric`` (``teacher_acc``,
        ``no_kd_acc``, ``kd_acc`` or ``delta``) per grid point, each over the point's seeds where
        all three models are finite.  ``summary()``: :meth:`table`."""
        if metric is None:
            return self.table()
        _require_metric(metric)
        values = self.delta if metric == "delta" else self.arrays[metric]
        out = []
        for index in range(len(self)):
            complete = complete_seeds(*(self.arrays[name][index] for name in ACCURACIES))
            if not complete.all():
                counts = divergence_counts(*(self.arrays[name][index] for name in ACCURACIES))
                warnings.warn(_divergence_warning(_point_label(self.grid[index], self.configs[index]), counts,
                                                  complete.size), RuntimeWarning, stacklevel=2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out.append(summarize(values[index][complete], name=metric))
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per grid point: its grid values, ratios, the mean/std/CI of each accuracy and the
        KD gain, the theory's prediction beside them (``*_theory``, ``*_theory_limit``) and the
        divergence counts."""
        rows = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for index, config in enumerate(self.configs):
                row: dict[str, Any] = dict(self.grid[index])
                row.update(gamma=config.venn.gamma, alpha=config.venn.alpha, beta=config.venn.beta)
                teacher, no_kd, kd = (self.arrays[name][index] for name in ACCURACIES)
                complete = complete_seeds(teacher, no_kd, kd)
                for name in METRICS:
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
        """A DataFrame: one row per (grid point, seed) if ``tidy``, else :meth:`table`'s rows."""
        pd = _pandas()
        return pd.DataFrame(_tidy_rows(self.configs, self.grid, self.arrays, self.seeds) if tidy else self.table())

    def to_xarray(self):
        """An ``xarray.Dataset`` (the optional extra ``mfh-sim[xarray]``): every metric and ``delta``
        with dims (point, seed); the grid keywords, the realised ratios and the theory as
        coordinates and variables over ``point``.  A grid that is the full product of its varied
        keywords is unstacked into one dimension per keyword (then ``.sel(gamma=0.5)``,
        ``.mean("seed")``, ``.to_netcdf(...)`` work as usual)."""
        try:
            import xarray as xr
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("to_xarray needs xarray: pip install 'mfh-sim[xarray]'") from error
        data = {name: (("point", "seed"), values) for name, values in self.arrays.items()
                if np.ndim(values) == 2}
        data["delta"] = (("point", "seed"), self.delta)
        for name, values in (self.theory or {}).items():
            data[f"{name}_theory"] = (("point",), np.asarray(values, np.float64))
        varied = [k for k in dict.fromkeys(k for point in self.grid for k in point)
                  if all(k in point for point in self.grid)]
        coords: dict[str, Any] = {"seed": np.asarray(self.seeds), "point": np.arange(len(self))}
        for name in ("gamma", "alpha", "beta"):
            coords[f"realised_{name}" if name in varied else name] = ("point", getattr(self, name))
        for name in varied:
            values = [point[name] for point in self.grid]
            coords[name] = ("point", np.asarray([_coordinate(v) for v in values]))
        dataset = xr.Dataset(data, coords=coords,
                             attrs={"root_seed": int(self.root_seed), "mfh_sim": self.versions.get("mfh_sim", "")})
        everywhere = len(varied) == len({k for point in self.grid for k in point})
        combos = {tuple(_coordinate(point[k]) for k in varied) for point in self.grid}
        levels = [len({_coordinate(point[k]) for point in self.grid}) for k in varied]
        if varied and everywhere and len(combos) == len(self) == math.prod(levels):
            if len(varied) == 1:
                dataset = dataset.swap_dims(point=varied[0]).drop_vars("point")
            else:
                dataset = dataset.set_index(point=varied).unstack("point")
            dataset = dataset.transpose(*varied, "seed")
        return dataset

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`table` as CSV (accuracies as fractions; empty = missing)."""
        return write_csv(path, self.table())

    # ------------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save to ``path`` (a ``.npz``; arrays only, metadata as JSON inside); :func:`load` reads it."""
        return _save_npz(path, "sweep", self.configs, self.grid, self.arrays, self.seeds, self.root_seed,
                         self.theory, self.versions)

    def __str__(self) -> str:
        rows = self.table()
        # Realised ratios are always shown; the grid's own ratio columns would repeat them.
        varied = list(dict.fromkeys(k for point in self.grid for k in point
                                    if k not in ("gamma", "alpha", "beta")))
        head = " ".join(f"{k:>10}" for k in varied)
        theory = self.theory is not None and any(np.isfinite(self.theory.get("delta", [np.nan])))
        lines = [f"mfh_sim sweep: {len(self)} grid points x {len(self.seeds)} seeds (accuracies in %)",
                 f"{head} {'gamma':>6} {'alpha':>6} {'beta':>6} {'teacher':>8} {'no-KD':>8} {'KD':>8} {'KD gain':>16}"
                 + (f" | theory: {'teacher':>7} {'no-KD':>6} {'KD':>6} {'gain':>6}" if theory else "")]
        for row in rows:
            cells = " ".join(f"{_short(row.get(k, '')):>10}" for k in varied)
            line = (
                f"{cells} {row['gamma']:6.3f} {row['alpha']:6.3f} {row['beta']:6.3f} "
                f"{_pct(row['teacher_acc_mean'], '8.2f')} "
                f"{_pct(row['no_kd_acc_mean'], '8.2f')} {_pct(row['kd_acc_mean'], '8.2f')} "
                f"{_pct(row['delta_mean'], '+6.2f')} "
                f"[{_pct(row['delta_low'], '+.2f')},{_pct(row['delta_high'], '+.2f')}]"
            )
            if theory:
                line += (f" |         {_pct(row.get('teacher_acc_theory'), '7.2f')} "
                         f"{_pct(row.get('no_kd_acc_theory'), '6.2f')} {_pct(row.get('kd_acc_theory'), '6.2f')} "
                         f"{_pct(row.get('delta_theory'), '+6.2f')}")
            lines.append(line)
        if theory:
            lines.append("theory: the finite-sample prediction (mfh_sim.theory.predict); n/a where it declines the "
                         "config")
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


def _coordinate(value: Any) -> Any:
    """A grid value as an xarray coordinate: widths tuples and lists as text ("64x64")."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return value


def _config_label(config: SimConfig) -> str:
    v = config.venn
    return (f"config {v.ratios_text()}, "
            f"n_train={config.n_train}, learning_rate={config.learning_rate}")


def _point_label(grid: dict[str, Any], config: SimConfig) -> str:
    shown = ", ".join(f"{k}={_short(v)}" for k, v in grid.items())
    return f"{shown} ({_config_label(config)})" if shown else _config_label(config)


def _divergence_text(row: dict[str, Any]) -> str:
    return (f"diverged: teacher {row['teacher_diverged']}, no-KD {row['no_kd_diverged']}, "
            f"KD {row['kd_diverged']}")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return number_text(value, ".4g")
    return str(value)


def _pct(value: float | None, spec: str) -> str:
    """``value`` (a fraction) in percent, formatted by ``spec``; "n/a" for None and NaN; never "-0.00"."""
    if value is None or not np.isfinite(value):
        width = "".join(ch for ch in spec.split(".")[0] if ch.isdigit())
        return f"{'n/a':>{width}}" if width else "n/a"
    return number_text(100 * value, spec)


# -------------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class SummaryTable:
    """A summary written as CSV by a result's ``to_csv`` (one row per grid point or table row),
    read back by :func:`load`: ``rows`` (dicts, numbers parsed, NaN where empty) and
    ``columns``.  ``table[column]`` is that column as an array."""

    rows: tuple[dict[str, Any], ...]
    path: str = ""

    @property
    def columns(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> np.ndarray:
        if column not in self.columns:
            raise KeyError(f"column {column!r} is not in this table: it has {self.columns}")
        return np.asarray([row[column] for row in self.rows])

    def to_pandas(self):
        """The table as a DataFrame."""
        return _pandas().DataFrame(list(self.rows))

    def __str__(self) -> str:
        return f"mfh_sim summary table {self.path}: {len(self)} rows, columns {', '.join(self.columns)}"

    __repr__ = __str__


# ---------------------------------------------------------------------------------- loading
def from_store(store, *, partial: bool = False):
    """The result held by an open :class:`mfh_sim.store.ResultStore`: the result type its
    protocol names (:attr:`mfh_sim.protocols.Protocol.result`), built by its ``from_run``."""
    if not store.protocol.result:
        raise ValueError(f"protocol {store.protocol.name!r} names no result type to load its directory into")
    arrays, keep = store.gather(partial=partial)
    manifest = store.manifest
    theory = store.theory()
    return resolve(store.protocol.result).from_run(
        store.protocol, [store.points[i] for i in keep], {name: values[keep] for name, values in arrays.items()},
        seeds=store.seeds, root_seed=int(manifest["root_seed"]), grid=[manifest["grid"][i] for i in keep],
        theory={k: v[keep] for k, v in theory.items()} if theory is not None else None,
        versions=manifest.get("versions", {}),
    )


def _load_npz(path: Path) -> SimulationResult | SweepResult:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        arrays = {k: data[k] for k in data.files if k not in ("meta", "seeds") and not k.startswith("theory__")}
        theory = {k[len("theory__"):]: data[k] for k in data.files if k.startswith("theory__")} or None
        seeds = data["seeds"]
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: format {meta.get('format')!r} is not supported (expected {FORMAT_VERSION})")
    sweep = SweepResult(configs=[SimConfig.from_dict(c) for c in meta["configs"]], grid=meta["grid"], arrays=arrays,
                        seeds=seeds, root_seed=meta["root_seed"], theory=theory, versions=meta["versions"])
    return sweep.point(0) if meta.get("kind") == "simulation" else sweep


def load(path: str | Path, *, partial: bool = False):
    """Open any file or folder the package writes, as a result object:

    * a results directory (``sweep(out=DIR)``, ``table2(out=DIR)``, ``mfh-sim sweep --out DIR``,
      see :mod:`mfh_sim.store`): the result type its protocol names (a :class:`SweepResult`, a
      :class:`~mfh_sim.experiments.table2.Table2Result`);
    * a ``.npz`` written by ``save``: the :class:`SimulationResult` or :class:`SweepResult` saved;
    * a ``.csv`` written by ``to_csv`` (a summary): a :class:`SummaryTable`.

    ``partial`` (directories only): return the points whose every seed is stored instead of
    refusing an unfinished directory.  Never unpickles anything.
    """
    from mfh_sim.store import open_existing

    path = Path(path)
    if path.is_dir():
        return from_store(open_existing(path), partial=partial)
    if not path.is_file():
        raise ValueError(f"path={str(path)!r} is not allowed: no such file or results directory")
    if path.suffix == ".csv":
        return SummaryTable(tuple(read_csv(path)), str(path))
    if path.suffix != ".npz":
        raise ValueError(
            f"path={str(path)!r} is not allowed: give a results directory, a .npz written by "
            "save or a .csv written by to_csv"
        )
    return _load_npz(path)
