"""Simulation configs: one frozen dataclass, validated once on the host before any tracing.

:func:`make_config` is the single entry point that turns user keywords (ratios or counts, channel
dims, data sizes, model, optimiser, KD weights) into a :class:`SimConfig`; :func:`simulate` and
:func:`sweep` both go through it, so every knob is validated the same way.

Every knob is described once, in the metadata of its dataclass field (:func:`knob`): its kind
(what the command line parses), its allowed choices, one line of documentation with its range
and unit, and its role in a compiled program (static or traced).  :data:`KNOBS` collects them;
the options of ``mfh-sim sweep`` and the knob table of the README (:func:`knobs_markdown`) are
generated from it, so adding a knob means adding one field here (and using it in the protocol).

This module imports only :mod:`mfh_sim.choices`, :mod:`mfh_sim.validation` and
:mod:`mfh_sim.venn` (and numpy): the command line reads it without loading JAX.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Literal, NamedTuple

import numpy as np

from mfh_sim.choices import HYPERPLANES, INITS, KD_LOSSES, KD_REDUCTIONS, MODELS, OPTIMIZERS
from mfh_sim.validation import require_choice, require_integer, require_real
from mfh_sim.venn import VennConfig

#: What the command line parses for a knob: an integer, a real number, one of ``choices``, a
#: boolean, or MLP layer widths (``64`` or ``64x64``).
Kind = Literal["int", "float", "choice", "bool", "widths"]
#: A knob's part in a compiled program.  'static': it fixes shapes or program structure, so
#: configs that differ in it compile separately; 'traced': a value inside one compiled program,
#: so a grid over it is one computation; 'layout': the Venn diagram, traced as index arrays and
#: masks (but the total number of latents, with ``latent_padding``, is a static shape).
Role = Literal["static", "traced", "layout"]
KINDS: tuple[str, ...] = ("int", "float", "choice", "bool", "widths")
ROLES: tuple[str, ...] = ("static", "traced", "layout")


@dataclass(frozen=True)
class Knob:
    """One knob of :func:`make_config`, as the command line and the docs see it.

    Attributes:
        name: the keyword (``n_train``); the command-line option is ``--n-train``.
        kind: one of :data:`KINDS`.
        doc: one line: what it is, its range and unit.
        role: one of :data:`ROLES`.
        default: the default value (None where the Venn diagram is given another way).
        choices: the allowed values of a 'choice' knob (from :mod:`mfh_sim.choices`).
        group: 'ratios' (gamma, alpha, beta and what rounds them to counts), 'venn' (the
            diagram's counts and channels) or 'training' (a :class:`SimConfig` field).
        extension: a knob beyond the paper's protocol; :meth:`SimConfig.as_dict` leaves it out
            at its default, so configs that do not use it keep their identity (and random draws).
    """

    name: str
    kind: str
    doc: str
    role: str
    default: Any = None
    choices: tuple[str, ...] = ()
    group: str = "training"
    extension: bool = False

    @property
    def option(self) -> str:
        """The command-line option: ``--`` and the name with dashes."""
        return "--" + self.name.replace("_", "-")


def knob(
    default: Any,
    kind: Kind,
    doc: str,
    role: Role,
    *,
    choices: tuple[str, ...] = (),
    extension: bool = False,
) -> Any:
    """A :class:`SimConfig` field with its :class:`Knob` description in ``metadata``.

    ``default`` is the field's default; ``kind``, ``doc``, ``role``, ``choices`` and
    ``extension`` are as in :class:`Knob`.  A tuple default (``hidden``) is stored as is: fields
    of a frozen dataclass are never mutated.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not allowed: use one of {KINDS}")
    if role not in ROLES:
        raise ValueError(f"role={role!r} is not allowed: use one of {ROLES}")
    if (kind == "choice") != bool(choices):
        raise ValueError(f"choices={choices!r} is not allowed with kind={kind!r}: only 'choice' knobs have them")
    metadata = {"kind": kind, "doc": doc, "role": role, "choices": tuple(choices), "extension": extension}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines one simulated experiment (apart from the seeds).

    Each field's range, unit and role is in its :func:`knob` metadata (see :data:`KNOBS`,
    ``mfh-sim sweep --help`` and the README's knob table); ranges are validated on construction.

    The knobs marked ``extension`` go beyond the paper (each default reproduces the paper's
    generator and protocol, and a config that leaves them at their defaults has the same
    :meth:`identity`, hence the same random draws, as before they existed):
        n_classes: 2: y = 1[w.z > 0]; more: y = argmax over ``n_classes`` hyperplanes arranged
            as a regular simplex in a random (n_classes - 1)-dimensional subspace of the decisive
            latents, so every class has probability exactly 1/n_classes (see
            :func:`mfh_sim.data.class_directions`).  Needs ``hyperplane='gaussian'`` and
            n_classes - 1 <= the number of decisive latents.
        label_noise: each label (training and test alike) is replaced, with this probability, by
            a uniformly drawn *other* class.
        mixing_depth, mixing_strength: layers of a random tanh network applied to each
            modality's latent channels; each maps u to (1 - s) u + s phi(u M) (see
            :func:`mfh_sim.data.mix_channels`).
        kd_loss: 'hint' is the squared error between a learned linear regressor of the
            student's last hidden layer and the teacher's last hidden layer (FitNets-style).
        latent_padding: extra latents change no distribution; they fix the number of latents
            (a static shape) so that configs with different block sizes share one program.
    """

    venn: VennConfig
    hyperplane: str = knob(
        "gaussian", "choice",
        "hyperplane over the decisive latents: 'gaussian' (w ~ N(0, I) per run; Fig. 2, 3) or 'ones' (Table 2)",
        "traced", choices=HYPERPLANES)
    n_train: int = knob(
        200, "int", "training samples (paired x^a, x^b), >= 2; shared by teacher and students", "static")
    n_test: int = knob(1000, "int", "test samples, >= 1, a fresh draw", "static")
    fresh_student_sample: bool = knob(
        False, "bool", "students train on a new paired sample of n_train (true: the paper's Table 2)", "static")
    model: str = knob(
        "linear", "choice", "teacher and students: 'linear' (one layer with bias; the paper's) or 'mlp' (ReLU)",
        "static", choices=MODELS)
    hidden: tuple[int, ...] = knob(
        (64,), "widths", "MLP hidden widths, each >= 1 (model='mlp' only); CLI: 64 or 64x64", "static")
    init: str = knob(
        "torch", "choice", "weight init: 'torch' (U(+-1/sqrt(fan_in)); the paper's) or 'lecun'",
        "static", choices=INITS)
    optimizer: str = knob(
        "sgd", "choice",
        "training: full-batch 'sgd' (heavy-ball momentum; the paper's), 'adam', or 'erm' (ridge ERM "
        "solved to convergence; linear models, any number of classes, needs l2 > 0)",
        "static", choices=OPTIMIZERS)
    learning_rate: float = knob(0.1, "float", "step size, > 0", "traced")
    momentum: float = knob(0.0, "float", "heavy-ball momentum of 'sgd', in [0, 1) (0 with 'adam')", "traced")
    steps: int = knob(1000, "int", "full-batch optimisation steps per training, >= 1", "static")
    ce_weight: float = knob(1.0, "float", "weight of cross-entropy in the KD student's loss, >= 0", "traced")
    kd_weight: float = knob(1.0, "float", "weight of the KD term (T^2 KL for kd_loss='kl'), >= 0", "traced")
    temperature: float = knob(1.0, "float", "KD softmax temperature T, > 0", "traced")
    kd_reduction: str = knob(
        "paper", "choice",
        "KL averaged over batch and classes ('paper', PyTorch KLDivLoss 'mean') or per sample ('batchmean')",
        "static", choices=KD_REDUCTIONS)
    n_classes: int = knob(
        2, "int", "classes, >= 2 and <= decisive latents + 1 (> 2 needs hyperplane='gaussian')", "static",
        extension=True)
    label_noise: float = knob(
        0.0, "float",
        "probability a label is replaced by another class, in [0, (n_classes-1)/n_classes); "
        "whether it is > 0 is static", "traced", extension=True)
    mixing_depth: int = knob(
        0, "int", "layers of random tanh mixing of each modality's channels, >= 0 (0: linear, the paper's)",
        "static", extension=True)
    mixing_strength: float = knob(
        1.0, "float",
        "strength s in [0, 1] of each mixing layer u -> (1 - s) u + s phi(u M / sqrt(c)) (data.mix_channels)",
        "traced", extension=True)
    kd_loss: str = knob(
        "kl", "choice", "KD term: 'kl' (T^2 KL; the paper's), 'mse' (logits) or 'hint' (features; needs 'mlp')",
        "static", choices=KD_LOSSES, extension=True)
    l2: float = knob(
        0.0, "float",
        "ridge weight of optimizer='erm': each fit minimises the mean loss + (l2/2)||theta||^2 with two "
        "classes (theta the margin weights), + l2||W||_F^2 with more (W the logit weights; the same at "
        "two), biases unpenalised; > 0 there, 0 otherwise", "traced", extension=True)
    latent_padding: int = knob(
        0, "int", "extra latents no modality shows and the label ignores, >= 0 (to share one program)",
        "static", extension=True)

    def __post_init__(self) -> None:
        if not isinstance(self.venn, VennConfig):
            raise ValueError(f"venn={self.venn!r} is not allowed: it must be a VennConfig")
        require_choice("hyperplane", self.hyperplane, HYPERPLANES)
        require_choice("model", self.model, MODELS)
        require_choice("init", self.init, INITS)
        require_choice("optimizer", self.optimizer, OPTIMIZERS)
        require_choice("kd_reduction", self.kd_reduction, KD_REDUCTIONS)
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
            self, "learning_rate", require_real("learning_rate", self.learning_rate, 0.0, None, open_low=True)
        )
        object.__setattr__(self, "momentum", require_real("momentum", self.momentum, 0.0, 1.0, open_high=True))
        object.__setattr__(self, "ce_weight", require_real("ce_weight", self.ce_weight, 0.0, None))
        object.__setattr__(self, "kd_weight", require_real("kd_weight", self.kd_weight, 0.0, None))
        object.__setattr__(
            self, "temperature", require_real("temperature", self.temperature, 0.0, None, open_low=True)
        )
        self._validate_extensions()
        self._validate_dependencies()

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
            require_real("label_noise", self.label_noise, 0.0, noise_limit, open_high=True),
        )
        object.__setattr__(self, "mixing_depth", require_integer("mixing_depth", self.mixing_depth, 0))
        object.__setattr__(
            self, "mixing_strength", require_real("mixing_strength", self.mixing_strength, 0.0, 1.0)
        )
        require_choice("kd_loss", self.kd_loss, KD_LOSSES)
        if self.kd_loss == "hint" and self.model != "mlp":
            raise ValueError(
                f"kd_loss='hint' is not allowed with model={self.model!r}: a feature hint matches "
                "hidden layers, so it needs model='mlp'"
            )
        object.__setattr__(self, "latent_padding", require_integer("latent_padding", self.latent_padding, 0))
        self._validate_erm()

    def _validate_erm(self) -> None:
        object.__setattr__(self, "l2", require_real("l2", self.l2, 0.0, None))
        if self.optimizer != "erm":
            return  # a ridge without 'erm' is refused with the other knobs that would do nothing
        object.__setattr__(self, "l2", require_real("l2", self.l2, 0.0, None, open_low=True))
        # The converged solvers train linear layers (two classes in margin form, more as a softmax)
        # with the KL or the logit-MSE distillation term (mfh_sim.erm).
        for name, value, allowed in (("model", self.model, ("linear",)), ("kd_loss", self.kd_loss, ("kl", "mse"))):
            if value not in allowed:
                shown = " or ".join(repr(v) for v in allowed)
                raise ValueError(
                    f"{name}={value!r} is not allowed with optimizer='erm': the converged ERM solver "
                    f"trains {name}={shown} only"
                )

    def _validate_dependencies(self) -> None:
        """Refuse a knob set away from its default where the other knobs leave it no effect
        (:data:`DEPENDENCIES`): two configs that differ only in it would give the same numbers."""
        for rule in DEPENDENCIES:
            value, default = getattr(self, rule.knob), KNOBS[rule.knob].default
            if value != default and not rule.acts(getattr(self, rule.on)):
                raise ValueError(
                    f"{rule.knob}={value!r} is not allowed with {rule.on}={getattr(self, rule.on)!r}: "
                    f"{rule.knob} has no effect there ({rule.why}); it acts only with {rule.when}, so "
                    f"leave it at its default {default!r}"
                )

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

        Knobs added after the paper's protocol (:data:`EXTENSION_DEFAULTS`, the fields marked
        ``extension``) appear only when they differ from their defaults, so the dict, and with it
        :meth:`identity` and every random draw, of a config that does not use them is what it
        always was.
        """
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "venn"}
        out["hidden"] = list(self.hidden)
        for name, default in EXTENSION_DEFAULTS.items():
            if out[name] == default:
                del out[name]
        return {**self.venn.as_dict(), **out}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimConfig:
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


#: The Venn diagram given by ratios: rounded to counts by :meth:`VennConfig.from_ratios`.
RATIO_KNOBS: tuple[Knob, ...] = (
    Knob("gamma", "float", "|G| / |G u A u B|: share of the visible decisive latents both modalities see, "
         "in [0, 1]", "layout", group="ratios"),
    Knob("alpha", "float", "|A| / |G u A|: share of the teacher's decisive latents only it sees, in [0, 1]",
         "layout", group="ratios"),
    Knob("beta", "float", "|B| / |G u B|: share of the student's decisive latents only it sees, in [0, 1]",
         "layout", group="ratios"),
    Knob("n_visible", "int", "visible decisive latents |G u A u B| the ratios are rounded to, >= 1",
         "layout", default=20, group="ratios"),
    Knob("teacher_fraction_when_disjoint", "float",
         "share of the visible decisive latents the teacher gets when gamma = 0, in [0, 1]",
         "layout", default=0.5, group="ratios"),
)


def _field_knob(item: Field, group: str) -> Knob:
    """The :class:`Knob` of a dataclass field from its metadata (None: a field without default)."""
    meta = item.metadata
    if not {"kind", "doc", "role"} <= set(meta):
        # A field without metadata would have no command-line option and no docs: say so at import.
        raise TypeError(f"field {item.name!r} has no knob metadata: declare it with knob(default, kind, doc, role)")
    default = None if item.default is MISSING else item.default
    return Knob(item.name, meta["kind"], meta["doc"], meta["role"], default=default,
                choices=tuple(meta.get("choices", ())), group=group, extension=bool(meta.get("extension")))


#: Every keyword of :func:`make_config` but ``venn``, in the order the docs list them: the ratios,
#: the Venn diagram's counts and channels (:class:`VennConfig`'s fields), then the training knobs
#: (:class:`SimConfig`'s fields).  The command line and the docs are generated from it.
KNOBS: dict[str, Knob] = {
    k.name: k
    for k in (
        *RATIO_KNOBS,
        *(_field_knob(f, "venn") for f in fields(VennConfig)),
        *(_field_knob(f, "training") for f in fields(SimConfig) if f.name != "venn"),
    )
}

class Dependence(NamedTuple):
    """Knob ``knob`` acts only when knob ``on`` satisfies ``acts`` (described by ``when``): set
    away from its default anywhere else it would change no number (``why``), so it is refused."""

    knob: str
    on: str
    acts: Callable[[Any], bool]
    when: str
    why: str


_GRADIENT = ("sgd", "adam")
#: Every knob that some other knob can leave without effect, and when.  ``tests/test_knobs.py``
#: checks each rule, and checks by running the simulator that every knob not refused changes the
#: numbers under every setting of the knobs listed here.  One value is exempt by design:
#: ``kd_weight=0`` switches the KD term off, so the term's own knobs (``temperature``,
#: ``kd_reduction``, ``kd_loss``) do nothing there; it is the control point of a sweep over the KD
#: weight (``kd_weight=[0, 0.5, 1]`` with ``kd_loss='mse'``), which refusing them would forbid.
DEPENDENCIES: tuple[Dependence, ...] = (
    Dependence("hidden", "model", lambda v: v == "mlp", "model='mlp'", "a linear model has no hidden layer"),
    Dependence("momentum", "optimizer", lambda v: v == "sgd", "optimizer='sgd'",
               "momentum is SGD's heavy ball; Adam keeps its own moments and converged ERM takes no steps"),
    Dependence("learning_rate", "optimizer", lambda v: v in _GRADIENT, "optimizer='sgd' or 'adam'",
               "converged ERM solves to its minimiser, without a step size"),
    Dependence("steps", "optimizer", lambda v: v in _GRADIENT, "optimizer='sgd' or 'adam'",
               "converged ERM iterates to convergence, not for a number of steps"),
    Dependence("init", "optimizer", lambda v: v in _GRADIENT, "optimizer='sgd' or 'adam'",
               "converged ERM reaches its unique minimiser from any start"),
    Dependence("l2", "optimizer", lambda v: v == "erm", "optimizer='erm'",
               "gradient training here has no ridge"),
    Dependence("temperature", "kd_loss", lambda v: v == "kl", "kd_loss='kl'",
               "only the KL term softens the logits by a temperature"),
    Dependence("kd_reduction", "kd_loss", lambda v: v == "kl", "kd_loss='kl'",
               "only the KL term is reduced over classes"),
    Dependence("mixing_strength", "mixing_depth", lambda v: v > 0, "mixing_depth >= 1",
               "without mixing layers there is nothing to mix"),
)


RATIO_KEYS = ("gamma", "alpha", "beta")
RATIO_ONLY_KEYS = tuple(k.name for k in RATIO_KNOBS if k.name not in RATIO_KEYS)
COUNT_KEYS = ("shared", "a_only", "b_only")
VENN_EXTRA_KEYS = tuple(f.name for f in fields(VennConfig) if f.name not in COUNT_KEYS)
SIM_KEYS = tuple(f.name for f in fields(SimConfig) if f.name != "venn")
#: Knobs beyond the paper's protocol and their defaults (left out of ``as_dict`` at default).
EXTENSION_DEFAULTS: dict[str, Any] = {k.name: k.default for k in KNOBS.values() if k.extension}
ALL_KEYS = RATIO_KEYS + COUNT_KEYS + VENN_EXTRA_KEYS + RATIO_ONLY_KEYS + ("venn",) + SIM_KEYS


def knobs_markdown() -> str:
    """The knobs as a Markdown table (keyword, default, role, range and unit), from :data:`KNOBS`.

    The README's knob table is this text (a test keeps them equal; regenerate it with
    ``python -m mfh_sim.config``).
    """
    titles = {"ratios": "Venn diagram by ratios", "venn": "Venn diagram by counts, and channels",
              "training": "data, models and training"}
    lines = ["| keyword | default | role | what, range, unit |", "|---|---|---|---|"]
    for group, title in titles.items():
        lines.append(f"| **{title}** | | | |")
        for item in KNOBS.values():
            if item.group != group:
                continue
            default = "required" if item.default is None and group == "venn" else _show(item.default)
            if item.name in RATIO_KEYS:
                default = "(two of three)"
            extra = " (beyond the paper)" if item.extension else ""
            lines.append(f"| `{item.name}` | {default} | {item.role} | {item.doc.replace('|', chr(92) + '|')}"
                         f"{extra} |")
    return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def make_config(**knobs: Any) -> SimConfig:
    """Build and validate a :class:`SimConfig` from keywords.

    The Venn diagram comes from exactly one of:
      * ``venn=VennConfig(...)``;
      * counts ``shared``, ``a_only``, ``b_only``, all three (0 for an empty block);
      * ratios: two or three of ``gamma``, ``alpha``, ``beta`` in [0, 1], rounded to counts of
        ``n_visible`` (default 20) visible decisive latents by
        :meth:`VennConfig.from_ratios`.
    ``unseen``, ``shared_nondecisive``, ``a_nondecisive``, ``b_nondecisive``, ``dim_a`` and
    ``dim_b`` (default 50 each) apply to counts and ratios alike.  Every other keyword is a
    :class:`SimConfig` field.  Unknown keywords raise :class:`ValueError` (with the nearest known
    name), and so does a knob set away from its default where the other knobs leave it no effect
    (:data:`DEPENDENCIES`, ``teacher_fraction_when_disjoint`` unless gamma = 0).
    """
    unknown = sorted(set(knobs) - set(ALL_KEYS))
    if unknown:
        hints = [f"{name!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(name, ALL_KEYS, 1))
                 else repr(name) for name in unknown]
        raise ValueError(
            f"unknown parameter(s) {', '.join(hints)}: allowed are {', '.join(ALL_KEYS)}"
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
        missing = [k for k in COUNT_KEYS if k not in count_given]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} missing: counts are given all three or not at all (shared, a_only, "
                f"b_only; 0 for an empty block); got {', '.join(f'{k}={v!r}' for k, v in count_given.items())}"
            )
        venn = VennConfig(**count_given, **extras)
    else:
        venn = VennConfig.from_ratios(**ratio_given, **ratio_only, **extras)
        fraction = ratio_only.get("teacher_fraction_when_disjoint")
        if fraction is not None and fraction != KNOBS["teacher_fraction_when_disjoint"].default and venn.shared:
            shown = ", ".join(f"{k}={v!r}" for k, v in ratio_given.items())
            raise ValueError(
                f"teacher_fraction_when_disjoint={fraction!r} is not allowed with {shown}: it splits the "
                f"decisive latents only when gamma = 0 (no shared latent), and here gamma = {venn.gamma:.4g}, "
                "so it has no effect; leave it at its default 0.5"
            )
    sim = {k: knobs[k] for k in SIM_KEYS if k in knobs}
    return SimConfig(venn=venn, **sim)


if __name__ == "__main__":  # pragma: no cover - regenerates the README's knob table
    print(knobs_markdown(), end="")
