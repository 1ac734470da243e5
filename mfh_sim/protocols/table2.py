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
of :func:`mfh_sim.train.fit_linear`.  Keys come from identity, as in
:mod:`mfh_sim.engine`: run (row r, seed s) uses ``fold_in(fold_in(PRNGKey(root_seed),
identity(r)), s)``, so a row's numbers do not depend on which rows, how many seeds, or which
chunks it ran with.

This module is the protocol only (:func:`table2_protocol`), run by the generic engine
(:func:`mfh_sim.engine.run`), so Table 2 has devices, memory-sized chunks, the results store and
resume; :func:`mfh_sim.experiments.table2.table2` is the entry point and
:class:`mfh_sim.experiments.table2.Table2Result` the result.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim import erm
from mfh_sim.data import Layout, Sample, make_layout, sample, split
from mfh_sim.init import linear_init_size, linear_layers
from mfh_sim.losses import margin_gradient
from mfh_sim.protocols import MetricSpec, Protocol
from mfh_sim.salience import algorithm1
from mfh_sim.train import accuracy, fit_linear, make_optimizer, margin_params
from mfh_sim.validation import require_choices
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
    return require_choices("modes", modes, MODES, item="mode")


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
    """Static settings of the Table 2 protocol (shapes, step counts, modes): one compiled program.
    The defaults are the paper's (Xue et al., ICLR 2023, Appendix)."""

    #: Channels of x^a (every row's decisive latents, padded) and of x^b.
    dim_a: int = 50
    dim_b: int = 50
    #: Size of the teachers' and of the students' training samples, and of the test sample.
    n_train: int = 200
    n_test: int = 1000
    #: Full-batch GD of every teacher and student: steps at this learning rate, no momentum.
    steps: int = 1000
    learning_rate: float = 0.1
    #: Algorithm 1: M permutations per channel; its joint training's steps, learning rate and
    #: heavy-ball momentum; the paired data it reads (:data:`ALGORITHM1_DATA`).
    permutations: int = 100
    algorithm1_steps: int = 1000
    algorithm1_learning_rate: float = 0.01
    algorithm1_momentum: float = 0.9
    algorithm1_data: str = "all"
    #: The selections of the modality-general teacher (:data:`MODES`), in the metrics' order.
    modes: tuple[str, ...] = MODES
    #: The linear initialiser (:func:`mfh_sim.init.linear_init`).
    init: str = "torch"
    #: 'sgd' (the paper's GD) or 'erm' (converged ridge-logistic ERM with ridge ``l2`` > 0).
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


def restrict_to_selection(
    weights: jax.Array, bias: jax.Array, masks: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Margin weights (dim,) and bias () drawn for fan-in dim, rescaled by sqrt(dim / k) for each
    row of ``masks`` (teachers, dim) with k selected channels and zeroed off the selection:
    (teachers, dim) weights and (teachers,) biases of layers initialised for fan-in k."""
    dim = masks.shape[-1]
    scale = jnp.sqrt(dim / jnp.maximum(jnp.sum(masks, axis=-1), 1.0))  # (teachers,)
    return scale[:, None] * weights[None, :] * masks, scale * bias


def initial_margins(key: jax.Array, dim_a: int, dim_b: int, init: str = "torch"):
    """Margin-form initial (weights, bias) of the regular teacher (fan-in ``dim_a``), the
    modality-general teachers' shared draw (fan-in ``dim_a``, restricted to each selection by
    :func:`restrict_to_selection`) and the students (fan-in ``dim_b``): two-output layers from one
    vector of standard normals drawn with ``key`` (:func:`mfh_sim.init.linear_layers`)."""
    fan_ins = (dim_a, dim_a, dim_b)
    normals = jax.random.normal(key, (sum(linear_init_size(d) for d in fan_ins),))
    return [margin_params(*layer) for layer in linear_layers(normals, fan_ins, init=init)]


def fit_teachers_gd(data: Sample, masks: jax.Array, init, spec: Table2Spec):
    """The paper's full-batch GD (``spec.steps`` steps at ``spec.learning_rate``) of linear
    teachers in margin form (:func:`mfh_sim.train.fit_linear`), teacher t reading
    ``x^a * masks[t]`` (row 0 the regular teacher, then one per mode).

    A masked channel is zero, so its weight gets no gradient and never reaches the output: teacher
    t is exactly a linear classifier on its selected channels, initialised for its fan-in
    (:func:`restrict_to_selection` of the shared draw ``init[1]``; the regular teacher ``init[0]``).
    Returns (weights (teachers, dim_a), biases (teachers,), diverged (teachers,)).
    """
    (regular_w, regular_b), (general_w, general_b), _ = init
    general_w, general_b = restrict_to_selection(general_w, general_b, masks[1:])
    labels = data.labels.astype(jnp.float32)[:, None]
    optimizer = make_optimizer("sgd", spec.learning_rate)

    def fit_one(mask, weight, bias):
        fitted = fit_linear(data.x_a * mask, weight[:, None], bias[None],
                            loss_gradient=lambda m: margin_gradient(m, labels),
                            form="margin", optimizer=optimizer, steps=spec.steps)
        return fitted.weights[:, 0], fitted.biases[0], fitted.diverged[0]

    return jax.vmap(fit_one)(masks, jnp.concatenate([regular_w[None], general_w]),
                             jnp.concatenate([regular_b[None], general_b]))


def fit_students_gd(data: Sample, targets: jax.Array, kd_weights: jax.Array, init, spec: Table2Spec):
    """The students' full-batch GD as heads of one pass over x^b, all from the one initial draw
    ``init[2]`` (differences between students are then paired): head j minimises CE + KD toward
    the teacher margins ``targets[:, j]`` with KD weight ``kd_weights[j]`` (0: no KD) under Table
    2's loss.  Returns (weights (dim_b, heads), biases (heads,), diverged (heads,))."""
    student_w, student_b = init[2]
    heads = targets.shape[1]
    labels = data.labels.astype(jnp.float32)[:, None]
    gradient = lambda m: margin_gradient(m, labels, targets, ce_weight=_CE_WEIGHT, kd_weight=kd_weights,
                                         temperature=_TEMPERATURE, reduction=_KD_REDUCTION)
    return fit_linear(data.x_b, jnp.tile(student_w[:, None], (1, heads)), jnp.tile(student_b[None], heads),
                      loss_gradient=gradient, form="margin", optimizer=make_optimizer("sgd", spec.learning_rate),
                      steps=spec.steps)


def _solve(x, labels, targets, spec: Table2Spec, *, k, ce_weight=1.0, temperature=1.0):
    fitted = erm.newton_solve(x, labels, targets, l2=spec.l2, ce_weight=ce_weight, k=k, temperature=temperature,
                              iterations=erm.DEFAULT_ITERATIONS, tol=erm.DEFAULT_TOL)
    return fitted.theta, fitted.bias, ~fitted.converged


def fit_teachers_erm(data: Sample, masks: jax.Array, init, spec: Table2Spec):
    """Converged ridge-logistic teachers (:func:`mfh_sim.erm.newton_solve`, ridge ``spec.l2`` on the
    margin weights: mean loss + l2/2 ||theta||^2, bias free), teacher t on ``x^a * masks[t]``;
    ``init`` unused (the solver starts from zero).  A masked channel is a zero column, whose
    weight the ridge holds at exactly 0, so teacher t is the minimiser on its selected channels.
    Flagged diverged where the solve did not reach :data:`mfh_sim.erm.DEFAULT_TOL`."""
    zeros = jnp.zeros(data.x_a.shape[0], data.x_a.dtype)
    return jax.vmap(lambda mask: _solve(data.x_a * mask, data.labels, zeros, spec, k=0.0))(masks)


def fit_students_erm(data: Sample, targets: jax.Array, kd_weights: jax.Array, init, spec: Table2Spec):
    """Converged ridge-logistic students, head j toward ``targets[:, j]`` with the simulator's KD
    weight ``kd_weights[j]`` under Table 2's loss; the layout of :func:`fit_students_gd`."""
    k = erm.effective_kd_weight(kd_weights, _KD_REDUCTION)
    fit_one = lambda t, k_j: _solve(data.x_b, data.labels, t, spec, k=k_j, ce_weight=_CE_WEIGHT,
                                    temperature=_TEMPERATURE)
    weights, biases, failed = jax.vmap(fit_one)(targets.T, k)
    return weights.T, biases, failed


#: How teachers and students are trained, by ``Table2Spec.optimizer``: (teachers, students).
FITS = {"sgd": (fit_teachers_gd, fit_students_gd), "erm": (fit_teachers_erm, fit_students_erm)}


def make_table2_run(spec: Table2Spec):
    """A pure ``run(key, row: RowInputs) -> Table2Metrics`` for the static settings ``spec``: one
    skeleton (data, Algorithm 1, selections, the fit function of ``spec.optimizer``, scores).

    Key use (fixed positions, so a mode's draws never depend on the other modes): 0 unused (the
    hyperplane is all ones), 1 data, 2 the initial weights of every teacher and student (one
    draw of normals, :func:`initial_margins`), 3 and 4 unused, 5 Algorithm 1, 6 random selection.
    """
    modes = spec.modes
    needs_salience = any(mode in SALIENCE_MODES for mode in modes)
    dim_a = spec.dim_a
    fit_teachers, fit_students = FITS[spec.optimizer]

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
        # Teacher 0 is the regular teacher (all channels), then one per mode.
        teacher_masks = jnp.concatenate([jnp.ones((1, dim_a), jnp.float32), masks])
        init = initial_margins(keys[2], dim_a, spec.dim_b, spec.init)
        teacher_w, teacher_b, teacher_div = fit_teachers(teachers_data, teacher_masks, init, spec)
        teacher_div = teacher_div.at[1:].set(teacher_div[1:] | (salience_diverged & _uses_salience(modes)))
        margins_of = lambda x: jnp.einsum("nd,td->nt", x, teacher_w * teacher_masks) + teacher_b

        # Students: head 0 no KD, head 1 regular KD, head 1 + j KD from the teacher of mode j.
        teacher_margins = margins_of(students_data.x_a)  # (n, teachers)
        heads = 1 + teacher_w.shape[0]
        targets = jnp.concatenate([jnp.zeros_like(teacher_margins[:, :1]), teacher_margins], 1)
        kd_weights = jnp.concatenate([jnp.zeros(1), jnp.full(heads - 1, _KD_WEIGHT)])
        student_w, student_b, student_div = fit_students(students_data, targets, kd_weights, init, spec)
        # A student whose teacher diverged learned from meaningless targets.
        student_div = student_div | jnp.concatenate([jnp.zeros(1, bool), teacher_div])

        teacher_acc = accuracy(margins_of(test.x_a), test.labels, form="margin", diverged=teacher_div)
        student_acc = accuracy(test.x_b @ student_w + student_b, test.labels, form="margin", diverged=student_div)
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


def metrics(spec: Table2Spec) -> dict[str, MetricSpec]:
    """Per-run shapes: scalars, (modes,) for the modality-general columns, (dim_a,) salience."""
    modes = len(spec.modes)
    shapes = {"regular_teacher": (), "no_kd": (), "regular_kd": (), "general_teacher": (modes,),
              "general_kd": (modes,), "recovery": (), "salience": (spec.dim_a,)}
    return {name: MetricSpec(np.float32, shapes[name]) for name in Table2Metrics._fields}


def runs_concurrently(spec: Table2Spec) -> bool:
    """Converged ERM factorises its Hessians (Cholesky) inside the Newton loop: one thread."""
    return spec.optimizer != "erm"


def describe(point: Table2Point) -> dict[str, Any]:
    """The point as JSON (the inverse of :func:`point_from_dict`)."""
    spec = point.spec._asdict()
    spec["modes"] = list(spec["modes"])
    if spec["optimizer"] == "sgd" and spec["l2"] == 0.0:
        # The default optimiser is left out, so directories written before the option existed
        # describe the same sweep unchanged.
        del spec["optimizer"], spec["l2"]
    return {"a_only": point.a_only, "shared": point.shared, "count": point.count, "spec": spec}


def point_from_dict(values: Mapping[str, Any]) -> Table2Point:
    """The point :func:`describe` described."""
    spec = dict(values["spec"])
    spec["modes"] = tuple(spec["modes"])
    return Table2Point(int(values["a_only"]), int(values["shared"]), int(values["count"]), Table2Spec(**spec))


def _static_of(point: Table2Point) -> Table2Spec:
    return point.spec


def _inputs_of(point: Table2Point) -> RowInputs:
    return row_inputs(point.a_only, point.shared, point.spec, point.count)


def _identity_of(point: Table2Point) -> int:
    return row_identity(point.a_only, point.shared, point.spec, point.count)


@functools.cache
def table2_protocol() -> Protocol:
    """The Table 2 protocol (:func:`make_table2_run`) for the engine: points are
    :class:`Table2Point`; keys fold in :func:`row_identity`, a hash of the row's content and
    settings (never its position).

    Version 2: every teacher's, student's and Algorithm 1's initial weights come from standard
    normals mapped by the package's one linear initialiser (:func:`mfh_sim.init.linear_init`,
    u = Phi(z)); version 1 drew U(-1, 1) directly from the same key.  JAX draws a normal as
    sqrt(2) erfinv(v) of a uniform v from the same bits, so the initial weights agree with version
    1's to float rounding (about 1e-7): the accuracies of the paper's Table 2 (200 seeds) are
    identical, the salience values move in their last digits (up to 4e-7 in the runs compared).
    Version 3: Algorithm 1's joint training multiplies by x^T materialised once, outside its loop
    (about twice as fast under vmap on XLA:CPU); the products round differently, so the salience
    values move in their last digits again (up to 4.2e-7 in 8 seeds x 5 rows), while every
    accuracy and recovery rate of those runs is bit-identical to version 2's.
    """
    return Protocol(
        name="table2", version=3, static_of=_static_of, inputs_of=_inputs_of,
        identity_of=_identity_of, make_run=make_table2_run, metrics=metrics, bytes_per_run=bytes_per_run,
        describe=describe, point_from_dict=point_from_dict, result="mfh_sim.experiments.table2:Table2Result",
        runs_concurrently=runs_concurrently,
    )


#: The Table 2 protocol.
TABLE2 = table2_protocol()
