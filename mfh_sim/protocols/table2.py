"""The modality-general teacher and the paper's Table 2 (Xue et al., ICLR 2023, Section 5).

A teacher restricted to the modality-general decisive channels of x^a is less accurate than one
that sees all of x^a, yet it teaches a student on x^b better.  This module builds that teacher
from a *selection* of channels of x^a, made one of four ways (:data:`MODES`):

* ``'random'``: ``count`` channels drawn uniformly without replacement (baseline);
* ``'ground_truth'``: the truly shared channels, known from the generator;
* ``'algorithm1'``: the ``count`` channels of highest Algorithm 1 salience
  (:mod:`mfh_sim.salience`), for when the generator is unknown;
* ``'modality_specific'``: the ablation, every channel *except* Algorithm 1's top ``count``
  (its ``dim_a - count`` least salient channels).

``count`` is the size of the modality-general set, |G| in the Table 2 protocol.

The Table 2 protocol (one row = counts (a_only, shared) of decisive latents; all latents decisive,
hyperplane all ones, x^a of ``dim_a`` = 50 channels shows all of them, x^b of ``dim_b`` = 50
channels shows the shared ones, so gamma = shared / (shared + a_only) and beta = 0).  Per seed:

1. one paired sample: the teachers' training sample (n_train), the students' fresh training
   sample (n_train) and a test sample (n_test);
2. the regular teacher: linear on all of x^a, CE, full-batch GD (lr 0.1, 1000 steps);
3. Algorithm 1 on the teachers' sample (joint SGD lr 0.01, momentum 0.9, 1000 steps; M
   permutations), giving the salience of x^a's channels and the recovery rate, the share of the
   truly shared channels among its top |G|;
4. per mode, a modality-general teacher: linear on the selected channels of x^a only, trained
   like the regular teacher on the teachers' sample, initialised as a layer of fan-in = number
   of selected channels (torch bound 1/sqrt(fan_in));
5. students on x^b of the fresh sample, all from one initial draw: no KD (CE), regular KD from
   the regular teacher, and KD from each modality-general teacher, loss
   CE + KL(teacher || student) with the 'paper' reduction (KL averaged over batch and classes),
   temperature 1, weights 1 and 1; every KD student is *crossmodal*: its teacher reads x^a,
   the student x^b;
6. test accuracies on the test sample.

Implementation.  A selection is a 0/1 mask over x^a's channels; a teacher on the masked x^a is
exactly a linear layer on the selected channels (masked channels are zero, so their weights get
no gradient and never touch the output) once its initial weights are drawn with the bound of the
selected fan-in.  So every mode, every row and every seed shares one shape and one compiled
program: ``jit(vmap(run))`` over (row, seed), with linear models trained in the exact margin form
of :func:`mfh_sim.train.fit_linear_margin`.  Keys come from identity, as in
:mod:`mfh_sim.engine`: run (row r, seed s) uses ``fold_in(fold_in(PRNGKey(root_seed),
identity(r)), s)``, so a row's numbers do not depend on which rows, how many seeds, or which
chunks it ran with.

This module is the protocol only: :class:`Table2Protocol` runs it through the generic engine
(:func:`mfh_sim.engine.execute`), so Table 2 gains devices, memory-sized chunks, the results store
and resume; :func:`mfh_sim.experiments.paper.table2` is the entry point and
:class:`mfh_sim.results.Table2Result` the result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim import erm
from mfh_sim.data import Layout, make_layout, sample, split
from mfh_sim.losses import margin_gradient
from mfh_sim.models import linear_init, torch_linear_layers
from mfh_sim.protocols import MetricSpec, Protocol
from mfh_sim.salience import algorithm1
from mfh_sim.train import fit_linear_margin, margin_params
from mfh_sim.venn import VennConfig

#: Ways to choose the channels of the modality-general teacher.
MODES = ("random", "ground_truth", "algorithm1", "modality_specific")
#: Modes that need Algorithm 1's salience.
SALIENCE_MODES = ("algorithm1", "modality_specific")
#: Which paired data Algorithm 1 runs on: the teachers' sample (as in the paper's code) or the
#: teachers' and the students' samples together (all paired data available at training time).
ALGORITHM1_DATA = ("teacher", "all")
#: Teachers and students train by the paper's full-batch GD ('sgd', ``steps`` steps at
#: ``learning_rate``, no ridge) or by converged ridge-logistic ERM ('erm', :mod:`mfh_sim.erm`, ridge
#: ``l2`` > 0 on the margin weights), checked by :func:`mfh_sim.validation.require_optimizer`.
#: Algorithm 1's joint training is SGD with momentum either way.

# KD settings of the paper's synthetic experiments.
_CE_WEIGHT, _KD_WEIGHT, _TEMPERATURE, _KD_REDUCTION = 1.0, 1.0, 1.0, "paper"


# ============================================================================ selection
def _top_mask(score: jax.Array, count: jax.Array) -> jax.Array:
    """True on the ``count`` channels of highest score (ties: lower channel index first)."""
    rank = jnp.argsort(jnp.argsort(-score, stable=True), stable=True)
    return rank < count


def selection_mask(
    mode: str,
    count: jax.Array | int,
    *,
    key: jax.Array | None = None,
    salience: jax.Array | None = None,
    shared_mask: jax.Array | None = None,
) -> jax.Array:
    """Boolean mask (dim,) of the channels of x^a that the teacher of ``mode`` reads.

    Pure and jittable (``mode`` static, ``count`` may be traced); no validation: use
    :func:`select_channels` on the host.  ``key`` is needed for 'random', ``shared_mask``
    (bool (dim,), the truly shared channels) for 'ground_truth', ``salience`` ((dim,)) for
    'algorithm1' and 'modality_specific'.
    """
    if mode == "random":
        # The top `count` of i.i.d. uniform scores is a uniform draw without replacement.
        dim = (salience if salience is not None else shared_mask).shape[-1]
        return _top_mask(jax.random.uniform(key, (dim,)), count)
    if mode == "ground_truth":
        return _top_mask(shared_mask.astype(jnp.float32), count)
    if mode == "algorithm1":
        return _top_mask(salience, count)
    if mode == "modality_specific":
        return ~_top_mask(salience, count)
    raise ValueError(f"mode={mode!r} is not allowed: use one of {MODES}")


def _require_modes(modes: Any) -> tuple[str, ...]:
    if isinstance(modes, str):
        modes = (modes,)
    try:
        modes = tuple(modes)
    except TypeError:
        raise ValueError(f"modes={modes!r} is not allowed: give a sequence of {MODES}") from None
    if not modes:
        raise ValueError(f"modes={modes!r} is not allowed: give at least one of {MODES}")
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not allowed: use one of {MODES}")
    if len(set(modes)) != len(modes):
        raise ValueError(f"modes={modes!r} is not allowed: each mode at most once")
    return modes


def _require_count(count: Any, dim: int, modes: Sequence[str], name: str = "count") -> int:
    upper = dim - 1 if "modality_specific" in modes else dim
    if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)) or not (
        1 <= count <= upper
    ):
        why = (
            f" ('modality_specific' keeps the other {dim} - {name} channels, so at least one)"
            if upper < dim else ""
        )
        raise ValueError(
            f"{name}={count!r} is not allowed: select an integer number of channels in "
            f"[1, {upper}] of the {dim} that exist{why}"
        )
    return int(count)


def select_channels(
    mode: str,
    count: int,
    *,
    dim: int,
    key: jax.Array | None = None,
    salience: np.ndarray | jax.Array | None = None,
    shared: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Indices (sorted) of the channels of x^a that the teacher of ``mode`` reads.

    Args:
        mode: one of :data:`MODES`.
        count: size of the modality-general set, an integer in [1, dim] ([1, dim - 1] for
            'modality_specific', which keeps the other dim - count channels).
        dim: number of channels of x^a (>= 1).
        key: PRNG key, for 'random'.  salience: (dim,) Algorithm 1 salience, for 'algorithm1'
            and 'modality_specific'.  shared: indices of the truly shared channels, for
            'ground_truth'.
    Raises :class:`ValueError` for an unknown mode, a count out of range or a missing input.
    """
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim={dim!r} is not allowed: it must be an integer >= 1")
    (mode,) = _require_modes((mode,))
    count = _require_count(count, int(dim), (mode,))
    shared_mask = None
    if mode == "random" and key is None:
        raise ValueError("key=None is not allowed with mode='random': give a PRNG key")
    if mode in SALIENCE_MODES:
        if salience is None or np.shape(salience) != (dim,):
            raise ValueError(
                f"salience with shape {np.shape(salience) if salience is not None else None} is not "
                f"allowed with mode={mode!r}: give Algorithm 1's salience of shape ({dim},)"
            )
    if mode == "ground_truth":
        if shared is None:
            raise ValueError("shared=None is not allowed with mode='ground_truth': give the shared channels")
        indices = np.asarray(shared, dtype=np.int64).ravel()
        if indices.size and (indices.min() < 0 or indices.max() >= dim):
            raise ValueError(f"shared={shared!r} is not allowed: channel indices must lie in [0, {dim})")
        shared_mask = np.zeros(dim, bool)
        shared_mask[indices] = True
    template = np.zeros(dim, np.float32)
    mask = selection_mask(
        mode, count, key=key,
        salience=jnp.asarray(salience if salience is not None else template),
        shared_mask=jnp.asarray(shared_mask if shared_mask is not None else template > 0),
    )
    return np.flatnonzero(np.asarray(mask))


# ============================================================================ protocol
class Table2Spec(NamedTuple):
    """Static settings of the Table 2 protocol (shapes, step counts, modes): one compiled program."""

    dim_a: int = 50
    dim_b: int = 50
    n_train: int = 200
    n_test: int = 1000
    steps: int = 1000
    learning_rate: float = 0.1
    permutations: int = 100
    algorithm1_steps: int = 1000
    algorithm1_learning_rate: float = 0.01
    algorithm1_momentum: float = 0.9
    algorithm1_data: str = "all"
    modes: tuple[str, ...] = MODES
    init: str = "torch"
    optimizer: str = "sgd"
    l2: float = 0.0

    def identity_fields(self) -> dict[str, Any]:
        """Everything that fixes a run's random draws, except the modes (each mode draws from its
        own key, so running fewer modes leaves the others' numbers as they are) and the optimiser
        (``optimizer``, ``l2`` draw nothing: an 'erm' run sees the data of the 'sgd' run of the same
        row and seed, a paired comparison, and 'sgd' rows keep the keys they had before the
        option existed)."""
        fields = self._asdict()
        for name in ("modes", "optimizer", "l2"):
            fields.pop(name)
        return fields


class RowInputs(NamedTuple):
    """Traced inputs of one Table 2 row (stacked along a leading axis for several runs).

    layout: the row's generator, latents padded to ``dim_a`` (padding is never shown and not
    decisive).  shared_mask: bool (dim_a,), the truly shared channels of x^a.  count: int32 (),
    the size |G| of the modality-general selection.
    """

    layout: Layout
    shared_mask: jax.Array
    count: jax.Array


class Table2Metrics(NamedTuple):
    """One run's test accuracies in [0, 1] (NaN where a training diverged), recovery, salience.

    general_teacher, general_kd: (modes,) in the order of the spec's modes.  recovery: share of
    the truly shared channels among Algorithm 1's top |G| (NaN without Algorithm 1).  salience:
    (dim_a,) normalised Algorithm 1 salience of x^a's channels (NaN without Algorithm 1).
    """

    regular_teacher: jax.Array
    no_kd: jax.Array
    regular_kd: jax.Array
    general_teacher: jax.Array
    general_kd: jax.Array
    recovery: jax.Array
    salience: jax.Array


def row_inputs(a_only: int, shared: int, spec: Table2Spec, count: int | None = None) -> RowInputs:
    """Host-side inputs of the row with ``a_only`` a-specific and ``shared`` shared latents."""
    venn = table2_venn(a_only, shared, spec.dim_a, spec.dim_b)
    layout = make_layout(venn, "ones")
    decisive = np.zeros(spec.dim_a, np.float32)  # latents padded to dim_a: one shape for all rows
    decisive[: venn.n_latent] = layout.decisive
    shared_mask = np.zeros(spec.dim_a, bool)
    shared_mask[venn.channels_of("G", "a")] = True
    return RowInputs(
        layout._replace(decisive=decisive),
        shared_mask,
        np.int32(shared if count is None else count),
    )


def table2_venn(a_only: int, shared: int, dim_a: int = 50, dim_b: int = 50) -> VennConfig:
    """The Venn diagram of one Table 2 row: G = ``shared``, A = ``a_only``, B = 0 (validated)."""
    if isinstance(shared, (bool, np.bool_)) or not isinstance(shared, (int, np.integer)) or shared < 1:
        raise ValueError(
            f"shared={shared!r} is not allowed: a Table 2 row needs an integer >= 1 shared latents"
        )
    return VennConfig(shared=shared, a_only=a_only, b_only=0, dim_a=dim_a, dim_b=dim_b)


def teacher_init(key: jax.Array, masks: jax.Array, init: str = "torch") -> tuple[jax.Array, jax.Array]:
    """Initial margin weights (teachers, dim) and biases (teachers,) of linear teachers that read
    only the channels where ``masks`` (teachers, dim) is 1.

    Each teacher is initialised as a two-output layer of fan-in k = its number of selected
    channels: with ``init='torch'`` every weight and bias is U(-1/sqrt(k), 1/sqrt(k)) (one draw
    for dim channels at bound 1/sqrt(dim), rescaled by sqrt(dim / k), so all teachers share one
    draw and differ only by their masks); with ``'lecun'`` the kernel's N(0, 1/fan_in) is
    rescaled the same way.  Weights of unselected channels are 0.  Returned in margin form
    (w_1 - w_0, b_1 - b_0), see :func:`mfh_sim.train.fit_linear_margin`.
    """
    weights, bias = margin_params(*linear_init(key, masks.shape[-1], init))
    return restrict_to_selection(weights, bias, masks)


def restrict_to_selection(
    weights: jax.Array, bias: jax.Array, masks: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Margin weights (dim,) and bias () drawn for fan-in dim, rescaled by sqrt(dim / k) for each
    row of ``masks`` (teachers, dim) with k selected channels and zeroed off the selection:
    (teachers, dim) weights and (teachers,) biases of layers initialised for fan-in k."""
    dim = masks.shape[-1]
    scale = jnp.sqrt(dim / jnp.maximum(jnp.sum(masks, axis=-1), 1.0))  # (teachers,)
    return scale[:, None] * weights[None, :] * masks, scale * bias


def _initial_margins(keys: jax.Array, dims: tuple[int, ...], init: str):
    """Margin-form initial (weights, bias) of two-output linear layers of fan-ins ``dims``.

    With the torch initialiser all layers come from one uniform draw (each U(-1/sqrt(d),
    1/sqrt(d)), the distribution of :func:`mfh_sim.models.linear_init`): every separate random
    call adds to the compile time of the Table 2 program.  Otherwise one
    :func:`~mfh_sim.models.linear_init` per layer, with ``keys[i]``.
    """
    if init != "torch":
        return [margin_params(*linear_init(keys[i], dim, init)) for i, dim in enumerate(dims)]
    return [margin_params(*layer) for layer in torch_linear_layers(keys[0], dims)]


def fit_teachers(
    x: jax.Array,
    labels: jax.Array,
    masks: jax.Array,
    weights: jax.Array,
    biases: jax.Array,
    learning_rate: float | jax.Array,
    steps: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Full-batch GD on cross-entropy of linear teachers, teacher t reading ``x * masks[t]``.

    x: (n, dim); labels: (n,) in {0, 1}; masks: (teachers, dim) 0/1; weights (teachers, dim)
    and biases (teachers,) in margin form.  A masked channel is zero, so its weight gets no
    gradient and never reaches the output: teacher t is exactly a linear classifier on its
    selected channels.  Returns (weights, biases, diverged) with a leading teachers axis.
    """
    targets = labels.astype(jnp.float32)[:, None]

    def fit_one(mask, weight, bias):
        weight, bias, diverged = fit_linear_margin(
            x * mask, weight[:, None], bias[None], lambda m: margin_gradient(m, targets),
            learning_rate, 0.0, steps,
        )
        return weight[:, 0], bias[0], diverged[0]

    return jax.vmap(fit_one)(masks, weights, biases)


def fit_teachers_erm(
    x: jax.Array, labels: jax.Array, masks: jax.Array, l2: float | jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Converged ridge-logistic teachers (:func:`mfh_sim.erm.newton_solve`), teacher t on ``x * masks[t]``.

    x: (n, dim); labels: (n,) in {0, 1}; masks: (teachers, dim) 0/1; l2 > 0 the ridge on the margin
    weights (mean loss + l2/2 ||theta||^2, bias free).  A masked channel is a zero column, whose
    weight the ridge holds at exactly 0, so teacher t is the minimiser on its selected channels.
    Returns (weights (teachers, dim), biases (teachers,), failed (teachers,)): failed where the
    solve did not reach :data:`mfh_sim.erm.DEFAULT_TOL`.
    """
    zeros = jnp.zeros(x.shape[0], x.dtype)

    def fit_one(mask):
        fit = erm.newton_solve(x * mask, labels, zeros, l2, 1.0, 0.0, 1.0,
                               erm.DEFAULT_ITERATIONS, erm.DEFAULT_TOL)
        return fit.theta, fit.bias, ~fit.converged

    return jax.vmap(fit_one)(masks)


def fit_students_erm(
    x: jax.Array, labels: jax.Array, soft_targets: jax.Array, kd_weights: jax.Array, l2: float | jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Converged ridge-logistic students, one per head: head j minimises CE + KD toward
    ``soft_targets[:, j]`` with the simulator's KD weight ``kd_weights[j]`` (0: the no-KD student)
    under Table 2's loss (CE weight 1, temperature 1, 'paper' reduction).

    x: (n, dim_b); labels: (n,); soft_targets: (n, heads) teacher margins; kd_weights: (heads,).
    Returns (weights (dim_b, heads), biases (heads,), failed (heads,)), the layout of
    :func:`mfh_sim.train.fit_linear_margin`'s heads.
    """
    k = erm.effective_kd_weight(kd_weights, _KD_REDUCTION)

    def fit_one(targets, k_j):
        fit = erm.newton_solve(x, labels, targets, l2, _CE_WEIGHT, k_j, _TEMPERATURE,
                               erm.DEFAULT_ITERATIONS, erm.DEFAULT_TOL)
        return fit.theta, fit.bias, ~fit.converged

    weights, biases, failed = jax.vmap(fit_one)(soft_targets.T, k)
    return weights.T, biases, failed


def make_table2_run(spec: Table2Spec):
    """A pure ``run(key, row: RowInputs) -> Table2Metrics`` for the static settings ``spec``.

    Key use (fixed positions, so a mode's draws never depend on the other modes): 0 unused (the
    hyperplane is all ones), 1 data, 2 (to 4 unless 'torch') initial weights of the regular teacher,
    the modality-general teachers (one draw shared by every mode, rescaled to each fan-in) and
    the students (one draw shared by every student, so differences between students are paired),
    5 Algorithm 1, 6 random selection.
    """
    modes = spec.modes
    needs_salience = any(mode in SALIENCE_MODES for mode in modes)
    dim_a = spec.dim_a

    def run(key: jax.Array, row: RowInputs) -> Table2Metrics:
        keys = jax.random.split(key, 7)
        # Table 2's hyperplane is all ones on the decisive latents: `data.hyperplane` with
        # 'ones' returns exactly `layout.decisive`, without a (discarded) normal draw to compile.
        w = row.layout.decisive
        sizes = (spec.n_train, spec.n_train, spec.n_test)
        teachers_data, students_data, test = split(sample(keys[1], row.layout, w, sum(sizes)), sizes)

        # Algorithm 1 on the paired data it is given.
        if needs_salience:
            if spec.algorithm1_data == "all":
                pick = lambda field: jnp.concatenate(
                    [getattr(teachers_data, field), getattr(students_data, field)]
                )
            else:
                pick = lambda field: getattr(teachers_data, field)
            found = algorithm1(
                keys[5], pick("x_a"), pick("x_b"), pick("labels"),
                permutations=spec.permutations, of=("a",), model="linear", init=spec.init,
                steps=spec.algorithm1_steps, learning_rate=spec.algorithm1_learning_rate,
                momentum=spec.algorithm1_momentum,
            )
            salience, salience_diverged = found.a, found.diverged
            n_shared = jnp.sum(row.shared_mask)
            top = selection_mask("algorithm1", n_shared, salience=salience)
            recovery = jnp.sum(top & row.shared_mask) / n_shared
            recovery = jnp.where(salience_diverged, jnp.nan, recovery)
        else:
            salience = jnp.full((dim_a,), jnp.nan)
            salience_diverged = jnp.asarray(False)
            recovery = jnp.asarray(jnp.nan)

        masks = jnp.stack([
            selection_mask(
                mode, row.count, key=keys[6], salience=salience, shared_mask=row.shared_mask
            )
            for mode in modes
        ]).astype(jnp.float32)  # (modes, dim_a)
        # Teacher 0 is the regular teacher (all channels), then one per mode; the modality-general
        # teachers share one draw, rescaled to each selection's fan-in.
        teacher_masks = jnp.concatenate([jnp.ones((1, dim_a), jnp.float32), masks])
        if spec.optimizer == "erm":
            teacher_w, teacher_b, teacher_div = fit_teachers_erm(
                teachers_data.x_a, teachers_data.labels, teacher_masks, spec.l2
            )
        else:
            (regular_w, regular_b), (general_w, general_b), (student_w, student_b) = _initial_margins(
                keys[2:5], (dim_a, dim_a, spec.dim_b), spec.init
            )
            general_w, general_b = restrict_to_selection(general_w, general_b, masks)
            teacher_w, teacher_b, teacher_div = fit_teachers(
                teachers_data.x_a, teachers_data.labels, teacher_masks,
                jnp.concatenate([regular_w[None], general_w]),
                jnp.concatenate([regular_b[None], general_b]),
                spec.learning_rate, spec.steps,
            )
        teacher_div = teacher_div.at[1:].set(
            teacher_div[1:] | (salience_diverged & _uses_salience(modes))
        )
        # Teachers' margins on the students' sample: (n, teachers).
        teacher_margins = jnp.einsum(
            "nd,td->nt", students_data.x_a, teacher_w * teacher_masks
        ) + teacher_b

        # Students: head 0 no KD, head 1 regular KD, head 1 + j KD from the teacher of mode j.
        heads = 1 + teacher_w.shape[0]
        soft_targets = jnp.concatenate([jnp.zeros_like(teacher_margins[:, :1]), teacher_margins], 1)
        kd_weights = jnp.concatenate([jnp.zeros(1), jnp.full(heads - 1, _KD_WEIGHT)])
        if spec.optimizer == "erm":
            both_w, both_b, student_div = fit_students_erm(
                students_data.x_b, students_data.labels, soft_targets, kd_weights, spec.l2
            )
        else:
            student_labels = students_data.labels.astype(jnp.float32)[:, None]
            gradient = lambda m: margin_gradient(
                m, student_labels, soft_targets, ce_weight=_CE_WEIGHT, kd_weight=kd_weights,
                temperature=_TEMPERATURE, reduction=_KD_REDUCTION,
            )
            both_w, both_b, student_div = fit_linear_margin(
                students_data.x_b, jnp.tile(student_w[:, None], (1, heads)),
                jnp.tile(student_b[None], heads), gradient, spec.learning_rate, 0.0, spec.steps,
            )
        student_div = student_div | jnp.concatenate([jnp.zeros(1, bool), teacher_div])

        test_y = test.labels == 1
        accuracy = lambda margins, diverged: jnp.where(
            diverged, jnp.nan, jnp.mean((margins > 0) == test_y[:, None], axis=0)
        )
        teacher_acc = accuracy(
            jnp.einsum("nd,td->nt", test.x_a, teacher_w * teacher_masks) + teacher_b, teacher_div
        )
        student_acc = accuracy(test.x_b @ both_w + both_b, student_div)
        return Table2Metrics(
            regular_teacher=teacher_acc[0],
            no_kd=student_acc[0],
            regular_kd=student_acc[1],
            general_teacher=teacher_acc[1:],
            general_kd=student_acc[2:],
            recovery=recovery,
            salience=salience,
        )

    return run


def _uses_salience(modes: Sequence[str]) -> np.ndarray:
    return np.array([mode in SALIENCE_MODES for mode in modes])


def row_identity(a_only: int, shared: int, spec: Table2Spec, count: int | None = None) -> int:
    """32-bit integer fixed by the row's content and the protocol settings (not by its position)."""
    content = {"experiment": "table2", "a_only": int(a_only), "shared": int(shared),
               "count": int(shared if count is None else count), **spec.identity_fields()}
    text = json.dumps(content, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")




# ============================================================================ the protocol
class Table2Point(NamedTuple):
    """One Table 2 row: ``a_only`` a-specific and ``shared`` shared decisive latents, ``count``
    channels in the modality-general selection (the row's |G| = ``shared`` in the paper), run
    under the static settings ``spec``."""

    a_only: int
    shared: int
    count: int
    spec: Table2Spec


def table2_point(a_only: int, shared: int, spec: Table2Spec, count: int | None = None) -> Table2Point:
    """The point of row (a_only, shared); ``count`` None means the row's true |G| = shared."""
    return Table2Point(int(a_only), int(shared), int(shared if count is None else count), spec)


def bytes_per_run(spec: Table2Spec) -> int:
    """Estimated device memory (bytes) of one Table 2 run while it executes.

    Data: one normal draw of (2 n_train + n_test) x (n_latent + dim_a + dim_b) float32 with
    n_latent padded to dim_a, three copies.  Algorithm 1 on n = n_train (2 n_train with
    algorithm1_data='all') paired samples: the (n, n) average permutation matrix, the M x n
    permutation orders and the joint training's activations, three copies each.  Teachers and
    students: 2 + 2 x modes linear heads of dim_a + 1 weights with their margins on the samples.
    Generous on purpose, so that chunks leave room for XLA's temporaries.
    """
    n_samples = 2 * spec.n_train + spec.n_test
    data = 3 * 4 * n_samples * (2 * spec.dim_a + spec.dim_b)
    n_joint = spec.n_train * (2 if spec.algorithm1_data == "all" else 1)
    salience = 3 * 4 * (n_joint * n_joint + spec.permutations * n_joint + n_joint * (spec.dim_a + spec.dim_b))
    heads = 2 + 2 * len(spec.modes)
    models = 3 * 4 * heads * ((spec.dim_a + 1) + n_samples)
    # Converged ERM: every head's (d + 1)^2 Hessian, its Cholesky factor and the line search's
    # candidate margins, all heads at once under vmap.
    width = max(spec.dim_a, spec.dim_b) + 1
    newton = 3 * 4 * heads * (2 * width * width + 25 * spec.n_train) if spec.optimizer == "erm" else 0
    return int(data + salience + models + newton + 4096)


@dataclass(frozen=True)
class Table2Protocol(Protocol):
    """The Table 2 protocol (:func:`make_table2_run`) for the engine: points are
    :class:`Table2Point`; keys fold in :func:`row_identity`, a hash of the row's content and
    settings (never its position)."""

    name = "table2"
    version = 1

    def static_of(self, point: Table2Point) -> Table2Spec:
        return point.spec

    def inputs_of(self, point: Table2Point) -> RowInputs:
        return row_inputs(point.a_only, point.shared, point.spec, point.count)

    def identity_of(self, point: Table2Point) -> int:
        return row_identity(point.a_only, point.shared, point.spec, point.count)

    def make_run(self, static: Table2Spec) -> Callable[[jax.Array, RowInputs], Table2Metrics]:
        return make_table2_run(static)

    def metrics(self, static: Table2Spec) -> dict[str, MetricSpec]:
        modes = len(static.modes)
        shapes = {"regular_teacher": (), "no_kd": (), "regular_kd": (), "general_teacher": (modes,),
                  "general_kd": (modes,), "recovery": (), "salience": (static.dim_a,)}
        return {name: MetricSpec(np.float32, shapes[name]) for name in Table2Metrics._fields}

    def runs_concurrently(self, static: Table2Spec) -> bool:
        # Converged ERM factorises its Hessians (Cholesky) inside the Newton loop.
        return static.optimizer != "erm"

    def bytes_per_run(self, static: Table2Spec) -> int:
        return bytes_per_run(static)

    def describe(self, point: Table2Point) -> dict[str, Any]:
        spec = point.spec._asdict()
        spec["modes"] = list(spec["modes"])
        if spec["optimizer"] == "sgd" and spec["l2"] == 0.0:
            # The default optimiser is left out, so directories written before the option existed
            # describe the same sweep (and resume) unchanged.
            del spec["optimizer"], spec["l2"]
        return {"a_only": point.a_only, "shared": point.shared, "count": point.count, "spec": spec}

    def point_from_dict(self, values: Mapping[str, Any]) -> Table2Point:
        spec = dict(values["spec"])
        spec["modes"] = tuple(spec["modes"])
        return Table2Point(int(values["a_only"]), int(values["shared"]), int(values["count"]), Table2Spec(**spec))


#: The Table 2 protocol.
TABLE2 = Table2Protocol()
