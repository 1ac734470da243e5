"""Fused training kernels: a whole run of full-batch gradient descent in one Pallas program.

:func:`fit_margin_runs` trains R independent linear two-class models in the margin form of
:func:`mfh_sim.train.fit_linear` (``form='margin'``, the loss gradient of
:func:`mfh_sim.losses.margin_gradient`, SGD with heavy-ball momentum as
:func:`mfh_sim.train.make_optimizer`), each run with its own data.  The XLA path (``vmap`` of a
``lax.scan``) reads every run's inputs from device memory at each of its steps; on a GPU that
traffic, not the arithmetic, bounds it.  A run's inputs (n x d floats, about 40 KB for the
paper's 200 x 50) fit on-chip, so here one program instance (a Triton block on a GPU) loads them
once and runs all the steps in a ``lax.fori_loop`` with them held in registers.

The arithmetic is the XLA path's, summed in another order (and with the sample axis and the
feature axis padded by zeros to the powers of two that Triton's blocks need): results agree to
float32 rounding, not bit for bit.  ``interpret=True`` runs the same kernel in Pallas' interpreter
on any backend (slow: for tests on a CPU).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pallas_triton

from mfh_sim.choices import KD_REDUCTIONS
from mfh_sim.train import LinearFit

#: Samples and features (the bias column included) are padded up to powers of two, at least this.
MIN_BLOCK = 16


def _padded(size: int) -> int:
    return max(MIN_BLOCK, 1 << (size - 1).bit_length())


def _triton_params(num_warps: int):
    # Named TritonCompilerParams before JAX 0.7.
    params = getattr(pallas_triton, "CompilerParams", None) or pallas_triton.TritonCompilerParams
    return params(num_warps=num_warps, num_stages=1)


def _margin_kernel(x_ref, labels_ref, ce_scale_ref, kd_scale_ref, teacher_probs_ref, scalars_ref, weights_ref,
                   out_weights_ref, out_diverged_ref, *, steps: int, distil: bool):
    """One run: ``steps`` updates of the margin model on its block (x with a column of ones for
    the bias, zero rows and columns as padding); writes the final weights and the flag."""
    x = x_ref[...]
    labels = labels_ref[...]
    ce_scale = ce_scale_ref[...]
    kd_scale = kd_scale_ref[...]
    teacher_probs = teacher_probs_ref[...]
    learning_rate, momentum, inverse_temperature = scalars_ref[0], scalars_ref[1], scalars_ref[2]

    def margins(weights):
        return jnp.sum(x * weights[None, :], axis=1)

    def non_finite(m):
        # |m| < inf is False for +-inf and NaN alike.
        return jnp.where(jnp.abs(m) < jnp.inf, 0.0, 1.0)

    def step(_, carry):
        weights, trace, bad = carry
        m = margins(weights)
        # d loss / d m per sample: ce_scale = ce_weight / n and kd_scale = kd_weight T / (n c) on
        # the n true samples, 0 on the padding (whose rows of x are zero as well).
        g = ce_scale * (jax.nn.sigmoid(m) - labels)
        if distil:
            g = g + kd_scale * (jax.nn.sigmoid(m * inverse_temperature) - teacher_probs)
        gradient = 2.0 * jnp.sum(x * g[:, None], axis=0)
        trace = gradient + momentum * trace
        return weights - learning_rate * trace, trace, jnp.maximum(bad, non_finite(m))

    start = weights_ref[...]
    weights, _, bad = jax.lax.fori_loop(
        0, steps, step, (start, jnp.zeros_like(start), jnp.zeros_like(labels)))
    bad = jnp.maximum(bad, non_finite(margins(weights)))
    out_weights_ref[...] = weights
    out_diverged_ref[...] = jnp.full(out_diverged_ref.shape, jnp.max(bad), jnp.float32)


def _per_run(value, runs: int, name: str) -> jax.Array:
    value = jnp.asarray(value, jnp.float32)
    if value.ndim == 0:
        return jnp.broadcast_to(value, (runs,))
    if value.shape != (runs,):
        raise ValueError(f"{name} has shape {value.shape}: give a scalar or one value per run, shape ({runs},)")
    return value


def fit_margin_runs(
    x: jax.Array,
    labels: jax.Array,
    weights: jax.Array,
    biases: jax.Array,
    teacher_margins: jax.Array | None = None,
    *,
    ce_weight: float | jax.Array = 1.0,
    kd_weight: float | jax.Array = 0.0,
    temperature: float | jax.Array = 1.0,
    learning_rate: float | jax.Array,
    momentum: float | jax.Array = 0.0,
    steps: int,
    reduction: str = "paper",
    interpret: bool = False,
    num_warps: int = 4,
) -> LinearFit:
    """Train R linear two-class models in margin form, each on its own data, one fused kernel each.

    Run r has inputs ``x[r]`` (n, d), ``labels[r]`` (n,) in {0, 1}, initial margin weights
    ``weights[r]`` (d,) and bias ``biases[r]`` (see :func:`mfh_sim.train.margin_params`), and
    optionally a teacher's margins ``teacher_margins[r]`` (n,).  Its margins are m = x v + c and,
    with sigma the logistic function, y the labels and t the teacher's margins, its loss gradient
    per sample is (:func:`mfh_sim.losses.margin_gradient`)

        g_i = ce_weight (sigma(m_i) - y_i) / n  +  kd_weight T (sigma(m_i / T) - sigma(t_i / T)) / (n c)

    (the second term only with ``teacher_margins``; c = 2 for ``reduction='paper'``, 1 for
    ``'batchmean'``), the chain rule of the margin form (:func:`mfh_sim.train.fit_linear`) gives

        dL/dv = 2 x^T g,        dL/dc = 2 sum_i g_i,

    and each of the ``steps`` updates is SGD with heavy-ball momentum mu (optax's ``trace`` then
    ``scale``, :func:`mfh_sim.train.make_optimizer`), from a zero trace:

        tau <- dL/d(v, c) + mu tau,        (v, c) <- (v, c) - learning_rate tau.

    A run is flagged diverged if any of its margins is non-finite at any step or at the end.

    Args:
      x: (R, n, d) float32 inputs, R runs of n samples and d features.
      labels: (R, n) labels, 0 or 1 (any numeric dtype).
      weights: (R, d) initial margin weights.
      biases: (R,) initial margin biases.
      teacher_margins: (R, n) the teacher's margins on each run's samples, or None (no KD term).
      ce_weight, kd_weight: the loss weights, >= 0; a scalar or one per run (R,).
      temperature: the KD temperature T > 0; a scalar or one per run.
      learning_rate: the step size > 0; a scalar or one per run.
      momentum: heavy-ball momentum mu in [0, 1) (0: plain gradient descent); a scalar or one per run.
      steps: the number of full-batch updates, >= 0 (static).
      reduction: 'paper' or 'batchmean', as :func:`mfh_sim.losses.kd_kl`.
      interpret: run the kernel in Pallas' interpreter (any backend; slow, for tests on a CPU).
      num_warps: Triton warps per run on a GPU (ignored when interpreting).

    Returns:
      A :class:`mfh_sim.train.LinearFit` with ``weights`` (R, d), ``biases`` (R,) and ``diverged``
      (R,) bool (the weights of a diverged run are meaningless).

    The kernel keeps a run's x, labels and teacher's probabilities on-chip for all the steps (one
    Pallas program instance per run, x padded to a power-of-two block: 256 x 64 for the paper's
    200 samples of 50 features and the bias).  Its float32 sums run in another order than the XLA
    path's, so the two agree to rounding, not bit for bit.
    """
    if reduction not in KD_REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not allowed: use one of {KD_REDUCTIONS}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r} is not allowed: give an integer >= 0")
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 3:
        raise ValueError(f"x has shape {x.shape}: give (runs, n, d)")
    runs, n, d = x.shape
    expected = {"labels": (runs, n), "weights": (runs, d), "biases": (runs,)}
    arrays = {"labels": labels, "weights": weights, "biases": biases}
    if teacher_margins is not None:
        expected["teacher_margins"] = (runs, n)
        arrays["teacher_margins"] = teacher_margins
    for name, shape in expected.items():
        if jnp.shape(arrays[name]) != shape:
            raise ValueError(f"{name} has shape {jnp.shape(arrays[name])}: x of shape {x.shape} needs {shape}")
    knobs = {name: _per_run(value, runs, name) for name, value in (
        ("ce_weight", ce_weight), ("kd_weight", kd_weight), ("temperature", temperature),
        ("learning_rate", learning_rate), ("momentum", momentum))}
    return _fit_margin_runs(x, jnp.asarray(labels, jnp.float32), jnp.asarray(weights, jnp.float32),
                            jnp.asarray(biases, jnp.float32),
                            None if teacher_margins is None else jnp.asarray(teacher_margins, jnp.float32),
                            **knobs, steps=steps, reduction=reduction, interpret=interpret, num_warps=num_warps)


def _fit_margin_runs(x, labels, weights, biases, teacher_margins, *, ce_weight, kd_weight, temperature,
                     learning_rate, momentum, steps, reduction, interpret, num_warps) -> LinearFit:
    runs, n, d = x.shape
    n_block, d_block = _padded(n), _padded(d + 1)
    # The bias is weight d, on a column of ones over the true samples; the rest is zero padding.
    augmented = jnp.concatenate([x, jnp.ones((runs, n, 1), jnp.float32)], axis=2)
    x_block = jnp.pad(augmented, ((0, 0), (0, n_block - n), (0, d_block - d - 1)))
    pad_samples = lambda a: jnp.pad(a, ((0, 0), (0, n_block - n)))
    true_sample = (jnp.arange(n_block) < n).astype(jnp.float32)[None, :]
    classes = 2.0 if reduction == "paper" else 1.0
    ce_scale = true_sample * (ce_weight / n)[:, None]
    kd_scale = true_sample * (kd_weight * temperature / (n * classes))[:, None]
    distil = teacher_margins is not None
    teacher_probs = (pad_samples(jax.nn.sigmoid(teacher_margins / temperature[:, None])) if distil
                     else jnp.zeros((runs, n_block), jnp.float32))
    start = jnp.pad(jnp.concatenate([weights, biases[:, None]], axis=1), ((0, 0), (0, d_block - d - 1)))
    scalars = jnp.pad(jnp.stack([learning_rate, momentum, 1.0 / temperature], axis=1), ((0, 0), (0, MIN_BLOCK - 3)))

    row = lambda size: pl.BlockSpec((None, size), lambda r: (r, 0))
    kernel = functools.partial(_margin_kernel, steps=steps, distil=distil)
    compiler_params = None if interpret else _triton_params(num_warps)
    final, flags = pl.pallas_call(
        kernel,
        out_shape=(jax.ShapeDtypeStruct((runs, d_block), jnp.float32),
                   jax.ShapeDtypeStruct((runs, MIN_BLOCK), jnp.float32)),
        grid=(runs,),
        in_specs=[pl.BlockSpec((None, n_block, d_block), lambda r: (r, 0, 0)),
                  row(n_block), row(n_block), row(n_block), row(n_block), row(MIN_BLOCK), row(d_block)],
        out_specs=(row(d_block), row(MIN_BLOCK)),
        compiler_params=compiler_params,
        interpret=interpret,
        name="fit_margin_runs",
    )(x_block, pad_samples(labels), ce_scale, kd_scale, teacher_probs, scalars, start)
    return LinearFit(final[:, :d], final[:, d], flags[:, 0] > 0)
