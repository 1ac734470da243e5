"""Estimate, predict, then measure: the rows of ``real_kd.csv`` and the predictors' scores.

A row is one (arm, task, teacher view, student view, label budget): the measured KD gain over the
splits with its corrected resampled t interval (:mod:`mfh_sim.stats`), the accuracies,
and the predictors a practitioner could compute before training the KD student, side by side.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.real.arms import run_points
from mfh_sim.real.estimator import estimate_views
from mfh_sim.real.sources import Task
from mfh_sim.stats import cluster_bootstrap, corrected_t_interval, weighted_partial_spearman, weighted_spearman
from mfh_sim.validation import require_integer

#: Splits run beyond ``splits`` for the pilot predictor (a cheap KD run on fresh splits).
PILOT_SPLITS = 2
#: Columns of real_kd.csv, in order.
COLUMNS = (
    "arm", "task", "source", "teacher_view", "student_view", "budget", "n_classes", "splits",
    "gain", "gain_low", "gain_high", "teacher_acc", "no_kd_acc", "kd_acc", "gap", "mimicability",
    "pilot_gain", "gamma_hat", "gamma_low", "gamma_high", "alpha_hat", "alpha_low", "alpha_high",
    "beta_hat", "beta_low", "beta_high", "p_u", "at_boundary", "gamma_design", "predicted_gain",
    "general_r2", "diverged",
)
#: Predictors of the gain: column -> label.
PREDICTORS = {
    "predicted_gain": "theory's predicted gain",
    "gamma_hat": "gamma_hat (estimator v2)",
    "teacher_acc": "teacher accuracy",
    "gap": "teacher - no-KD student accuracy",
    "mimicability": "mimicability (x^b probe agreeing with the teacher)",
    "pilot_gain": f"pilot KD run ({PILOT_SPLITS} fresh splits)",
}


def _arm_rows(points: Sequence, arrays: dict[str, np.ndarray], splits: int, tasks: dict[str, Task]) -> list[dict]:
    from mfh_sim.protocols.real import TEACHER_ARMS

    rows = []
    for i, p in enumerate(points):
        task = tasks[p.task]
        n_train = p.labels.size - p.n_test
        measured = slice(0, splits)
        pilot = slice(splits, splits + PILOT_SPLITS)
        common = {"task": p.task, "source": task.source, "teacher_view": p.teacher_view, "student_view": p.student_view,
                  "n_classes": p.n_classes, "splits": splits, "gamma_design": task.meta.get("gamma", math.nan),
                  "mimicability": float(np.nanmean(arrays["mimicability"][i, measured])),
                  "general_r2": float(np.nanmean(arrays["general_r2"][i, measured])),
                  "diverged": int(np.sum(arrays["diverged"][i, measured]))}
        families = [(arm, k) for k, arm in enumerate(TEACHER_ARMS)]
        if task.source == "semi_synthetic":
            families = [("semi_synthetic", 0)]
        for arm, k in families:
            for j, budget in enumerate(p.budgets):
                kd = arrays["kd_acc"][i, :, k, j]
                no_kd = arrays["no_kd_acc"][i, :, j]
                rows.append(_row(common, arm, budget, kd, no_kd, arrays["teacher_acc"][i, :, k], measured, pilot,
                                 n_train, p.n_test))
        if task.source != "semi_synthetic":
            largest = len(p.budgets) - 1  # the same-sample students train on the largest budget
            rows.append(_row(common, "same_sample", p.budgets[-1], arrays["same_sample_kd_acc"][i],
                             arrays["no_kd_acc"][i, :, largest], arrays["teacher_acc"][i, :, 3], measured, pilot,
                             n_train, p.n_test))
    return rows


def _row(common, arm, budget, kd, no_kd, teacher, measured, pilot, n_train, n_test) -> dict:
    gain = np.asarray(kd, np.float64) - np.asarray(no_kd, np.float64)
    mean, low, high = corrected_t_interval(gain[measured], n_train, n_test)
    teacher_acc = float(np.nanmean(teacher[measured]))
    no_kd_acc = float(np.nanmean(no_kd[measured]))
    return {**common, "arm": arm, "budget": int(budget), "gain": float(mean), "gain_low": float(low),
            "gain_high": float(high), "teacher_acc": teacher_acc, "no_kd_acc": no_kd_acc,
            "kd_acc": float(np.nanmean(kd[measured])), "gap": teacher_acc - no_kd_acc,
            "pilot_gain": float(np.nanmean(gain[pilot]))}


def theory_item(est, budget: int, steps: int, learning_rate: float, kd_weight: float, temperature: float,
                ce_weight: float = 1.0, same_sample: bool = False):
    """The finite-sample theory's problem at an estimated diagram, for
    :func:`mfh_sim.theory.highdim.finite_accuracies_many` (None: no visible signal, gain 0).

    Approximate for the transfer arm: the theory's teacher and student train on one sample size
    (here the student's label budget), on a fresh sample for the transfer arms (the teacher's own
    split, which is larger, and the pool's extra KD targets are not modelled); dims are the
    principal components the estimator kept; the shares a 'ones' hyperplane of real-valued blocks."""
    from mfh_sim.theory.highdim import Problem, gd_effective_l2
    from mfh_sim.theory.quadrature import Blocks

    blocks = Blocks(*(max(float(getattr(est, k)), 0.0) for k in ("p_g", "p_a", "p_b", "p_u")))
    if blocks.g + blocks.a + blocks.b <= 1e-9:
        return None
    l2 = gd_effective_l2(learning_rate, steps)
    d_a, d_b = float(est.dims[0]), float(est.dims[1])
    problem = Problem(float(budget), d_a, d_b, min(d_a, d_b) * float(est.gamma), l2, l2, ce_weight,
                      kd_weight / 2.0, temperature, same_sample)
    return (blocks, "ones", problem, "row")


def attach_estimates(rows: list[dict], tasks: dict[str, Task], points: Sequence, *, seed: int = 0,
                     n_boot: int = 100) -> None:
    """gamma_hat, alpha_hat, beta_hat with bounds, p_u, at_boundary and the theory's predicted
    gain for every row (the estimator runs once per task and unordered view pair; the prediction
    for binary tasks only: the estimator's multi-class shares are not mapped onto the theory's
    C-class channel, so those rows' prediction is NaN)."""
    knobs = {p.task: p for p in points}
    pending = []
    for name, task in tasks.items():
        pairs = sorted({tuple(sorted((r["teacher_view"], r["student_view"]))) for r in rows if r["task"] == name})
        est = estimate_views(task.views, task.labels, pairs, seed=seed, n_boot=n_boot)
        for r in (r for r in rows if r["task"] == name):
            e = est[tuple(sorted((r["teacher_view"], r["student_view"])))]
            flipped = r["teacher_view"] > r["student_view"]
            a, b = ("beta", "alpha") if flipped else ("alpha", "beta")
            r.update({"gamma_hat": e.gamma, "gamma_low": e.gamma_low, "gamma_high": e.gamma_high,
                      "alpha_hat": getattr(e, a), "alpha_low": getattr(e, f"{a}_low"),
                      "alpha_high": getattr(e, f"{a}_high"), "beta_hat": getattr(e, b),
                      "beta_low": getattr(e, f"{b}_low"), "beta_high": getattr(e, f"{b}_high"),
                      "p_u": e.p_u, "at_boundary": int(e.at_boundary)})
            if flipped:
                e = _swap(e)
            p = knobs[name]
            r["predicted_gain"] = math.nan
            if task.n_classes == 2 and r["arm"] in ("transfer", "same_sample", "semi_synthetic"):
                item = theory_item(e, r["budget"], p.steps, p.learning_rate, p.kd_weight, p.temperature,
                                   p.ce_weight, r["arm"] == "same_sample")
                if item is None:
                    r["predicted_gain"] = 0.0
                else:
                    pending.append((r, item))
    if pending:  # one batched solve for every row
        from mfh_sim.theory.highdim import finite_accuracies_many

        for (r, _), prediction in zip(pending, finite_accuracies_many([item for _, item in pending])):
            r["predicted_gain"] = float(prediction["delta"])


def _swap(est):
    from dataclasses import replace

    return replace(est, alpha=est.beta, beta=est.alpha, p_a=est.p_b, p_b=est.p_a, dims=(est.dims[1], est.dims[0],
                                                                                         est.dims[2]))


def score(rows: list[dict], *, n_boot: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per arm: each predictor's Spearman with the measured gain, with a cluster-bootstrap
    interval (tasks and views resampled); for the manipulation and semi-synthetic arms, the
    partial Spearman of the gain with gamma given teacher accuracy (gamma_hat, or the design's
    gamma for semi-synthetic rows)."""
    out: dict[str, dict[str, Any]] = {}
    for arm in dict.fromkeys(r["arm"] for r in rows):
        out[arm] = _score_arm(arm, [r for r in rows if r["arm"] == arm], n_boot, seed)
    manip = [r for r in rows if r["arm"] in ("general_teacher", "specific_teacher")]
    if manip:
        # Both manipulation arms together: the teacher's view is x^a_G or x^a_S, whose gamma with
        # the student's view is 1 (general) or its complement; its accuracy is measured.
        out["manipulation"] = score([{**r, "arm": "manipulation",
                                      "gamma_hat": 1.0 if r["arm"] == "general_teacher" else 0.0} for r in manip],
                                    n_boot=n_boot, seed=seed)["manipulation"]
    return out


def _score_arm(arm: str, sel: list[dict], n_boot: int, seed: int) -> dict[str, Any]:
    col = lambda k: np.array([r[k] for r in sel], np.float64)
    factors = [np.array([r["task"] for r in sel]), np.array([[r["teacher_view"], r["student_view"]] for r in sel])]
    gain, low, high = col("gain"), col("gain_low"), col("gain_high")
    entry: dict[str, Any] = {"rows": len(sel), "excluding_zero": int(np.sum((low > 0) | (high < 0))),
                             "helps": int(np.sum(low > 0)), "hurts": int(np.sum(high < 0)),
                             "gain_sd": float(np.nanstd(gain, ddof=1)) if len(sel) > 1 else math.nan,
                             "gain_mean": float(np.nanmean(gain))}
    for name in PREDICTORS:
        x = col(name)
        if np.sum(np.isfinite(x)) >= 4:
            entry[name] = cluster_bootstrap(lambda w, x=x: weighted_spearman(x, gain, w), factors, n_boot=n_boot,
                                            seed=seed)
    if arm in ("general_teacher", "specific_teacher", "semi_synthetic", "manipulation"):
        gamma = col("gamma_design") if arm == "semi_synthetic" else col("gamma_hat")
        teacher = col("teacher_acc")
        entry["partial_gamma_given_teacher"] = cluster_bootstrap(
            lambda w: weighted_partial_spearman(gamma, gain, teacher, w), factors, n_boot=n_boot, seed=seed)
    return entry


@dataclass
class RealCheck:
    """The outcome of :func:`check`: rows (one dict per row, :data:`COLUMNS`), scores, seconds."""

    rows: list[dict]
    scores: dict[str, dict[str, Any]]
    seconds: dict[str, float]

    def column(self, name: str, arm: str | None = None) -> np.ndarray:
        values = [r[name] for r in self.rows if arm is None or r["arm"] == arm]
        return np.array(values) if values and isinstance(values[0], str) else np.array(values, np.float64)

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for r in self.rows:
                writer.writerow([_fmt(r.get(c, math.nan)) for c in COLUMNS])
        return path

    def table(self) -> str:
        """Per arm: rows, gains and the predictors' Spearman with cluster-bootstrap intervals."""
        fmt = lambda t: f"{t[0]:+.2f} [{t[1]:+.2f}, {t[2]:+.2f}]" if t and math.isfinite(t[0]) else "n/a"
        lines = ["| arm | rows | mean gain (pts) | SD | 95% CI > 0 | < 0 | " + " | ".join(PREDICTORS.values())
                 + " | partial rho(gain, gamma given teacher acc.) |",
                 "|---" * (7 + len(PREDICTORS)) + "|"]
        for arm, s in self.scores.items():
            lines.append(f"| {arm} | {s['rows']} | {100 * s['gain_mean']:+.2f} | {100 * s['gain_sd']:.2f} | "
                         f"{s['helps']} | {s['hurts']} | " + " | ".join(fmt(s.get(k)) for k in PREDICTORS)
                         + f" | {fmt(s.get('partial_gamma_given_teacher'))} |")
        boundary = self.column("at_boundary", None)
        lines += ["", "Spearman rho with the measured gain over rows, 95% cluster-bootstrap intervals (tasks and "
                  "views resampled); gains with the corrected resampled t (Nadeau-Bengio). Estimator at a boundary "
                  f"in {int(np.nansum(boundary))} of {int(np.sum(np.isfinite(boundary)))} rows."]
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return str(int(value))
    return f"{float(value):.6g}" if math.isfinite(float(value)) else "nan"


def check(tasks: Sequence[Task], points: Sequence, splits: int = 12, *, root_seed: int = 0,
          out: str | Path | None = None, n_boot: int = 100, workers: int | None = None,
          progress: bool = False) -> RealCheck:
    """Run every arm of ``points`` (from :func:`mfh_sim.real.arms.make_points` on ``tasks``) over
    ``splits`` random splits (>= 2; plus :data:`PILOT_SPLITS` for the pilot predictor), estimate
    each task's Venn diagrams, predict, and score the predictors.  ``out``: a resumable run store."""
    splits = require_integer("splits", splits, 2)
    if not points:
        raise ValueError("points=[] is not allowed: give at least one task and view pair")
    start = time.perf_counter()
    arrays = run_points(points, splits + PILOT_SPLITS, root_seed=root_seed, out=out, workers=workers,
                        progress=progress)
    ran = time.perf_counter()
    by_name = {t.name: t for t in tasks}
    rows = _arm_rows(points, arrays, splits, by_name)
    attach_estimates(rows, by_name, points, seed=root_seed, n_boot=n_boot)
    estimated = time.perf_counter()
    scores = score(rows, seed=root_seed)
    return RealCheck(rows, scores, {"runs": ran - start, "estimate_and_theory": estimated - ran,
                                    "total": time.perf_counter() - start})
