"""Result containers: one Venn diagram (:class:`SimulationResult`) or a grid (:class:`SweepResult`).

Per-seed accuracies are fractions in [0, 1]; ``delta = kd_acc - no_kd_acc`` is the KD gain.
Summaries leave out diverged runs (NaN) with a warning.  A :class:`SweepResult` saves to a
``.npz`` of plain arrays plus a JSON description (loadable with ``allow_pickle=False``, so opening
a results file cannot run code).
"""

from __future__ import annotations

import json
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mfh_sim.config import SimConfig
from mfh_sim.stats import Summary, summarize
from mfh_sim.venn import VennConfig
from mfh_sim.validation import json_default

ACCURACIES = ("teacher_acc", "no_kd_acc", "kd_acc")
FLAGS = ("teacher_diverged", "no_kd_diverged", "kd_diverged")
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on, and JAX's backend."""
    import flax
    import jax
    import jaxlib
    import optax

    from mfh_sim import __version__

    return {
        "mfh_sim": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
    }


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
        """:class:`Summary` of ``teacher_acc``, ``no_kd_acc``, ``kd_acc`` or ``delta`` (paired)."""
        if name not in ACCURACIES + ("delta",):
            raise ValueError(f"name={name!r} is not allowed: use one of {ACCURACIES + ('delta',)}")
        return summarize(getattr(self, name), name=name)

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
            f"{'':>10} {'mean %':>8} {'std':>6} {'95% CI':>17}" + ("   theory %" if self.theory else ""),
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
                lines.append(row)
        if self.n_diverged:
            lines.append(f"{self.n_diverged} seeds diverged and are excluded from the summaries")
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
                for name in ACCURACIES + ("delta",):
                    values = self.delta[index] if name == "delta" else self.arrays[name][index]
                    s = summarize(values)
                    row.update({f"{name}_mean": s.mean, f"{name}_std": s.std,
                                f"{name}_low": s.low, f"{name}_high": s.high})
                    if self.theory is not None and name in self.theory:
                        row[f"{name}_theory"] = float(self.theory[name][index])
                flags = [self.arrays[f][index] for f in FLAGS if f in self.arrays]
                # A run counts once, whichever of its trainings diverged.
                row["n_diverged"] = int(np.any(np.stack(flags), axis=0).sum()) if flags else 0
                rows.append(row)
        diverged = self.n_diverged
        if diverged:
            warnings.warn(
                f"{diverged} of {self.arrays['kd_acc'].size} runs diverged (non-finite loss) and are "
                "excluded from the summaries (column n_diverged)", RuntimeWarning, stacklevel=2,
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
        """Write :meth:`summary` as CSV (accuracies as fractions)."""
        rows = self.summary()
        path = Path(path)
        columns = list(rows[0])
        with path.open("w") as handle:
            handle.write(",".join(columns) + "\n")
            for row in rows:
                handle.write(",".join(_csv_cell(row.get(c)) for c in columns) + "\n")
        return path

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
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as handle:
            np.savez(handle, **payload)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SweepResult":
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
                f"{cells} {row['gamma']:6.3f} {row['alpha']:6.3f} {row['beta']:6.3f} {100 * row['teacher_acc_mean']:8.2f} "
                f"{100 * row['no_kd_acc_mean']:8.2f} {100 * row['kd_acc_mean']:8.2f} "
                f"{100 * row['delta_mean']:+6.2f} [{100 * row['delta_low']:+.2f},{100 * row['delta_high']:+.2f}]"
            )
        diverged = self.n_diverged
        if diverged:
            lines.append(f"{diverged} runs diverged (non-finite loss) and are excluded from the summaries")
        return "\n".join(lines)

    __repr__ = __str__


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 10))
    text = str(value)
    return f'"{text}"' if "," in text else text
