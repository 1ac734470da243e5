"""The fused Pallas kernel (mfh_sim.kernels) against the XLA path it replaces, in interpret mode.

The reference is what the paper protocol's margin fast path runs for one model:
``train.fit_linear(form='margin')`` with ``losses.margin_gradient`` and
``train.make_optimizer('sgd', lr, momentum)``, vmapped over runs.  Instances are drawn across the
space: sample and feature counts that are and are not powers of two (padding on both axes, on
one, on neither), with and without teacher margins, both KL reductions, momentum 0 and 0.9,
temperatures from 0.5 to 5, per-run loss weights, the protocol's 1000 steps, and two learning
rates: the paper's 0.1 and the run's own 1 / L, where L = (ce_weight + kd_weight / c)
lambda_max(x'^T x') / (2 n) bounds the curvature of the margin loss (x' is x with the bias
column; sigma' <= 1/4 and the chain rule's factor 2), so that plain GD (stable below 2 / L) and
heavy ball at 0.9 (below 3.8 / L) are stable.  (A learning rate past that bound makes the
trajectory chaotic for a while: rounding differences grow by orders of magnitude and two float32
runs, or a float32 and a float64 one, part ways, so no implementation could match another.)

Tolerance.  Kernel and reference do the same float32 operations in another order (sums over
samples and features, the constant factors folded in another order), so each is the exact
trajectory plus rounding errors of the same size, carried through 1000 steps.  How far they carry
depends on the instance (a separable instance's weights keep growing and every step's rounding
persists), so the tolerance is measured on the reference's own float32 error: the same reference
in float64 gives the exact trajectory to ~1e-16, and

    |kernel - ref32| <= |kernel - ref64| + |ref32 - ref64| ~ 2 |ref32 - ref64|.

Per run, over the d + 1 weights (bias included), the test allows
8 (|ref32 - ref64|_max + eps32 |ref64|_max): the factor 2 above, times 4 for the spread of a
maximum over the few directions that dominate the error; eps32 |w| is the final rounding of the
weights themselves (the floor where the propagated error is tiny).  A bug in the arithmetic (a
dropped factor, a wrong mask) moves the weights by 1e-3 to 1e-1, orders of magnitude beyond.
"""

from __future__ import annotations

import functools
import importlib.util

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import pytest

from mfh_sim.kernels import fit_margin_runs
from mfh_sim.losses import margin_gradient
from mfh_sim.train import fit_linear, make_optimizer

EPS32 = float(np.finfo(np.float32).eps)
STEPS = 1000


def _float64():
    """A context in which JAX computes in float64 (``jax.enable_x64`` from JAX 0.7 on)."""
    enable = getattr(jax, "enable_x64", None)
    if enable is not None:
        return enable(True)
    from jax.experimental import enable_x64

    return enable_x64()


@functools.partial(jax.jit, static_argnames=("steps", "reduction", "distil"))
def _reference(x, labels, weights, biases, teacher_margins, knobs, *, steps, reduction, distil):
    """The XLA path, one run at a time under vmap: (R, d + 1) final weights (bias last), (R,) flags."""

    def one(x, labels, weights, bias, teacher, knobs):
        ce_weight, kd_weight, temperature, learning_rate, momentum = knobs
        gradient = lambda m: margin_gradient(
            m, labels[:, None], teacher[:, None] if distil else None, ce_weight=ce_weight,
            kd_weight=kd_weight, temperature=temperature, reduction=reduction)
        fitted = fit_linear(x, weights[:, None], bias[None], loss_gradient=gradient, form="margin",
                            optimizer=make_optimizer("sgd", learning_rate, momentum), steps=steps)
        return jnp.concatenate([fitted.weights[:, 0], fitted.biases]), fitted.diverged[0]

    return jax.vmap(one)(x, labels, weights, biases, teacher_margins, knobs)


def _draw(seed: int, runs: int, n: int, d: int, *, distil: bool = True, reduction: str = "paper"):
    """A random instance: inputs with per-feature scales, labels, a torch-style init, teacher
    margins of a confident teacher, and per-run knobs (ce_weight, kd_weight, T, lr, momentum)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(runs, n, d)) * rng.uniform(0.5, 2.0, size=(runs, 1, d))
    labels = (rng.uniform(size=(runs, n)) < 0.5).astype(np.float32)
    bound = 1.0 / np.sqrt(d)
    weights, biases = rng.uniform(-bound, bound, (runs, d)), rng.uniform(-bound, bound, runs)
    teacher = 3.0 * rng.normal(size=(runs, n))
    ce_weight, kd_weight = rng.uniform(0.2, 1.0, runs), rng.uniform(0.0, 2.0, runs)
    temperature = np.exp(rng.uniform(np.log(0.5), np.log(5.0), runs))
    # (lr, momentum) cycles through {0.1, 1 / L} x {0, 0.9}, L the run's curvature bound.
    with_bias = np.concatenate([x, np.ones((runs, n, 1))], axis=2)
    lambda_max = np.linalg.eigvalsh(np.einsum("rni,rnj->rij", with_bias, with_bias))[:, -1]
    classes = 2.0 if reduction == "paper" else 1.0
    curvature = (ce_weight + (kd_weight / classes if distil else 0.0)) * lambda_max / (2.0 * n)
    cycle = np.arange(runs) % 4
    learning_rate = np.where(cycle < 2, 0.1, 1.0 / curvature)
    momentum = np.where(cycle % 2 == 0, 0.0, 0.9)
    knobs = np.column_stack([ce_weight, kd_weight, temperature, learning_rate, momentum])
    as32 = lambda a: np.asarray(a, np.float32)
    return tuple(map(as32, (x, labels, weights, biases, teacher, knobs)))


def _kernel(x, labels, weights, biases, teacher, knobs, *, steps, reduction, distil):
    ce_weight, kd_weight, temperature, learning_rate, momentum = knobs.T
    fitted = fit_margin_runs(x, labels, weights, biases, teacher if distil else None, ce_weight=ce_weight,
                             kd_weight=kd_weight, temperature=temperature, learning_rate=learning_rate,
                             momentum=momentum, steps=steps, reduction=reduction, interpret=True)
    return np.concatenate([fitted.weights, fitted.biases[:, None]], axis=1), np.asarray(fitted.diverged)


# (samples, features, with a teacher, reduction): padded on both axes, on neither (64 samples, 63
# features and the bias: exactly 64 x 64), smaller than the smallest block, the paper's Fig. 2 shape.
CASES = [(37, 11, False, "paper"), (130, 25, True, "batchmean"), (64, 63, True, "paper"),
         (5, 3, True, "batchmean"), (200, 50, True, "paper")]


@pytest.mark.parametrize("seed,case", list(enumerate(CASES)), ids=[f"n{c[0]}-d{c[1]}-{'kd' if c[2] else 'ce'}-{c[3]}"
                                                                  for c in CASES])
def test_kernel_trains_what_the_xla_path_trains(seed, case):
    n, d, distil, reduction = case
    draws = _draw(seed, 4, n, d, distil=distil, reduction=reduction)
    options = dict(steps=STEPS, reduction=reduction, distil=distil)
    kernel, kernel_flags = _kernel(*draws, **options)
    reference, reference_flags = map(np.asarray, _reference(*draws, **options))
    with _float64():
        exact, _ = map(np.asarray, _reference(*(a.astype(np.float64) for a in draws), **options))
    assert not reference_flags.any() and not kernel_flags.any()
    rounding = np.abs(reference - exact).max(axis=1) + EPS32 * np.abs(exact).max(axis=1)
    error = np.abs(kernel - reference).max(axis=1)
    assert np.all(error <= 8.0 * rounding), (error, rounding)


def test_kernel_flags_divergence_as_the_xla_path_does():
    """Huge steps overflow the weights (with and without momentum); a teacher margin that is NaN
    poisons the KD term; the fourth run is healthy.  Flags and the healthy run's weights agree."""
    x, labels, weights, biases, teacher, _ = _draw(11, 4, 64, 63)  # a shape compiled above
    teacher[2, 7] = np.nan
    learning_rate = np.array([1e38, 1e38, 0.1, 0.1], np.float32)
    momentum = np.array([0.0, 0.9, 0.0, 0.0], np.float32)
    fitted = fit_margin_runs(x, labels, weights, biases, teacher, ce_weight=1.0, kd_weight=0.5, temperature=2.0,
                             learning_rate=learning_rate, momentum=momentum, steps=STEPS, interpret=True)
    knobs = np.column_stack([np.ones(4), np.full(4, 0.5), np.full(4, 2.0), learning_rate, momentum]).astype(np.float32)
    reference, flags = _reference(x, labels, weights, biases, teacher, knobs, steps=STEPS, reduction="paper",
                                  distil=True)
    np.testing.assert_array_equal(np.asarray(fitted.diverged), [True, True, True, False])
    np.testing.assert_array_equal(np.asarray(flags), [True, True, True, False])
    np.testing.assert_allclose(fitted.weights[3], reference[3, :-1], atol=1e-5)


def test_kernel_refuses_bad_arguments_by_name():
    x, labels, weights, biases, teacher, _ = _draw(0, 2, 9, 4)
    call = functools.partial(fit_margin_runs, x, labels, weights, biases, teacher, learning_rate=0.1, steps=3,
                             interpret=True)
    with pytest.raises(ValueError, match="reduction='mean'"):
        call(reduction="mean")
    with pytest.raises(ValueError, match="steps=-1"):
        call(steps=-1)
    with pytest.raises(ValueError, match="momentum has shape"):
        call(momentum=np.zeros(3))
    with pytest.raises(ValueError, match="teacher_margins has shape"):
        fit_margin_runs(x, labels, weights, biases, teacher[:, :5], learning_rate=0.1, steps=3, interpret=True)
    with pytest.raises(ValueError, match="x has shape"):
        fit_margin_runs(x[0], labels, weights, biases, learning_rate=0.1, steps=3, interpret=True)


def _lowers_here() -> bool:
    # jaxlib 0.10.x puts the Triton IR into the program for XLA to compile on the GPU, so any host
    # lowers it (checked on 0.10.2); other versions compile it to PTX while lowering, through the
    # CUDA plugin (present where there is a GPU).
    version = tuple(int(part) for part in jaxlib.__version__.split(".")[:3])
    plugin = any(importlib.util.find_spec(f"jax_cuda{major}_plugin") for major in (12, 13))
    return (0, 10, 0) <= version <= (0, 10, 2) or plugin


@pytest.mark.skipif(not _lowers_here(), reason="this jaxlib lowers Pallas Triton only through the CUDA plugin")
def test_kernel_lowers_to_triton_for_a_gpu():
    """The Pallas -> Triton lowering (block shapes, every primitive in the loop) runs on any host:
    lower the Fig. 2 shapes for CUDA and find the Triton kernel in the program."""
    draws = _draw(0, 8, 200, 50)
    fit = functools.partial(fit_margin_runs, ce_weight=1.0, kd_weight=1.0, temperature=2.0, learning_rate=0.1,
                            momentum=0.9, steps=STEPS)
    lowered = jax.jit(fit).trace(*draws[:5]).lower(lowering_platforms=("cuda",))
    text = lowered.as_text()
    assert "fit_margin_runs" in text
    assert "__gpu$xla.gpu.triton" in text or "triton_kernel_call" in text


# ------------------------------------------------------------------- the kernel behind the protocol
def test_the_protocol_with_the_kernel_trains_the_same_models_as_with_xla():
    """``kernel='pallas'`` (here in the interpreter) behind the paper protocol: teachers, no-KD and
    KD students of Fig. 2's gamma 0 and 1 (packed: one no-KD student for both) agree with the XLA
    path's run for run.  Both train the same models from the same draws and differ in float
    rounding only, so an accuracy can move only where a test sample sits within rounding of a
    model's boundary: at most a sample or two of 1000, in a few runs."""
    import mfh_sim
    from mfh_sim.experiments.paper import fig2_point

    options = dict(points=[fig2_point(0), fig2_point(10)], seeds=8, theory=False, steps=300)
    xla = mfh_sim.sweep(**options)
    fused = mfh_sim.sweep(**options, kernel="pallas")
    for name in ("teacher_acc", "no_kd_acc", "kd_acc"):
        difference = np.abs(getattr(fused, name) - getattr(xla, name))
        assert difference.max() <= 0.002 and np.mean(difference == 0) >= 0.75, (name, difference)
    # The comparison has power: the KD gain differs between the two points by far more.
    gain = np.mean(xla.kd_acc - xla.no_kd_acc, axis=1)
    assert gain[1] - gain[0] > 0.01
    assert fused.no_kd_acc[0].tolist() == fused.no_kd_acc[1].tolist()


def test_the_kernel_is_a_protocol_setting_refused_where_it_trains_nothing():
    import mfh_sim
    from mfh_sim.protocols.paper import PAPER, paper_protocol

    assert paper_protocol(True, "xla") == PAPER and "kernel" not in PAPER.options()
    assert paper_protocol(True, "pallas").options() == {"common_random_numbers": True, "kernel": "pallas"}
    with pytest.raises(ValueError, match="kernel='triton' is not allowed"):
        mfh_sim.sweep(gamma=[0.5], alpha=0.0, seeds=2, theory=False, kernel="triton")
    with pytest.raises(ValueError, match=r"kernel=\['pallas'\] is not allowed"):
        mfh_sim.simulate(gamma=0.5, alpha=0.0, seeds=2, theory=False, kernel=["pallas"])
    with pytest.raises(ValueError, match="kernel='pallas' is not allowed with optimizer='adam'"):
        mfh_sim.simulate(gamma=0.5, alpha=0.0, seeds=2, theory=False, optimizer="adam", kernel="pallas")
    for knobs, shown in ((dict(n_classes=3), "n_classes=3"), (dict(optimizer="erm", l2=0.01), "optimizer='erm'"),
                         (dict(kd_loss="mse"), "kd_loss='mse'")):
        with pytest.raises(ValueError, match=f"kernel='pallas' is not allowed with {shown}"):
            mfh_sim.simulate(gamma=0.5, alpha=0.0, seeds=2, theory=False, kernel="pallas", **knobs)


def test_a_results_directory_keeps_the_kernel_setting(tmp_path):
    """A sweep with the kernel is stored with its setting, reopens as itself, grows with more
    seeds, and is never resumed by the default path (whose numbers differ in rounding)."""
    import mfh_sim
    from mfh_sim.experiments.paper import fig2_point

    options = dict(points=[fig2_point(0)], theory=False, steps=50, out=tmp_path)
    first = mfh_sim.sweep(**options, seeds=4, kernel="pallas")
    np.testing.assert_array_equal(mfh_sim.load(tmp_path).kd_acc, first.kd_acc)
    more = mfh_sim.sweep(**options, seeds=6, kernel="pallas")
    np.testing.assert_array_equal(more.kd_acc[:, :4], first.kd_acc)
    with pytest.raises(ValueError, match="kernel=pallas there"):
        mfh_sim.sweep(**options, seeds=4)
