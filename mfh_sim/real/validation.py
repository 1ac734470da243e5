"""Estimator v2 against the truth: simulated diagrams drawn at random across the space, in and
out of the generator's model, through :func:`mfh_sim.generate` (the simulator's own data)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfh_sim.real.estimator import QUANTITIES, estimate
from mfh_sim.validation import require_integer

#: The settings a diagram is drawn in: the generator's model, and four departures from it.
SETTINGS = ("in_model", "anisotropic", "correlated_noise", "nonlinear", "separable")


def simulated_data(config, setting: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(x_a, x_b, y, true shares) of ``config`` in ``setting`` (:data:`SETTINGS`): the generator's
    data, then for 'anisotropic' every channel scaled by a log-uniform factor in [0.1, 10];
    'correlated_noise' the channels mixed by a random orthogonal-plus-shear map within each view
    (Mahalanobis-invariant only up to the noise it mixes in); 'nonlinear' the generator's tanh
    mixing (depth 2, strength 0.7); 'separable' only samples with |w.z| / ||w|| > 0.5 kept."""
    from mfh_sim.generation import generate

    if setting not in SETTINGS:
        raise ValueError(f"setting={setting!r} is not allowed: use one of {SETTINGS}")
    knobs = {k: v for k, v in config.as_dict().items() if k not in ("n_train",)}
    if setting == "nonlinear":
        knobs.update(mixing_depth=2, mixing_strength=0.7)
    size = 3 * n if setting == "separable" else n
    data = generate(n=size, seed=seed, **knobs)
    x_a, x_b, y = data.x_a.astype(np.float64), data.x_b.astype(np.float64), data.y
    rng = np.random.default_rng([seed, SETTINGS.index(setting)])
    if setting == "anisotropic":
        x_a = x_a * np.exp(rng.uniform(np.log(0.1), np.log(10), x_a.shape[1]))
        x_b = x_b * np.exp(rng.uniform(np.log(0.1), np.log(10), x_b.shape[1]))
    elif setting == "correlated_noise":
        mix = lambda d: (np.linalg.qr(rng.normal(size=(d, d)))[0]
                         @ (np.eye(d) + 0.5 * np.triu(rng.normal(size=(d, d)), 1)))
        x_a, x_b = x_a @ mix(x_a.shape[1]), x_b @ mix(x_b.shape[1])
    elif setting == "separable":
        w = data.w / np.linalg.norm(data.w)
        keep = np.flatnonzero(np.abs(data.latents @ w) > 0.5)[:n]
        x_a, x_b, y = x_a[keep], x_b[keep], y[keep]
    return x_a, x_b, y, data.shares


@dataclass
class EstimatorCheck:
    """Per diagram and setting: the truth and the estimate (with bounds)."""

    rows: list[dict]

    def errors(self, setting: str | None = None) -> dict[str, dict[str, float]]:
        """Per quantity: bias, RMSE, the 95% interval's coverage, the share of zero-width
        intervals, over the rows of ``setting`` (default all)."""
        rows = [r for r in self.rows if setting is None or r["setting"] == setting]
        out = {}
        for k in QUANTITIES:
            err = np.array([r[f"est_{k}"] - r[f"true_{k}"] for r in rows])
            inside = np.array([r[f"est_{k}_low"] - 1e-9 <= r[f"true_{k}"] <= r[f"est_{k}_high"] + 1e-9 for r in rows])
            zero = np.array([r[f"est_{k}_high"] - r[f"est_{k}_low"] < 1e-9 for r in rows])
            out[k] = {"bias": float(np.mean(err)), "rmse": float(np.sqrt(np.mean(err**2))),
                      "coverage": float(np.mean(inside)), "zero_width": float(np.mean(zero)), "n": len(rows)}
        out["boundary"] = {"share": float(np.mean([r["at_boundary"] for r in rows]))}
        return out

    def table(self) -> str:
        lines = ["| setting | diagrams | gamma bias / RMSE / coverage | alpha bias / RMSE / coverage | "
                 "beta bias / RMSE / coverage | p_U RMSE / coverage | at boundary |", "|---|---|---|---|---|---|---|"]
        for setting in dict.fromkeys(r["setting"] for r in self.rows):
            e = self.errors(setting)
            cell = lambda k, e=e: f"{e[k]['bias']:+.3f} / {e[k]['rmse']:.3f} / {100 * e[k]['coverage']:.0f}%"
            lines.append(f"| {setting} | {e['gamma']['n']} | {cell('gamma')} | {cell('alpha')} | {cell('beta')} | "
                         f"{e['p_u']['rmse']:.3f} / {100 * e['p_u']['coverage']:.0f}% | "
                         f"{100 * e['boundary']['share']:.0f}% |")
        return "\n".join(lines)

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        keys = list(self.rows[0])
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(keys)
            for r in self.rows:
                writer.writerow([v if isinstance(v, str) else f"{float(v):.6g}" for v in (r[k] for k in keys)])
        return path


def validate(diagrams: int = 200, *, seed: int = 0, n: int = 400, settings=SETTINGS, n_boot: int = 100
             ) -> EstimatorCheck:
    """Estimator v2 on ``diagrams`` random diagrams
    (:func:`mfh_sim.experiments.families.validation_family`) in each of
    ``settings``, ``n`` samples each: the in-model rows on every diagram, each out-of-model
    setting on a fifth of them (at least 3)."""
    diagrams = require_integer("diagrams", diagrams, 3)
    from mfh_sim.experiments.families import validation_family

    family = validation_family(diagrams, seed)
    rows = []
    for setting in settings:
        chosen = family if setting == "in_model" else family[: max(3, diagrams // 5)]
        for i, config in enumerate(chosen):
            x_a, x_b, y, truth = simulated_data(config, setting, n, seed=1000 * seed + i)
            est = estimate(x_a, x_b, y, seed=seed + i, n_boot=n_boot)
            row = {"setting": setting, "diagram": i, "hyperplane": config.hyperplane}
            row.update({f"true_{k}": truth[k] for k in QUANTITIES})
            for k in QUANTITIES:
                row[f"est_{k}"], row[f"est_{k}_low"], row[f"est_{k}_high"] = (
                    getattr(est, k), getattr(est, f"{k}_low"), getattr(est, f"{k}_high"))
            row["at_boundary"] = float(est.at_boundary)
            rows.append(row)
    if not rows or not all(math.isfinite(r["est_gamma"]) for r in rows):
        raise RuntimeError("the estimator returned a non-finite gamma on simulated data")
    return EstimatorCheck(rows)
