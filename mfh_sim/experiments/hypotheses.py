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

Everything is vectorised: a family shares few compiled programs (fixed channel dims, a fixed
latent count through ``latent_padding``, a handful of n_train values) and runs through the
results store (:func:`simulate_family`), so an interrupted run resumes.

Which conclusions depend on the family?  :func:`run_families` runs the head-to-head on several
named family designs (:data:`mfh_sim.experiments.families.FAMILIES`) and judges each
:data:`CLAIMS` entry in every family: a claim *holds* in a family where its bootstrap interval
lies on the claimed side of zero.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.config import SimConfig, make_config
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


# The random families live with the other families; these names stay importable from here.
from mfh_sim.experiments.families import (  # noqa: E402,F401
    DEFAULT_FAMILY,
    FAMILIES,
    Family,
    FamilySpec,
    ShapesFamilySpec,
    family_spec,
    random_family,
)

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
    config; NaN for the configs the theory declines (MLPs, Adam, feature-hint KD, ...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a non-converged fixed point stays NaN
        return _theory_gains(configs)


def _theory_gains(configs: list[SimConfig]) -> np.ndarray:
    # theory_gains without its warnings filter, for a thread: warnings.catch_warnings saves and
    # restores the whole process's filters, so two threads inside it at once can leave one's
    # filter behind (the caller filters instead, from the main thread).
    from mfh_sim.simulation import theory_for_many

    predictions = theory_for_many(configs)
    return np.asarray([np.nan if p is None else p["delta"] for p in predictions], np.float64)


def complementarity_available() -> bool:
    """Whether :mod:`mfh_sim.theory` provides ``complementarity``."""
    try:
        from mfh_sim.theory import complementarity  # noqa: F401
    except ImportError:
        return False
    return True


def _config_predictors(configs: list[SimConfig]) -> dict[str, np.ndarray]:
    """The predictors that need the configs only, not the simulations: the complementarity
    criterion and the theory's KD gain (arrays over configs, NaN where unavailable).  Enters no
    warnings filter (it runs in a thread); the caller ignores RuntimeWarning around it."""
    return {"complementarity": _complementarities(configs), "theory_gain": _theory_gains(configs)}


def predictors_of(configs: list[SimConfig], arrays: dict[str, np.ndarray],
                  from_configs: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every predictor as an array over configs (NaN where it does not apply or is unavailable).

    ``from_configs``: the config-only predictors (complementarity, theory_gain) if already
    computed.
    """
    if from_configs is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a non-converged fixed point stays NaN
            from_configs = _config_predictors(configs)
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
        "complementarity": from_configs["complementarity"],
        "theory_gain": from_configs["theory_gain"],
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
def simulate_family(
    points: list[dict[str, Any]],
    *,
    seeds: int,
    root_seed: int,
    out: str | Path | None = None,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Simulate the family ``points`` (:func:`mfh_sim.make_config` keywords) over seed indices
    0..seeds-1: per-seed metric arrays of shape (configs, seeds).

    Every point's run for seed s takes the same key (the paper protocol's common random numbers),
    so a gain difference between configs is not seed noise of their draws.  With ``out`` the runs
    go through the results store (:mod:`mfh_sim.store`): a rerun of the same call reads the
    finished blocks and computes only the missing ones, with the same numbers.
    """
    from mfh_sim.simulation import sweep

    with warnings.catch_warnings():
        # Diverged runs are counted in the head-to-head's table (HeadToHead.divergence).
        warnings.simplefilter("ignore", RuntimeWarning)
        result = sweep(points=points, seeds=seeds, root_seed=root_seed, theory=False, out=out,
                       chunk_size=chunk_size, workers=workers, progress=progress)
    return result.arrays


@dataclass
class HeadToHead:
    """A head-to-head run: the family, per-seed arrays, per-config gains, predictors and scores.

    ``arrays`` maps metric names to (configs, seeds) arrays (accuracies in [0, 1]); ``gain`` and
    ``gain_sem`` are the mean KD gain over seeds and its standard error (fractions); ``scores``
    maps each subset ('all', 'two-class', 'multi-class') to its list of :class:`Score`;
    ``family`` names the design (a key of :data:`FAMILIES`, or 'custom').
    """

    spec: Family
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
    family: str = "custom"

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

    def summary(self) -> FamilySummary:
        """What the robustness report keeps of this run (no per-seed arrays, no configs)."""
        return FamilySummary(
            name=self.family, description=self.spec.describe(), spec=_spec_json(self.spec),
            seeds=len(self.seeds), root_seed=self.root_seed, gain=self.gain, gain_sem=self.gain_sem,
            predictors=self.predictors, scores=self.scores, partials=self.partials,
            divergence=self.divergence, wall_seconds=self.wall_seconds,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary().to_json(),
            "complementarity_available": self.complementarity_available,
            "configs": [c.as_dict() for c in self.configs],
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


def _spec_json(spec: Family) -> dict[str, Any]:
    return {"design": type(spec).__name__, **{k: list(v) if isinstance(v, tuple) else v
                                               for k, v in asdict(spec).items()}}


def _nullable(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(x) else float(x) for x in np.asarray(values, np.float64)]


def _array(values: list[float | None]) -> np.ndarray:
    return np.asarray([math.nan if x is None else x for x in values], np.float64)


@dataclass
class FamilySummary:
    """One family's head-to-head as the robustness report keeps it: per-config gains (fractions,
    mean and standard error over seeds) and predictors, and the scores.  Saved and loaded as JSON
    (the configs follow from ``spec``: :func:`mfh_sim.experiments.families.random_family`)."""

    name: str
    description: str
    spec: dict[str, Any]
    seeds: int
    root_seed: int
    gain: np.ndarray
    gain_sem: np.ndarray
    predictors: dict[str, np.ndarray]
    scores: dict[str, list[Score]]
    partials: list[PartialScore]
    divergence: dict[str, int]
    wall_seconds: float

    @property
    def reliability(self) -> float:
        """The share of the gains' variance across configs that is not seed noise,
        1 - mean(gain_sem^2) / var(gain): a rank correlation with the noisy gains is attenuated
        by about its square root."""
        finite = np.isfinite(self.gain) & np.isfinite(self.gain_sem)
        return float(1.0 - np.mean(self.gain_sem[finite] ** 2) / np.var(self.gain[finite], ddof=1))

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.name, "description": self.description, "spec": self.spec, "seeds": self.seeds,
            "root_seed": self.root_seed, "wall_seconds": self.wall_seconds, "divergence": self.divergence,
            "scores": {k: [asdict(s) for s in v] for k, v in self.scores.items()},
            "partials": [asdict(p) for p in self.partials],
            "gain": _nullable(self.gain), "gain_sem": _nullable(self.gain_sem),
            "predictors": {k: _nullable(v) for k, v in self.predictors.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FamilySummary:
        return cls(
            name=data["family"], description=data["description"], spec=data["spec"], seeds=data["seeds"],
            root_seed=data["root_seed"], gain=_array(data["gain"]), gain_sem=_array(data["gain_sem"]),
            predictors={k: _array(v) for k, v in data["predictors"].items()},
            scores={k: [Score(**s) for s in v] for k, v in data["scores"].items()},
            partials=[PartialScore(**{**p, "controls": tuple(p["controls"])}) for p in data["partials"]],
            divergence=data["divergence"], wall_seconds=data["wall_seconds"],
        )


def score_family(predictors: dict[str, np.ndarray], gain: np.ndarray, multiclass: np.ndarray, *,
                 n_boot: int = 2000, folds: int = 5, seed: int = 0) -> tuple[dict[str, list[Score]],
                                                                            list[PartialScore]]:
    """The scores of every predictor on each subset of a family ('all', 'two-class', 'multi-class';
    a subset with fewer than max(folds, 3) configs is left out; the non-target divergence only on
    'multi-class') and :data:`PARTIALS` on all configs."""
    scores = {}
    with warnings.catch_warnings():
        # A predictor constant in the family (the unseen share of 'no-unseen') has no rank
        # correlation: its scores are NaN, without a warning per resample.
        warnings.simplefilter("ignore", RuntimeWarning)
        for subset, mask in (("all", np.ones(gain.size, bool)), ("two-class", ~multiclass),
                             ("multi-class", multiclass)):
            if mask.sum() >= max(folds, 3):
                chosen = predictors if subset == "multi-class" else {
                    k: v for k, v in predictors.items() if k != "nontarget_kl"}
                scores[subset] = score_predictors(chosen, gain, mask, n_boot=n_boot, folds=folds, seed=seed)
        return scores, score_partials(predictors, gain, n_boot=n_boot, seed=seed)


def run_head_to_head(
    spec: Family | str | None = None,
    *,
    seeds: int = 100,
    root_seed: int = 0,
    n_boot: int = 2000,
    folds: int = 5,
    out: str | Path | None = None,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> HeadToHead:
    """Simulate the family ``spec`` over ``seeds`` seeds and score every predictor.

    ``spec``: a :class:`FamilySpec` / :class:`ShapesFamilySpec`, the name of a design of
    :data:`FAMILIES` (at family seed 0; :func:`family_spec` changes it), or None (the default
    design, ``'gamma-split'``).  ``seeds`` >= 2 (seed indices 0..seeds-1), ``root_seed`` in
    [0, 2**32), ``n_boot`` >= 10 bootstrap resamples, ``folds`` >= 2 for the cross-fitted sign
    agreement.  ``out``: a results directory for the simulations (see :func:`simulate_family`;
    a rerun resumes there).
    """
    import jax

    from mfh_sim._version import versions as package_versions

    name = "custom"
    if spec is None or isinstance(spec, str):
        name = spec or DEFAULT_FAMILY
        spec = family_spec(name)
    else:
        name = next((key for key, preset in FAMILIES.items() if preset == spec), "custom")
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
    points = spec.points()
    configs = [make_config(**point) for point in points]
    # The theory (numpy, on the host) needs the configs only: it runs in a thread of its own
    # while the simulations (XLA, which releases the interpreter) keep the cores busy.  Its
    # non-converged fixed points are NaN, not warnings: the filter is set here, in this thread,
    # around both (the worker enters none; see _theory_gains).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with ThreadPoolExecutor(max_workers=1) as pool:
            theory = pool.submit(_config_predictors, configs)
            arrays = simulate_family(points, seeds=seeds, root_seed=int(root_seed), out=out,
                                     chunk_size=chunk_size, workers=workers, progress=progress)
            from_configs = theory.result()
    delta = arrays["kd_acc"].astype(np.float64) - arrays["no_kd_acc"].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gain = np.nanmean(delta, axis=1)
        count = np.isfinite(delta).sum(axis=1)
        gain_sem = np.nanstd(delta, axis=1, ddof=1) / np.sqrt(np.maximum(count, 1))
    predictors = predictors_of(configs, arrays, from_configs)
    multiclass = np.asarray([c.n_classes > 2 for c in configs])
    scores, partials = score_family(predictors, gain, multiclass, n_boot=n_boot, folds=folds, seed=int(root_seed))
    return HeadToHead(
        spec=spec, configs=configs, arrays=arrays, seeds=np.arange(seeds), root_seed=int(root_seed),
        predictors=predictors, gain=gain, gain_sem=gain_sem, scores=scores, partials=partials,
        wall_seconds=time.perf_counter() - start,
        complementarity_available=complementarity_available(), versions=package_versions(), family=name,
    )


# ------------------------------------------------------------- claims across families
#: One side of a claim: a predictor and the predictors controlled for (none: its plain Spearman
#: correlation with the gain; some: its partial Spearman correlation given them).
Term = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Claim:
    """A conclusion of the head-to-head as the sign of one statistic.

    With one term the statistic is that term's (partial) Spearman correlation with the gain; with
    two it is |first| - |second| on the same configs ("the first tells more about the gain than
    the second").  ``sign`` is the sign the claim names (+1 or -1).  Configs where a predictor of
    the claim is NaN (the theory where it declines, the non-target divergence on two-class
    configs) are left out.
    """

    key: str
    text: str
    terms: tuple[Term, ...]
    sign: int


#: The claims the head-to-head's docs make, each judged in every family (docs/hypotheses.md).
CLAIMS: tuple[Claim, ...] = (
    Claim("gamma", "gamma ranks the gain positively (MFH)", (("gamma", ()),), +1),
    Claim("gamma>teacher", "gamma ranks the gain better than teacher accuracy (MFH: not the teacher)",
          (("gamma", ()), ("teacher_acc", ())), +1),
    Claim("alpha", "alpha ranks the gain negatively (MFH: the teacher's own latents cannot be taught)",
          (("alpha", ()),), -1),
    Claim("beta", "beta ranks the gain negatively", (("beta", ()),), -1),
    Claim("beta>gamma", "beta ranks the gain better than gamma", (("beta", ()), ("gamma", ())), +1),
    Claim("complementarity>gamma", "complementarity ranks the gain better than gamma",
          (("complementarity", ()), ("gamma", ())), +1),
    Claim("beta|gamma", "beta given gamma is negative", (("beta", ("gamma",)),), -1),
    Claim("gamma|beta", "gamma given beta is positive", (("gamma", ("beta",)),), +1),
    Claim("beta|gamma>gamma|beta", "beta given gamma tells more than gamma given beta",
          (("beta", ("gamma",)), ("gamma", ("beta",))), +1),
    Claim("gamma|alpha,beta", "gamma given alpha and beta is positive", (("gamma", ("alpha", "beta")),), +1),
    Claim("teacher|gamma", "teacher accuracy given gamma is positive", (("teacher_acc", ("gamma",)),), +1),
    Claim("complementarity|gamma,beta", "complementarity given gamma and beta is positive",
          (("complementarity", ("gamma", "beta")),), +1),
    Claim("unseen|gamma", "the unseen share given gamma is positive", (("unseen_share", ("gamma",)),), +1),
    Claim("theory", "the theory's predicted gain ranks the gain positively (configs it models)",
          (("theory_gain", ()),), +1),
    Claim("theory>complementarity", "the theory's predicted gain ranks the gain better than complementarity",
          (("theory_gain", ()), ("complementarity", ())), +1),
    Claim("theory>beta", "the theory's predicted gain ranks the gain better than beta",
          (("theory_gain", ()), ("beta", ())), +1),
    Claim("ntdh", "the non-target divergence ranks the gain negatively (NTDH; multi-class configs)",
          (("nontarget_kl", ()),), -1),
)


def _term_label(term: Term) -> str:
    name, controls = term
    label = PREDICTORS.get(name, (name, 0))[0]
    return f"{label} | {', '.join(PREDICTORS.get(c, (c, 0))[0] for c in controls)}" if controls else label


def _term_draws(term: Term, predictors: dict[str, np.ndarray], gain: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The term's statistic on each row of resample indices ``index`` (rows, n)."""
    name, controls = term
    x, y = predictors[name][index], gain[index]
    if not controls:
        return _spearman_rows(x, y)
    z = np.stack([predictors[c] for c in controls])[:, index].transpose(1, 0, 2)
    try:
        return _partial_rows(x, y, z)
    except np.linalg.LinAlgError:  # a constant control
        return np.full(index.shape[0], np.nan)


def claim_statistic(claim: Claim, predictors: dict[str, np.ndarray], gain: np.ndarray, *, n_boot: int = 2000,
                    level: float = 0.95, seed: int = 0) -> tuple[float, float, float, int]:
    """The claim's statistic on one family, its percentile bootstrap interval over configs and the
    number of configs used: (value, low, high, n).

    One term: :func:`bootstrap_spearman` or :func:`partial_spearman` (the same numbers as the
    family's tables).  Two terms: |first| - |second| with both terms computed on the same
    resamples (paired), so what the two share cancels.  NaN where too few configs have every
    predictor or a predictor is constant.
    """
    names = {claim_name for term in claim.terms for claim_name in (term[0], *term[1])}
    if any(name not in predictors for name in names):
        return (math.nan, math.nan, math.nan, 0)
    gain = np.asarray(gain, np.float64)
    keep = np.isfinite(gain)
    for name in names:
        keep &= ~np.isnan(np.asarray(predictors[name], np.float64))
    used = {name: np.asarray(predictors[name], np.float64)[keep] for name in names}
    y = gain[keep]
    n = int(keep.sum())
    if n < 3 + max(len(term[1]) for term in claim.terms):
        return (math.nan, math.nan, math.nan, n)
    if len(claim.terms) == 1:
        name, controls = claim.terms[0]
        if controls:
            value, low, high = partial_spearman(used[name], y, [used[c] for c in controls], n_boot=n_boot,
                                                level=level, seed=seed)
        else:
            value, low, high = bootstrap_spearman(used[name], y, n_boot=n_boot, level=level, seed=seed)
        return (value, low, high, n)

    def contrast(index: np.ndarray) -> np.ndarray:
        first, second = (_term_draws(term, used, y, index) for term in claim.terms)
        return np.abs(first) - np.abs(second)

    value = float(contrast(np.arange(n)[None])[0])
    if not math.isfinite(value):
        return (math.nan, math.nan, math.nan, n)
    draws = contrast(np.random.default_rng(seed).integers(0, n, size=(require_integer("n_boot", n_boot, 10), n)))
    tail = 100 * (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every resample degenerate: no interval (NaN)
        low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return (value, float(low), float(high), n)


@dataclass(frozen=True)
class ClaimResult:
    """A claim judged in several families: ``values`` maps each family to (value, low, high, n)."""

    claim: Claim
    values: dict[str, tuple[float, float, float, int]]

    def status(self, family: str) -> str:
        """'holds' (the interval is on the claimed side of 0), 'reversed' (on the other side),
        'unclear' (it contains 0) or 'n/a' (no value in that family)."""
        value, low, high, _ = self.values[family]
        if not math.isfinite(value):
            return "n/a"
        side = self.claim.sign
        if side * low > 0 and side * high > 0:
            return "holds"
        if side * low < 0 and side * high < 0:
            return "reversed"
        return "unclear"

    @property
    def verdict(self) -> str:
        """'holds in all families', 'reversed in all families', 'not shown in any family' or
        'depends on the family', with the range of the values and, where mixed, the counts."""
        judged = [f for f in self.values if self.status(f) != "n/a"]
        if not judged:
            return "not available in any family"
        statuses = [self.status(f) for f in judged]
        values = [self.values[f][0] for f in judged]
        span = f"range {min(values):+.2f} to {max(values):+.2f}"
        missing = [f for f in self.values if f not in judged]
        tail = f"; n/a in {', '.join(missing)}" if missing else ""
        count = len(judged)
        if all(s == "holds" for s in statuses):
            return f"holds in all {count} families ({span}){tail}"
        if all(s == "reversed" for s in statuses):
            return f"reversed in all {count} families ({span}){tail}"
        if all(s == "unclear" for s in statuses):
            return f"not shown in any of the {count} families ({span}){tail}"
        counts = ", ".join(f"{word} in {statuses.count(word)}" for word in ("holds", "unclear", "reversed")
                           if word in statuses)
        return f"depends on the family ({span}; {counts} of {count}){tail}"


def judge_claims(families: dict[str, FamilySummary], claims: tuple[Claim, ...] = CLAIMS, *, n_boot: int = 2000,
                 seed: int = 0) -> list[ClaimResult]:
    """Every claim's statistic in every family (see :func:`claim_statistic`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant predictor: NaN, not a warning
        return _judge(families, claims, n_boot, seed)


def _judge(families: dict[str, FamilySummary], claims: tuple[Claim, ...], n_boot: int,
           seed: int) -> list[ClaimResult]:
    return [ClaimResult(claim, {name: claim_statistic(claim, summary.predictors, summary.gain, n_boot=n_boot,
                                                      seed=seed)
                                for name, summary in families.items()})
            for claim in claims]


@dataclass
class FamilyReport:
    """The head-to-head on several families and its claims judged in each (:func:`run_families`)."""

    families: dict[str, FamilySummary]
    claims: list[ClaimResult]
    n_boot: int
    seed: int
    wall_seconds: float
    versions: dict[str, str] = field(default_factory=dict)

    def table(self) -> str:
        names = list(self.families)
        width = max(12, *(len(n) for n in names)) + 1
        lines = [f"The head-to-head in {len(names)} family designs (KD gain = kd_acc - no_kd_acc, mean over seeds; "
                 "95% percentile bootstrap intervals over configs, "
                 f"{self.n_boot} resamples; a claim holds in a family where its interval is on the claimed side "
                 "of 0)", ""]
        for name, summary in self.families.items():
            lines.append(f"{name}: {summary.description}")
            lines.append(f"  {len(summary.gain)} configs x {summary.seeds} seeds (root seed {summary.root_seed}); "
                         f"gain > 0 in {np.mean(summary.gain > 0):.0%}; mean gain {100 * np.mean(summary.gain):+.2f}, "
                         f"SD across configs {100 * np.std(summary.gain, ddof=1):.2f}, median SE "
                         f"{100 * np.median(summary.gain_sem):.3f} points; reliability "
                         f"{summary.reliability:.3f}; diverged runs {summary.divergence['teacher_diverged']}/"
                         f"{summary.divergence['no_kd_diverged']}/{summary.divergence['kd_diverged']} "
                         "(teacher/no-KD/KD)")
        lines += ["", "Spearman rho of each predictor with the gain, all configs of each family "
                      "(three-class configs only for the non-target divergence):",
                  f"{'predictor':<34}" + "".join(f"{n:>{width}}" for n in names)]
        for predictor in PREDICTORS:
            row = []
            for summary in self.families.values():
                subset = "multi-class" if predictor == "nontarget_kl" else "all"
                score = next((s for s in summary.scores.get(subset, []) if s.predictor == predictor), None)
                row.append(f"{score.spearman:+.3f}" if score and math.isfinite(score.spearman) else "n/a")
            lines.append(f"{PREDICTORS[predictor][0]:<34}" + "".join(f"{v:>{width}}" for v in row))
        lines += ["", "Claims:"]
        for result in self.claims:
            sides = " - ".join(f"|{_term_label(t)}|" for t in result.claim.terms) if len(result.claim.terms) > 1 \
                else _term_label(result.claim.terms[0])
            lines.append(f"* {result.claim.text} [{sides} {'>' if result.claim.sign > 0 else '<'} 0]")
            lines.append(f"  verdict: {result.verdict}")
            for name in names:
                value, low, high, n = result.values[name]
                if math.isfinite(value):
                    lines.append(f"    {name:<{width}} {value:+.3f} [{low:+.3f}, {high:+.3f}]  n = {n:<4d} "
                                 f"{result.status(name)}")
                else:
                    lines.append(f"    {name:<{width}} n/a")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "n_boot": self.n_boot, "seed": self.seed, "wall_seconds": self.wall_seconds, "versions": self.versions,
            "claims": [{"key": r.claim.key, "text": r.claim.text, "sign": r.claim.sign,
                        "terms": [[t[0], list(t[1])] for t in r.claim.terms], "verdict": r.verdict,
                        "values": {f: {"value": v[0], "low": v[1], "high": v[2], "n": v[3], "status": r.status(f)}
                                   for f, v in r.values.items()}}
                       for r in self.claims],
            "families": {name: summary.to_json() for name, summary in self.families.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FamilyReport:
        """The report saved by :meth:`save` (its claims as saved; :func:`judge_claims` recomputes them)."""
        families = {name: FamilySummary.from_json(entry) for name, entry in data["families"].items()}
        claims = [ClaimResult(Claim(c["key"], c["text"], tuple((t[0], tuple(t[1])) for t in c["terms"]), c["sign"]),
                              {f: (_nan(v["value"]), _nan(v["low"]), _nan(v["high"]), v["n"])
                               for f, v in c["values"].items()})
                  for c in data["claims"]]
        return cls(families, claims, data["n_boot"], data["seed"], data["wall_seconds"], data.get("versions", {}))

    def save(self, directory: str | Path, stem: str = "hypotheses_families") -> list[Path]:
        """Write ``STEM.json`` (everything, per-config gains and predictors included) and ``STEM.txt``."""
        from mfh_sim.store import atomic_write

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return [atomic_write(directory / f"{stem}.json", json.dumps(self.to_json(), indent=1, default=json_default)),
                atomic_write(directory / f"{stem}.txt", self.table() + "\n")]


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def load_family_report(path: str | Path) -> FamilyReport:
    """A :class:`FamilyReport` from the JSON file :meth:`FamilyReport.save` wrote."""
    return FamilyReport.from_json(json.loads(Path(path).read_text()))


def run_families(
    families: Sequence[str | Family] | Mapping[str, Family] | None = None,
    *,
    seeds: int = 100,
    root_seed: int = 0,
    n_boot: int = 2000,
    folds: int = 5,
    out: str | Path | None = None,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: bool = False,
    log=None,
) -> FamilyReport:
    """The head-to-head on each family of ``families`` and the :data:`CLAIMS` judged in each.

    ``families``: names of :data:`FAMILIES` (default: all of them), specs (named 'custom-I'), or
    a mapping of names to specs (``{'gamma-split': family_spec('gamma-split', seed=1)}``).
    Other arguments as :func:`run_head_to_head`; every family uses the same ``seeds``,
    ``root_seed`` and bootstrap seed.  With ``out``, family NAME's simulations go to the results
    directory ``out/NAME/runs`` and its head-to-head to ``out/NAME/hypotheses.{json,txt}``, one
    family after the other, so a rerun resumes where the last one stopped.  ``log(text)`` (if
    given) is called when each family is done.
    """
    start = time.perf_counter()
    chosen = list(FAMILIES) if families is None else families
    if not chosen:
        raise ValueError(f"families={chosen!r} is not allowed: give at least one family")
    specs: dict[str, Family] = {}
    if isinstance(chosen, Mapping):
        specs = dict(chosen)
        chosen = []
    for index, entry in enumerate(chosen):
        name, spec = (entry, family_spec(entry)) if isinstance(entry, str) else (f"custom-{index}", entry)
        if name in specs:
            raise ValueError(f"families={chosen!r} is not allowed: {name!r} is given twice")
        specs[name] = spec
    summaries = {}
    for name, spec in specs.items():
        result = run_head_to_head(spec, seeds=seeds, root_seed=root_seed, n_boot=n_boot, folds=folds,
                                  out=None if out is None else Path(out) / name / "runs", chunk_size=chunk_size,
                                  workers=workers, progress=progress)
        result.family = name
        if out is not None:
            result.save(Path(out) / name)
        summaries[name] = result.summary()
        if log is not None:
            log(f"{name}: {len(result.configs)} configs x {seeds} seeds in {result.wall_seconds:.1f} s")
    from mfh_sim._version import versions as package_versions

    claims = judge_claims(summaries, n_boot=n_boot, seed=root_seed)
    return FamilyReport(summaries, claims, n_boot, int(root_seed), time.perf_counter() - start, package_versions())
