"""The head-to-head: which hypothesis best predicts when crossmodal KD helps?

A random family of modality Venn diagrams (varying gamma, alpha, beta, the share of decisive
latents neither modality sees, the non-decisive blocks and n_train; a share of them with three
classes) is simulated over many seeds.  For each config the KD gain (mean over seeds of
kd_acc - no_kd_acc) is set against candidate predictors:

    gamma            the Modality Focusing Hypothesis (Xue et al., ICLR 2023): larger gamma, larger gain
    teacher_acc      the naive view: a more accurate teacher makes a better student
    alpha, beta      the other two Venn ratios
    theory_gain      the finite-sample theory's predicted KD gain (:func:`mfh_sim.theory.predict_many`;
                     two-class linear configs only; positive: KD predicted to help)
    complementarity  I(h_T; h_S) - I(h_S; Y) from :mod:`mfh_sim.theory` (positive: KD predicted to
                     help; +inf where both modalities see the same decisive latents; computed
                     for the binary label, so for multi-class configs it is an approximation)
    nontarget_kl     the teacher's and the no-KD student's divergence on the non-target classes
                     (Non-target Divergence Hypothesis, Chen et al. 2024, arXiv 2409.02438:
                     smaller divergence, larger gain); multi-class configs only
    unseen_share     |U| / K, the decisive signal neither modality sees (the confound of the
                     paper's gamma sweep)

Each is scored by its Spearman rank correlation with the gain across configs (with a percentile
bootstrap interval over configs) and by its sign agreement: how often a threshold on the predictor,
fitted on the other folds of a k-fold split, tells whether KD helps (gain > 0) on held-out configs.
The same cross-fitted rule applied to "always predict the majority sign" is the baseline rate.

Everything is vectorised: the family shares few compiled programs (fixed channel dims, a fixed
latent count through ``latent_padding``, a handful of n_train values) and runs through
:func:`mfh_sim.engine.execute`.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.config import SimConfig
from mfh_sim.engine import execute
from mfh_sim.protocols.paper import PAPER
from mfh_sim.results import FLAGS
from mfh_sim.validation import json_default, require_integer

#: Predictor name -> (label, direction the hypothesis claims: +1 larger predictor = larger gain,
#: -1 the opposite, 0 no claim).
PREDICTORS: dict[str, tuple[str, int]] = {
    "gamma": ("gamma (MFH)", +1),
    "teacher_acc": ("teacher accuracy", +1),
    "alpha": ("alpha", -1),
    "beta": ("beta", 0),
    "complementarity": ("complementarity I(hT;hS)-I(hS;Y)", +1),
    "theory_gain": ("theory's predicted KD gain", +1),
    "nontarget_kl": ("non-target divergence (NTDH)", -1),
    "unseen_share": ("unseen decisive share", 0),
}
SUBSETS = ("all", "two-class", "multi-class")
#: Runs per chunk for the head-to-head on a CPU (see :func:`run_head_to_head`).
HEAD_TO_HEAD_CPU_CHUNK = 8


# The random family lives with the other families; these names stay importable from here.
from mfh_sim.experiments.families import FamilySpec, random_family  # noqa: E402,F401

# Statistics live in mfh_sim.stats; these names stay importable from here.
from mfh_sim.stats import (  # noqa: E402,F401
    _partial_rows,
    _spearman_rows,
    bootstrap_spearman,
    partial_spearman,
    sign_agreement,
    wilson_interval,
)


def complementarity_of(config: SimConfig) -> float:
    """:func:`mfh_sim.theory.complementarity` of ``config`` (nats), NaN where not available."""
    try:
        from mfh_sim.theory import complementarity
    except ImportError:
        return math.nan
    try:
        return float(complementarity(config))
    except NotImplementedError:
        return math.nan


def _complementarities(configs: list[SimConfig]) -> np.ndarray:
    # The criterion depends on the decisive blocks and the hyperplane only: compute each once.
    cache: dict[tuple, float] = {}
    values = []
    for c in configs:
        key = (c.venn.shared, c.venn.a_only, c.venn.b_only, c.venn.unseen, c.hyperplane)
        if key not in cache:
            cache[key] = complementarity_of(c)
        values.append(cache[key])
    return np.asarray(values, np.float64)


def theory_gains(configs: list[SimConfig]) -> np.ndarray:
    """The finite-sample theory's KD gain (:func:`mfh_sim.theory.predict_many`, fraction) of each
    config; NaN for the configs the theory declines (multi-class, label noise, MLPs, ...)."""
    from mfh_sim.simulation import theory_for_many

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a non-converged fixed point stays NaN
        predictions = theory_for_many(configs)
    return np.asarray([np.nan if p is None else p["delta"] for p in predictions], np.float64)


def complementarity_available() -> bool:
    """Whether :mod:`mfh_sim.theory` provides ``complementarity``."""
    try:
        from mfh_sim.theory import complementarity  # noqa: F401
    except ImportError:
        return False
    return True


def predictors_of(configs: list[SimConfig], arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every predictor as an array over configs (NaN where it does not apply or is unavailable)."""
    # Like the gain, every per-seed predictor is averaged over the seeds where the teacher, the
    # no-KD and the KD student are all finite (the KD student is NaN where the teacher diverged).
    complete = np.isfinite(arrays["kd_acc"]) & np.isfinite(arrays["no_kd_acc"]) & np.isfinite(arrays["teacher_acc"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (diverged) stay NaN
        teacher = np.nanmean(np.where(complete, arrays["teacher_acc"], np.nan), axis=1)
        nontarget = np.nanmean(np.where(complete, arrays["nontarget_kl"], np.nan), axis=1)
    multiclass = np.asarray([c.n_classes > 2 for c in configs])
    return {
        "gamma": np.asarray([c.gamma for c in configs]),
        "teacher_acc": teacher.astype(np.float64),
        "alpha": np.asarray([c.alpha for c in configs]),
        "beta": np.asarray([c.beta for c in configs]),
        "complementarity": _complementarities(configs),
        "theory_gain": theory_gains(configs),
        "nontarget_kl": np.where(multiclass, nontarget, np.nan).astype(np.float64),
        "unseen_share": np.asarray([c.venn.unseen_share for c in configs]),
    }


# -------------------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class Score:
    """How well one predictor predicts the KD gain on one subset of the family."""

    predictor: str
    label: str
    claimed_sign: int
    n: int
    spearman: float
    spearman_low: float
    spearman_high: float
    sign_agreement: float
    sign_low: float
    sign_high: float
    baseline_agreement: float
    #: For predictors with a natural threshold (complementarity: 0), the agreement of
    #: "KD helps iff predictor > 0" with no fitting; NaN otherwise.
    agreement_at_zero: float = math.nan


#: Predictors whose hypothesis names a threshold: KD helps iff the predictor is positive.
ZERO_THRESHOLD = ("complementarity", "theory_gain")


def score_predictors(
    predictors: dict[str, np.ndarray], gain: np.ndarray, mask: np.ndarray | None = None,
    n_boot: int = 2000, folds: int = 5, seed: int = 0,
) -> list[Score]:
    """A :class:`Score` for every predictor on the configs selected by ``mask`` (all if None)."""
    gain = np.asarray(gain, np.float64)
    mask = np.ones(gain.size, bool) if mask is None else np.asarray(mask, bool)
    scores = []
    for name, values in predictors.items():
        label, claimed = PREDICTORS.get(name, (name, 0))
        x = np.asarray(values, np.float64)[mask]
        rho, low, high = bootstrap_spearman(x, gain[mask], n_boot=n_boot, seed=seed)
        rate, baseline, n = sign_agreement(x, gain[mask], folds=folds, seed=seed)
        sign_low, sign_high = wilson_interval(rate * n, n) if math.isfinite(rate) else (math.nan, math.nan)
        at_zero = math.nan
        if name in ZERO_THRESHOLD:
            keep = ~np.isnan(x)
            if keep.any():
                at_zero = float(np.mean((x[keep] > 0) == (gain[mask][keep] > 0)))
        scores.append(Score(name, label, claimed, n, rho, low, high, rate, sign_low, sign_high, baseline,
                            at_zero))
    return scores


def format_table(scores: list[Score], title: str = "") -> str:
    """A plain-text table of scores (correlations as numbers, agreement rates in %)."""
    lines = [title] if title else []
    lines.append(f"{'predictor':<34} {'claim':>5} {'n':>4} {'Spearman':>8} {'95% CI':>17} "
                 f"{'sign agr.':>9} {'95% CI':>15} {'majority':>8}")
    for s in scores:
        claim = {1: "+", -1: "-", 0: ""}[s.claimed_sign]
        if not math.isfinite(s.spearman):
            lines.append(f"{s.label:<34} {claim:>5} {s.n:>4} {'n/a':>8}")
            continue
        lines.append(
            f"{s.label:<34} {claim:>5} {s.n:>4} {s.spearman:+8.3f} [{s.spearman_low:+.3f}, {s.spearman_high:+.3f}] "
            f"{100 * s.sign_agreement:8.1f}% [{100 * s.sign_low:4.1f}, {100 * s.sign_high:4.1f}]% "
            f"{100 * s.baseline_agreement:7.1f}%"
        )
    for s in scores:
        if math.isfinite(s.agreement_at_zero):
            lines.append(f"  {s.label}: 'KD helps iff > 0' (no fitted threshold) agrees on "
                         f"{100 * s.agreement_at_zero:.1f}% of configs")
    return "\n".join(lines)


#: (predictor, controls) pairs whose partial Spearman correlation with the gain is reported.
PARTIALS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gamma", ("beta",)),
    ("beta", ("gamma",)),
    ("gamma", ("alpha", "beta")),
    ("teacher_acc", ("gamma",)),
    ("complementarity", ("gamma", "beta")),
    ("unseen_share", ("gamma",)),
)


@dataclass(frozen=True)
class PartialScore:
    """Partial Spearman correlation of one predictor with the gain, given control predictors."""

    predictor: str
    controls: tuple[str, ...]
    n: int
    spearman: float
    spearman_low: float
    spearman_high: float


def score_partials(predictors: dict[str, np.ndarray], gain: np.ndarray, mask: np.ndarray | None = None,
                   n_boot: int = 2000, seed: int = 0) -> list[PartialScore]:
    """:data:`PARTIALS` on the configs selected by ``mask`` (all if None)."""
    gain = np.asarray(gain, np.float64)
    mask = np.ones(gain.size, bool) if mask is None else np.asarray(mask, bool)
    out = []
    for name, controls in PARTIALS:
        x = np.asarray(predictors[name], np.float64)[mask]
        z = np.stack([np.asarray(predictors[c], np.float64)[mask] for c in controls])
        n = int((~np.isnan(x) & ~np.isnan(z).any(axis=0)).sum())
        rho, low, high = partial_spearman(x, gain[mask], z, n_boot=n_boot, seed=seed)
        out.append(PartialScore(name, controls, n, rho, low, high))
    return out


def format_partials(partials: list[PartialScore]) -> str:
    lines = ["partial Spearman with the gain (ranks of the controls regressed out), all configs:"]
    for p in partials:
        given = ", ".join(PREDICTORS[c][0] for c in p.controls)
        head = f"  {PREDICTORS[p.predictor][0]} | {given}"
        if math.isfinite(p.spearman):
            lines.append(f"{head:<58} {p.spearman:+.3f} [{p.spearman_low:+.3f}, {p.spearman_high:+.3f}] (n = {p.n})")
        else:
            lines.append(f"{head:<58} n/a")
    return "\n".join(lines)


# -------------------------------------------------------------------------------- runner
@dataclass
class HeadToHead:
    """A head-to-head run: the family, per-seed arrays, per-config gains, predictors and scores.

    ``arrays`` maps metric names to (configs, seeds) arrays (accuracies in [0, 1]); ``gain`` and
    ``gain_sem`` are the mean KD gain over seeds and its standard error (fractions); ``scores``
    maps each subset ('all', 'two-class', 'multi-class') to its list of :class:`Score`.
    """

    spec: FamilySpec
    configs: list[SimConfig]
    arrays: dict[str, np.ndarray]
    seeds: np.ndarray
    root_seed: int
    predictors: dict[str, np.ndarray]
    gain: np.ndarray
    gain_sem: np.ndarray
    scores: dict[str, list[Score]]
    partials: list[PartialScore]
    wall_seconds: float
    complementarity_available: bool = False
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def multiclass(self) -> np.ndarray:
        return np.asarray([c.n_classes > 2 for c in self.configs])

    @property
    def divergence(self) -> dict[str, int]:
        """Diverged runs per model (``teacher_diverged``, ``no_kd_diverged``, ``kd_diverged``: the
        KD student counts as diverged where its teacher did), ``configs_affected`` (configs with
        any diverged run) and ``runs`` (configs x seeds)."""
        flags = {name: np.asarray(self.arrays[name], bool) for name in FLAGS}
        any_run = flags["teacher_diverged"] | flags["no_kd_diverged"] | flags["kd_diverged"]
        return {**{name: int(flag.sum()) for name, flag in flags.items()},
                "configs_affected": int(any_run.any(axis=1).sum()), "runs": int(any_run.size)}

    def table(self) -> str:
        parts = [
            f"KD gain predictors on {len(self.configs)} Venn configs x {len(self.seeds)} seeds "
            f"(gain > 0 in {np.mean(self.gain > 0):.0%} of configs; mean gain "
            f"{100 * np.mean(self.gain):+.2f} points); claim: the sign of the correlation the "
            "hypothesis predicts; sign agr.: cross-fitted threshold rule; majority: always the "
            "majority sign"
        ]
        d = self.divergence
        parts.append(
            f"diverged runs of {d['runs']}: teacher {d['teacher_diverged']}, no-KD {d['no_kd_diverged']}, "
            f"KD {d['kd_diverged']} (in {d['configs_affected']} configs); every per-config mean is over the "
            "seeds where all three models are finite"
        )
        for subset in SUBSETS:
            if subset in self.scores:
                count = self.scores[subset][0].n if self.scores[subset] else 0
                parts.append(format_table(self.scores[subset], f"\n[{subset} configs, n = {count}]"))
        if self.partials:
            parts.append("\n" + format_partials(self.partials))
        if not self.complementarity_available:
            parts.append("\ncomplementarity: mfh_sim.theory.complementarity is not available in this build")
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": {**asdict(self.spec), "n_train_values": list(self.spec.n_train_values)},
            "seeds": int(len(self.seeds)),
            "root_seed": self.root_seed,
            "wall_seconds": self.wall_seconds,
            "complementarity_available": self.complementarity_available,
            "divergence": self.divergence,
            "scores": {k: [asdict(s) for s in v] for k, v in self.scores.items()},
            "partials": [asdict(p) for p in self.partials],
            "configs": [c.as_dict() for c in self.configs],
            "gain": self.gain.tolist(),
            "gain_sem": self.gain_sem.tolist(),
            "predictors": {k: [None if math.isnan(x) else float(x) for x in v]
                           for k, v in self.predictors.items()},
            "versions": self.versions,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``hypotheses.json`` (table, configs, gains, predictors) and ``hypotheses.txt``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        from mfh_sim.store import atomic_write

        path = atomic_write(directory / "hypotheses.json",
                            json.dumps(self.to_json(), indent=1, default=json_default))
        atomic_write(directory / "hypotheses.txt", self.table() + "\n")
        return path


def run_head_to_head(
    spec: FamilySpec | None = None,
    *,
    seeds: int = 100,
    root_seed: int = 0,
    n_boot: int = 2000,
    folds: int = 5,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> HeadToHead:
    """Simulate the family ``spec`` over ``seeds`` seeds and score every predictor.

    ``seeds`` >= 2 (seed indices 0..seeds-1), ``root_seed`` in [0, 2**32), ``n_boot`` >= 10
    bootstrap resamples, ``folds`` >= 2 for the cross-fitted sign agreement.
    """
    import jax

    from mfh_sim._version import versions as package_versions
    from mfh_sim.progress import ProgressBar

    spec = spec or FamilySpec()
    seeds = require_integer("seeds", seeds, minimum=2)
    if chunk_size is None and jax.default_backend() == "cpu":
        # Measured on a 2-core CPU: chunks of 4-8 runs keep the three-class programs' working
        # set in cache (chunks of 24 ran them 3-5x slower); the two-class ones do not mind.
        chunk_size = HEAD_TO_HEAD_CPU_CHUNK
    if isinstance(root_seed, bool) or not isinstance(root_seed, (int, np.integer)) or not 0 <= root_seed < 2**32:
        raise ValueError(f"root_seed={root_seed!r} is not allowed: it must be an integer in [0, 2**32)")
    n_boot = require_integer("n_boot", n_boot, minimum=10)
    folds = require_integer("folds", folds, minimum=2)
    start = time.perf_counter()
    configs = random_family(spec)
    seed_indices = np.arange(seeds)
    bar = ProgressBar(len(configs) * seeds, enabled=progress)
    try:
        arrays = execute(PAPER, configs, seed_indices, int(root_seed), chunk_size=chunk_size, workers=workers,
                         progress=bar.update)
    finally:
        bar.close()
    delta = arrays["kd_acc"].astype(np.float64) - arrays["no_kd_acc"].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gain = np.nanmean(delta, axis=1)
        count = np.isfinite(delta).sum(axis=1)
        gain_sem = np.nanstd(delta, axis=1, ddof=1) / np.sqrt(np.maximum(count, 1))
    predictors = predictors_of(configs, arrays)
    multiclass = np.asarray([c.n_classes > 2 for c in configs])
    scores = {}
    for subset, mask in (("all", np.ones(len(configs), bool)), ("two-class", ~multiclass),
                         ("multi-class", multiclass)):
        if mask.sum() >= max(folds, 3):
            chosen = predictors if subset == "multi-class" else {
                k: v for k, v in predictors.items() if k != "nontarget_kl"}
            scores[subset] = score_predictors(chosen, gain, mask, n_boot=n_boot, folds=folds, seed=root_seed)
    partials = score_partials(predictors, gain, n_boot=n_boot, seed=root_seed)
    return HeadToHead(
        spec=spec, configs=configs, arrays=arrays, seeds=seed_indices, root_seed=int(root_seed),
        predictors=predictors, gain=gain, gain_sem=gain_sem, scores=scores, partials=partials,
        wall_seconds=time.perf_counter() - start,
        complementarity_available=complementarity_available(), versions=package_versions(),
    )
