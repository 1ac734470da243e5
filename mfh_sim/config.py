"""Simulation configs: one frozen dataclass, validated once on the host before any tracing.

:func:`make_config` is the single entry point that turns user keywords (ratios or counts, channel
dims, data sizes, model, optimiser, KD weights) into a :class:`SimConfig`; :func:`simulate` and
:func:`sweep` both go through it, so every knob is validated the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, NamedTuple

import numpy as np

from mfh_sim.data import HYPERPLANES
from mfh_sim.losses import KD_LOSSES, KD_REDUCTIONS
from mfh_sim.models import INITS, MODELS
from mfh_sim.train import OPTIMIZERS
from mfh_sim.validation import require_integer
from mfh_sim.venn import VennConfig

RATIO_KEYS = ("gamma", "alpha", "beta")
COUNT_KEYS = ("shared", "a_only", "b_only")
VENN_EXTRA_KEYS = (
    "unseen",
    "shared_nondecisive",
    "a_nondecisive",
    "b_nondecisive",
    "dim_a",
    "dim_b",
)
RATIO_ONLY_KEYS = ("n_visible", "teacher_fraction_when_disjoint")


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines one simulated experiment (apart from the seeds).

    Attributes (ranges are validated on construction):
        venn: the modality Venn diagram and channel counts.
        hyperplane: 'gaussian' (w ~ N(0, I) per run, the paper's Fig. 2/3) or 'ones' (Table 2).
        n_train: training samples (>= 2) shared by teacher and students unless
            ``fresh_student_sample``; n_test: test samples (>= 1), a fresh sample.
        fresh_student_sample: students train on a new paired sample (the paper's Table 2).
        model: 'linear' (one layer with bias, as in the paper) or 'mlp' (ReLU, widths ``hidden``).
        init: 'torch' (U(+-1/sqrt(fan_in)), PyTorch's default, as in the paper) or 'lecun'.
        optimizer: 'sgd' (full batch, heavy-ball ``momentum`` in [0, 1)) or 'adam'.
        learning_rate: > 0; steps: full-batch optimisation steps (>= 1).
        ce_weight, kd_weight: >= 0, weights of CE and of T^2 * KL in the KD student's loss.
        temperature: > 0, the KD softmax temperature T.
        kd_reduction: 'paper' (KL averaged over batch and classes, PyTorch KLDivLoss 'mean', as in
            the original code) or 'batchmean' (per-sample KL).

    Extensions beyond the paper (each default reproduces the paper's generator and protocol, and
    a config that leaves them at their defaults has the same :meth:`identity`, hence the same
    random draws, as before they existed):
        n_classes: >= 2 classes.  2: y = 1[w.z > 0]; more: y = argmax over ``n_classes``
            hyperplanes arranged as a regular simplex in a random (n_classes - 1)-dimensional
            subspace of the decisive latents, so every class has probability exactly
            1/n_classes (see :func:`mfh_sim.data.class_directions`).  Needs
            ``hyperplane='gaussian'`` and n_classes - 1 <= the number of decisive latents.
        label_noise: in [0, (n_classes - 1)/n_classes): each label (training and test alike) is
            replaced, with this probability, by a uniformly drawn *other* class.
        mixing_depth: >= 0 layers of a random tanh network applied to each modality's latent
            channels (0: the channels show the latents themselves, the paper's linear generator).
        mixing_strength: in [0, 1]: each mixing layer maps u to (1 - s) u + s phi(u M) (see
            :func:`mfh_sim.data.mix_channels`); 0 leaves the channels linear.
        kd_loss: 'kl' (T^2 KL, the paper's), 'mse' (squared error between logits) or 'hint'
            (squared error between a learned linear regressor of the student's last hidden layer
            and the teacher's last hidden layer, FitNets-style; needs ``model='mlp'``).
        latent_padding: >= 0 extra latents that no modality shows and the label ignores.  They
            change no distribution; they fix the number of latents (a static shape) so that
            configs with different block sizes share one compiled program.
    """

    venn: VennConfig
    hyperplane: str = "gaussian"
    n_train: int = 200
    n_test: int = 1000
    fresh_student_sample: bool = False
    model: str = "linear"
    hidden: tuple[int, ...] = (64,)
    init: str = "torch"
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.0
    steps: int = 1000
    ce_weight: float = 1.0
    kd_weight: float = 1.0
    temperature: float = 1.0
    kd_reduction: str = "paper"
    n_classes: int = 2
    label_noise: float = 0.0
    mixing_depth: int = 0
    mixing_strength: float = 1.0
    kd_loss: str = "kl"
    latent_padding: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.venn, VennConfig):
            raise ValueError(f"venn={self.venn!r} is not allowed: it must be a VennConfig")
        _choice("hyperplane", self.hyperplane, HYPERPLANES)
        _choice("model", self.model, MODELS)
        _choice("init", self.init, INITS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("kd_reduction", self.kd_reduction, KD_REDUCTIONS)
        object.__setattr__(self, "n_train", require_integer("n_train", self.n_train, 2))
        object.__setattr__(self, "n_test", require_integer("n_test", self.n_test, 1))
        object.__setattr__(self, "steps", require_integer("steps", self.steps, 1))
        if not isinstance(self.fresh_student_sample, (bool, np.bool_)):
            raise ValueError(
                f"fresh_student_sample={self.fresh_student_sample!r} is not allowed: use True or False"
            )
        object.__setattr__(self, "fresh_student_sample", bool(self.fresh_student_sample))
        hidden = self.hidden
        if isinstance(hidden, (int, np.integer)):
            hidden = (hidden,)
        try:
            hidden = tuple(require_integer("hidden", width, 1) for width in hidden)
        except TypeError:
            raise ValueError(f"hidden={self.hidden!r} is not allowed: give layer widths >= 1") from None
        if self.model == "mlp" and not hidden:
            raise ValueError("hidden=() is not allowed with model='mlp': give at least one width")
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(
            self, "learning_rate", _real("learning_rate", self.learning_rate, 0.0, None, open_low=True)
        )
        object.__setattr__(self, "momentum", _real("momentum", self.momentum, 0.0, 1.0, open_high=True))
        object.__setattr__(self, "ce_weight", _real("ce_weight", self.ce_weight, 0.0, None))
        object.__setattr__(self, "kd_weight", _real("kd_weight", self.kd_weight, 0.0, None))
        object.__setattr__(
            self, "temperature", _real("temperature", self.temperature, 0.0, None, open_low=True)
        )
        if self.optimizer == "adam" and self.momentum != 0.0:
            raise ValueError(
                f"momentum={self.momentum} is not allowed with optimizer='adam': it applies to 'sgd'"
            )
        self._validate_extensions()

    def _validate_extensions(self) -> None:
        n_classes = require_integer("n_classes", self.n_classes, 2)
        object.__setattr__(self, "n_classes", n_classes)
        if n_classes > 2 and self.hyperplane != "gaussian":
            raise ValueError(
                f"n_classes={n_classes} is not allowed with hyperplane={self.hyperplane!r}: "
                "several classes need hyperplane='gaussian'"
            )
        if n_classes - 1 > self.venn.n_decisive:
            raise ValueError(
                f"n_classes={n_classes} is not allowed with {self.venn.n_decisive} decisive latents: "
                "the class hyperplanes span n_classes - 1 directions of the decisive latents, so "
                f"n_classes <= {self.venn.n_decisive + 1}"
            )
        noise_limit = (n_classes - 1) / n_classes
        object.__setattr__(
            self, "label_noise",
            _real("label_noise", self.label_noise, 0.0, noise_limit, open_high=True),
        )
        object.__setattr__(self, "mixing_depth", require_integer("mixing_depth", self.mixing_depth, 0))
        object.__setattr__(
            self, "mixing_strength", _real("mixing_strength", self.mixing_strength, 0.0, 1.0)
        )
        _choice("kd_loss", self.kd_loss, KD_LOSSES)
        if self.kd_loss == "hint" and self.model != "mlp":
            raise ValueError(
                f"kd_loss='hint' is not allowed with model={self.model!r}: a feature hint matches "
                "hidden layers, so it needs model='mlp'"
            )
        object.__setattr__(self, "latent_padding", require_integer("latent_padding", self.latent_padding, 0))

    # -------------------------------------------------------------- ratios, for convenience
    @property
    def gamma(self) -> float:
        return self.venn.gamma

    @property
    def alpha(self) -> float:
        return self.venn.alpha

    @property
    def beta(self) -> float:
        return self.venn.beta

    @property
    def n_latent(self) -> int:
        """Latents drawn per sample: the Venn diagram's blocks plus ``latent_padding``."""
        return self.venn.n_latent + self.latent_padding

    def as_dict(self) -> dict[str, Any]:
        """Flat, JSON-friendly dict: the Venn counts and dims next to the training knobs.

        Knobs added after the paper's protocol (:data:`EXTENSION_DEFAULTS`) appear only when
        they differ from their defaults, so the dict, and with it :meth:`identity` and every
        random draw, of a config that does not use them is what it always was.
        """
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "venn"}
        out["hidden"] = list(self.hidden)
        for name, default in EXTENSION_DEFAULTS.items():
            if out[name] == default:
                del out[name]
        return {**self.venn.as_dict(), **out}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SimConfig":
        venn_names = {f.name for f in fields(VennConfig)}
        venn = VennConfig(**{k: v for k, v in values.items() if k in venn_names})
        rest = {k: v for k, v in values.items() if k not in venn_names}
        if "hidden" in rest:
            rest["hidden"] = tuple(rest["hidden"])
        return cls(venn=venn, **rest)

    def identity(self) -> int:
        """A 32-bit integer fixed by the config's content: the grid point's key derives from it."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")

    def static_signature(self) -> "StaticSpec":
        """The part of the config that fixes array shapes and program structure."""
        return StaticSpec(
            dim_a=self.venn.dim_a,
            dim_b=self.venn.dim_b,
            n_latent=self.n_latent,
            n_train=self.n_train,
            n_test=self.n_test,
            steps=self.steps,
            model=self.model,
            hidden=self.hidden if self.model == "mlp" else (),
            init=self.init,
            optimizer=self.optimizer,
            kd_reduction=self.kd_reduction,
            fresh_student_sample=self.fresh_student_sample,
            n_classes=self.n_classes,
            label_noise=self.label_noise > 0.0,
            mixing_depth=self.mixing_depth,
            kd_loss=self.kd_loss,
        )

    @property
    def uses_margin_fast_path(self) -> bool:
        """True where :mod:`mfh_sim.protocol` trains in the exact two-class margin form."""
        return self.static_signature().uses_margin_fast_path


class StaticSpec(NamedTuple):
    """Shape- and structure-defining settings; configs that share one share a compiled program."""

    dim_a: int
    dim_b: int
    n_latent: int
    n_train: int
    n_test: int
    steps: int
    model: str
    hidden: tuple[int, ...]
    init: str
    optimizer: str
    kd_reduction: str
    fresh_student_sample: bool
    n_classes: int = 2
    label_noise: bool = False
    mixing_depth: int = 0
    kd_loss: str = "kl"

    @property
    def uses_margin_fast_path(self) -> bool:
        """Linear two-class models under SGD with the KL loss train exactly in margin form."""
        return (self.model == "linear" and self.optimizer == "sgd" and self.n_classes == 2
                and self.kd_loss == "kl")


SIM_KEYS = tuple(f.name for f in fields(SimConfig) if f.name != "venn")
#: Knobs beyond the paper's protocol and their defaults (left out of ``as_dict`` at default).
EXTENSION_DEFAULTS: dict[str, Any] = {
    "n_classes": 2,
    "label_noise": 0.0,
    "mixing_depth": 0,
    "mixing_strength": 1.0,
    "kd_loss": "kl",
    "latent_padding": 0,
}
ALL_KEYS = RATIO_KEYS + COUNT_KEYS + VENN_EXTRA_KEYS + RATIO_ONLY_KEYS + ("venn",) + SIM_KEYS


def make_config(**knobs: Any) -> SimConfig:
    """Build and validate a :class:`SimConfig` from keywords.

    The Venn diagram comes from exactly one of:
      * ``venn=VennConfig(...)``;
      * counts ``shared``, ``a_only``, ``b_only`` (missing ones are 0);
      * ratios: two or three of ``gamma``, ``alpha``, ``beta`` in [0, 1], rounded to counts of
        ``n_visible`` (default 20) visible decisive latents by
        :meth:`VennConfig.from_ratios`.
    ``unseen``, ``shared_nondecisive``, ``a_nondecisive``, ``b_nondecisive``, ``dim_a`` and
    ``dim_b`` (default 50 each) apply to counts and ratios alike.  Every other keyword is a
    :class:`SimConfig` field.  Unknown keywords raise :class:`ValueError`.
    """
    unknown = sorted(set(knobs) - set(ALL_KEYS))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown}: allowed are {', '.join(ALL_KEYS)}"
        )
    ratio_given = {k: knobs[k] for k in RATIO_KEYS if knobs.get(k) is not None}
    count_given = {k: knobs[k] for k in COUNT_KEYS if knobs.get(k) is not None}
    extras = {k: knobs[k] for k in VENN_EXTRA_KEYS if knobs.get(k) is not None}
    ratio_only = {k: knobs[k] for k in RATIO_ONLY_KEYS if knobs.get(k) is not None}
    venn = knobs.get("venn")
    ways = [name for name, given in (("venn", venn is not None), ("counts", count_given),
                                     ("ratios", ratio_given)) if given]
    if len(ways) != 1:
        raise ValueError(
            "the Venn diagram must be given exactly one way: venn=VennConfig(...), counts "
            f"(shared, a_only, b_only) or ratios (gamma, alpha, beta); got {ways or 'none'}"
        )
    if ratio_only and ways[0] != "ratios":
        raise ValueError(f"{sorted(ratio_only)} only apply when the Venn diagram is given by ratios")
    if venn is not None:
        if extras:
            raise ValueError(f"{sorted(extras)} cannot be combined with venn=...: set them in the VennConfig")
        if not isinstance(venn, VennConfig):
            raise ValueError(f"venn={venn!r} is not allowed: it must be a VennConfig")
    elif count_given:
        venn = VennConfig(**{k: count_given.get(k, 0) for k in COUNT_KEYS}, **extras)
    else:
        venn = VennConfig.from_ratios(**ratio_given, **ratio_only, **extras)
    sim = {k: knobs[k] for k in SIM_KEYS if k in knobs}
    return SimConfig(venn=venn, **sim)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: use one of {allowed}")


def _real(
    name: str,
    value: Any,
    low: float | None,
    high: float | None,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    lo = "(" if open_low else "["
    hi = ")" if open_high else "]"
    allowed = f"a finite number in {lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not allowed: it must be {allowed}") from None
    bad = not math.isfinite(number)
    if low is not None:
        bad |= number < low or (open_low and number == low)
    if high is not None:
        bad |= number > high or (open_high and number == high)
    if bad:
        raise ValueError(f"{name}={value!r} is not allowed: it must be {allowed}")
    return number
