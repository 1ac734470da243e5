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
"""

from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim.data import Layout, make_layout, sample, split
from mfh_sim.engine import default_workers
from mfh_sim.losses import margin_gradient
from mfh_sim.models import linear_init
from mfh_sim.salience import algorithm1
from mfh_sim.stats import Summary, summarize
from mfh_sim.train import fit_linear_margin, margin_params
from mfh_sim.venn import VennConfig

#: Ways to choose the channels of the modality-general teacher.
MODES = ("random", "ground_truth", "algorithm1", "modality_specific")
#: Modes that need Algorithm 1's salience.
SALIENCE_MODES = ("algorithm1", "modality_specific")
#: Which paired data Algorithm 1 runs on: the teachers' sample (as in the paper's code) or the
#: teachers' and the students' samples together (all paired data available at training time).
ALGORITHM1_DATA = ("teacher", "all")

#: The paper's rows: (a_only, shared) decisive latents, gamma = shared / (shared + a_only).
PAPER_ROWS: tuple[tuple[int, int], ...] = ((30, 10), (20, 10), (10, 10), (10, 20), (10, 30))

#: The paper's Table 2 in percent: regular teacher, modality-general teacher, no KD, regular KD,
#: modality-general KD (ground-truth channels), keyed by (a_only, shared).
PAPER_TABLE2: dict[tuple[int, int], tuple[float, float, float, float, float]] = {
    (30, 10): (89.70, 64.84, 59.29, 59.46, 61.01),
    (20, 10): (89.41, 68.42, 61.98, 62.16, 64.50),
    (10, 10): (89.62, 73.41, 67.64, 67.86, 70.25),
    (10, 20): (89.82, 77.98, 73.48, 73.60, 75.43),
    (10, 30): (89.70, 79.41, 76.46, 76.53, 77.70),
}

#: Runs per compiled chunk on a CPU (a run's Algorithm 1 intermediates are a few MB).
CPU_CHUNK = 8
#: Runs per chunk on an accelerator.
ACCELERATOR_CHUNK = 1024

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

    def identity_fields(self) -> dict[str, Any]:
        """Everything that fixes a run's random draws and arithmetic, except the modes (each mode
        draws from its own key, so running fewer modes leaves the others' numbers as they are)."""
        fields = self._asdict()
        fields.pop("modes")
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
    sizes = [2 * (dim + 1) for dim in dims]
    uniform = jax.random.uniform(keys[0], (sum(sizes),), jnp.float32, -1.0, 1.0)
    layers, start = [], 0
    for dim, size in zip(dims, sizes):
        block = uniform[start : start + size].reshape(dim + 1, 2) / jnp.sqrt(jnp.float32(dim))
        layers.append(margin_params(block[:dim], block[dim]))
        start += size
    return layers


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


# ============================================================================ execution
_COMPILED: dict[Table2Spec, Any] = {}


def compiled_table2_run(spec: Table2Spec):
    """``jit(vmap(run))`` for ``spec``, cached for the life of the process."""
    if spec not in _COMPILED:
        _COMPILED[spec] = jax.jit(jax.vmap(make_table2_run(spec)))
    return _COMPILED[spec]


def row_identity(a_only: int, shared: int, spec: Table2Spec, count: int | None = None) -> int:
    """32-bit integer fixed by the row's content and the protocol settings (not by its position)."""
    content = {"experiment": "table2", "a_only": int(a_only), "shared": int(shared),
               "count": int(shared if count is None else count), **spec.identity_fields()}
    text = json.dumps(content, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


@jax.jit
def _fold_keys(root: jax.Array, identity: jax.Array, seeds: jax.Array) -> jax.Array:
    row_key = jax.random.fold_in(root, identity)
    return jax.vmap(lambda s: jax.random.fold_in(row_key, s))(seeds)


def _default_chunk() -> int:
    return CPU_CHUNK if jax.default_backend() == "cpu" else ACCELERATOR_CHUNK


def execute_table2(
    spec: Table2Spec,
    rows: Sequence[tuple[int, int]],
    seeds: np.ndarray,
    root_seed: int = 0,
    *,
    count: int | None = None,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress=None,
) -> dict[str, np.ndarray]:
    """Run every row for every seed index; arrays with leading axes (rows, seeds).

    Rows and seeds are flattened into fixed-size chunks (the last one padded by repeating its
    final run), each chunk one call of the compiled program; ``workers`` threads keep that many
    chunks in flight (XLA runs one on each CPU core).  ``progress(n)`` is called per chunk.
    """
    chunk_size = chunk_size or _default_chunk()
    workers = workers or default_workers()
    n_rows, n_seeds = len(rows), len(seeds)
    inputs = [row_inputs(a, g, spec, count) for a, g in rows]
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *inputs)
    root = jax.random.PRNGKey(root_seed)
    keys = np.stack([
        np.asarray(_fold_keys(root, np.uint32(row_identity(a, g, spec, count)),
                              np.asarray(seeds, np.uint32)))
        for a, g in rows
    ])  # (rows, seeds, 2)
    n_modes, dim_a = len(spec.modes), spec.dim_a
    shapes = {
        "regular_teacher": (), "no_kd": (), "regular_kd": (), "general_teacher": (n_modes,),
        "general_kd": (n_modes,), "recovery": (), "salience": (dim_a,),
    }
    out = {name: np.empty((n_rows, n_seeds) + shape, np.float32) for name, shape in shapes.items()}
    flat = np.arange(n_rows * n_seeds)
    row_of, seed_of = flat // n_seeds, flat % n_seeds
    jobs = []
    for start in range(0, flat.size, chunk_size):
        chunk = flat[start : start + chunk_size]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], chunk_size - chunk.size)])
        jobs.append((
            keys[row_of[padded], seed_of[padded]],
            jax.tree.map(lambda leaf: leaf[row_of[padded]], stacked),
            row_of[chunk], seed_of[chunk],
        ))
    program = compiled_table2_run(spec)

    def work(job):
        chunk_keys, chunk_rows, row_ids, seed_ids = job
        metrics = jax.device_get(program(chunk_keys, chunk_rows))
        for name in shapes:
            out[name][row_ids, seed_ids] = np.asarray(getattr(metrics, name))[: row_ids.size]
        if progress is not None:
            progress(row_ids.size)

    work(jobs[0])  # compile once before fanning out
    if workers == 1 or len(jobs) <= 2:
        for job in jobs[1:]:
            work(job)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, jobs[1:]))
    return out


# ============================================================================ results
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

    def kd_gain(self, mode: str) -> list[Summary]:
        """Paired (modality-general KD - regular KD) per row: what the restricted teacher adds."""
        return self.difference("general_kd", "regular_kd", mode)

    # ------------------------------------------------------------------------ tables
    def table(self) -> list[dict[str, Any]]:
        """One dict per (row, mode): counts, gamma, means (fractions) and the paired KD gain."""
        out = []
        means = {
            name: [s.mean for s in self.summary(name)]
            for name in ("regular_teacher", "no_kd", "regular_kd")
        }
        recovery = [s.mean for s in self.summary("recovery")] if self._has_recovery() else None
        for mode in self.modes:
            general_teacher = self.summary("general_teacher", mode)
            general_kd = self.summary("general_kd", mode)
            gain = self.kd_gain(mode)
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
                    "kd_gain": gain[r].mean,
                    "kd_gain_low": gain[r].low,
                    "kd_gain_high": gain[r].high,
                    "recovery": recovery[r] if recovery is not None else math.nan,
                    "chance_recovery": self.chance_recovery[r],
                })
        return out

    def _has_recovery(self) -> bool:
        return bool(np.isfinite(self.recovery).any())

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`table` as CSV (accuracies and rates as fractions in [0, 1]; empty = NaN)."""
        rows = self.table()
        path = Path(path)
        columns = list(rows[0])
        lines = [",".join(columns)]
        for row in rows:
            lines.append(",".join(_csv_cell(row[c]) for c in columns))
        path.write_text("\n".join(lines) + "\n")
        return path

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
                f"| {_signed(row['kd_gain'])} [{_signed(row['kd_gain_low'])}, "
                f"{_signed(row['kd_gain_high'])}] "
                f"| {_pct(row['recovery'])} ({_pct(row['chance_recovery'])}) |"
            )
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        lines = [
            f"Table 2 (modality-general teacher): {len(self.rows)} rows x {len(self.seeds)} seeds, "
            "accuracies in %, KD gain = mod.-general KD - regular KD (paired, 95% CI)",
            f"{'mode':>17} {'gamma':>5} {'reg.T':>6} {'gen.T':>6} {'noKD':>6} {'regKD':>6} "
            f"{'genKD':>6} {'KD gain [95% CI]':>22} {'recov.':>7} {'chance':>6}",
        ]
        for row in self.table():
            lines.append(
                f"{row['mode']:>17} {row['gamma']:5.2f} {_pct(row['regular_teacher']):>6} "
                f"{_pct(row['general_teacher']):>6} {_pct(row['no_kd']):>6} "
                f"{_pct(row['regular_kd']):>6} {_pct(row['general_kd']):>6} "
                f"{_signed(row['kd_gain']):>6} [{_signed(row['kd_gain_low'])},"
                f"{_signed(row['kd_gain_high'])}] {_pct(row['recovery']):>7} "
                f"{_pct(row['chance_recovery']):>6}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.2f}"


def _signed(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:+.2f}"


def _csv_cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(round(value, 10))
    return str(value)


# ============================================================================ public entry
def _require_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {minimum}")
    return int(value)


def _require_rows(rows: Any, dim_a: int, dim_b: int) -> tuple[tuple[int, int], ...]:
    try:
        rows = tuple(tuple(row) for row in rows)
    except TypeError:
        raise ValueError(f"rows={rows!r} is not allowed: give (a_only, shared) pairs") from None
    if not rows or any(len(row) != 2 for row in rows):
        raise ValueError(f"rows={rows!r} is not allowed: give at least one (a_only, shared) pair")
    for a_only, shared in rows:
        table2_venn(a_only, shared, dim_a, dim_b)  # validates counts against the dims
    return tuple((int(a), int(g)) for a, g in rows)


def table2(
    seeds: int | Iterable[int] = 10,
    root_seed: int = 0,
    modes: Sequence[str] = MODES,
    *,
    rows: Sequence[tuple[int, int]] = PAPER_ROWS,
    count: int | None = None,
    dim_a: int = 50,
    dim_b: int = 50,
    n_train: int = 200,
    n_test: int = 1000,
    steps: int = 1000,
    permutations: int = 100,
    algorithm1_steps: int = 1000,
    algorithm1_data: str = "all",
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> Table2Result:
    """The paper's Table 2: regular vs modality-general teacher, and their crossmodal KD students.

    Args:
        seeds: number of seeds (>= 1) or distinct seed indices; each seed draws fresh data.
        root_seed: integer in [0, 2**32), the root of every key.
        modes: selection modes of the modality-general teacher, any of :data:`MODES`.
        rows: (a_only, shared) decisive latents per row (default: the paper's five rows, gamma
            0.25, 0.33, 0.5, 0.66, 0.75); a_only + shared <= dim_a, shared <= dim_b.
        count: channels in the modality-general selection; None (default) = the true |G| of
            each row, as in the paper.
        dim_a, dim_b: channels of x^a and x^b.  n_train: size of the teachers' and of the
            students' training samples; n_test: test sample size.
        steps: GD steps (lr 0.1) of every teacher and student.  permutations, algorithm1_steps:
            Algorithm 1's M and joint-training steps.  algorithm1_data: 'all' (default: the
            teachers' and students' samples together, all the paired data there is at training
            time) or 'teacher' (the teachers' sample only, as in the paper's code).
        chunk_size, workers: runs per compiled call and threads (defaults suit the backend).
        progress: print a progress bar to stderr.
    Returns a :class:`Table2Result`.  Raises :class:`ValueError` on bad input, before any JAX
    computation.
    """
    from mfh_sim.progress import ProgressBar
    from mfh_sim.simulation import validate_seeds

    seeds = validate_seeds(seeds)
    if isinstance(root_seed, (bool, np.bool_)) or not isinstance(root_seed, (int, np.integer)) or not (
        0 <= root_seed < 2**32
    ):
        raise ValueError(f"root_seed={root_seed!r} is not allowed: it must be an integer in [0, 2**32)")
    modes = _require_modes(modes)
    dim_a = _require_int("dim_a", dim_a, 1)
    dim_b = _require_int("dim_b", dim_b, 1)
    rows = _require_rows(rows, dim_a, dim_b)
    if count is not None:
        count = _require_count(count, dim_a, modes)
    else:
        for _, shared in rows:
            _require_count(shared, dim_a, modes, name="shared")
    if algorithm1_data not in ALGORITHM1_DATA:
        raise ValueError(
            f"algorithm1_data={algorithm1_data!r} is not allowed: use one of {ALGORITHM1_DATA}"
        )
    spec = Table2Spec(
        dim_a=dim_a,
        dim_b=dim_b,
        n_train=_require_int("n_train", n_train, 2),
        n_test=_require_int("n_test", n_test, 1),
        steps=_require_int("steps", steps, 1),
        permutations=_require_int("permutations", permutations, 1),
        algorithm1_steps=_require_int("algorithm1_steps", algorithm1_steps, 1),
        algorithm1_data=algorithm1_data,
        modes=modes,
    )
    if chunk_size is not None:
        chunk_size = _require_int("chunk_size", chunk_size, 1)
    if workers is not None:
        workers = _require_int("workers", workers, 1)
    bar = ProgressBar(len(rows) * len(seeds), label="Table 2 runs", enabled=progress)
    try:
        out = execute_table2(
            spec, rows, seeds, int(root_seed), count=count, chunk_size=chunk_size,
            workers=workers, progress=bar.update,
        )
    finally:
        bar.close()
    return Table2Result(
        rows=rows,
        modes=modes,
        seeds=seeds,
        root_seed=int(root_seed),
        counts=tuple(shared if count is None else count for _, shared in rows),
        regular_teacher=out["regular_teacher"],
        no_kd=out["no_kd"],
        regular_kd=out["regular_kd"],
        general_teacher=np.moveaxis(out["general_teacher"], 2, 1),
        general_kd=np.moveaxis(out["general_kd"], 2, 1),
        recovery=out["recovery"],
        salience=out["salience"],
        spec=spec,
    )


def write_table2(
    out_dir: str | Path, seeds: int = 200, progress: bool = False, **options: Any
) -> list[Path]:
    """Run :func:`table2` and write ``table2.csv``, ``table2.md`` and the salience figure
    (``table2_salience.png`` and ``.pdf``) into ``out_dir`` (created if missing).

    ``options`` go to :func:`table2` (for example fewer ``steps`` for a quick look).  Returns the
    written paths.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from mfh_sim.plots.salience import plot_salience

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = table2(seeds=seeds, progress=progress, **options)
    written = [result.to_csv(out_dir / "table2.csv")]
    markdown = out_dir / "table2.md"
    markdown.write_text(
        "# Table 2: modality-general teacher (accuracies in %)\n\n"
        f"{len(result.seeds)} seeds per row, root seed {result.root_seed}; KD gain is the paired "
        "difference mod.-general KD - regular KD with its 95% t-interval; recovery is the share "
        "of the truly shared channels among Algorithm 1's top |G|, beside chance |G|/dim_a.\n\n"
        + result.to_markdown()
    )
    written.append(markdown)
    figure = plot_salience(
        [result.salience[r] for r in range(len(result.rows))],
        [result.shared_channels(r) for r in range(len(result.rows))],
        specific=[result.specific_channels(r) for r in range(len(result.rows))],
        titles=[
            f"gamma = {gamma:.2f} (A = {a}, G = {g})"
            for gamma, (a, g) in zip(result.gammas, result.rows)
        ],
    )
    for suffix in ("png", "pdf"):
        path = out_dir / f"table2_salience.{suffix}"
        metadata = {"CreationDate": None} if path.suffix == ".pdf" else None  # reproducible PDFs
        figure.savefig(path, dpi=150, bbox_inches="tight", metadata=metadata)
        written.append(path)
    plt.close(figure)
    return written
