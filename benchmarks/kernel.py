"""The fused Pallas kernel (``mfh_sim.kernels.fit_margin_runs``) against the XLA path: training runs
per minute on the paper's Fig. 2 shapes, and how far apart their weights end.

A training run is one linear two-class model trained as the paper's margin fast path trains it:
n = 200 samples, d = 50 features, full-batch SGD at learning rate 0.1 for 1000 steps, the KD
student's loss (cross-entropy plus the KL term, weights 1 and 1, T = 1, the 'paper' reduction).
R runs, each with its own data, are trained two ways in one process:

* XLA: ``jit(vmap(train.fit_linear(form='margin', ...)))``, the protocol's path (a ``lax.scan``
  that reads each run's x from device memory at every step);
* kernel: ``jit(kernels.fit_margin_runs)``, one Pallas program per run with its data held on-chip
  for all the steps, for each ``--num-warps`` asked (Triton warps per run).

Each is compiled first (the compile time is printed apart), then timed ``--repeats`` times; the
best time gives runs per minute.  Prints one JSON report: device, versions, load average, the
rates, the kernel's speed-up over XLA and the largest |weight difference| between the two
(float32 rounding in another order: expect ~1e-6 of the weights' size; see tests/test_kernels.py).

    python benchmarks/kernel.py                       # a GPU: 65,536 runs (about a minute)
    python benchmarks/kernel.py --runs 8 --steps 200  # a CPU: checks the script only

Without a GPU the kernel runs in Pallas' interpret mode (its body compiled by XLA:CPU, the runs
one after another): slow, and its rate on a CPU says nothing about the kernel on a GPU.  Run
from the repository root with ``PYTHONPATH=.``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim._version import versions
from mfh_sim.kernels import fit_margin_runs
from mfh_sim.losses import margin_gradient
from mfh_sim.train import fit_linear, make_optimizer

#: The paper's Fig. 2 student: n_train, x^b's channels, steps, and its KD student's knobs.
FIG2 = dict(n=200, d=50, steps=1000, learning_rate=0.1, momentum=0.0, ce_weight=1.0, kd_weight=1.0,
            temperature=1.0, reduction="paper")


@functools.partial(jax.jit, static_argnames=("runs", "n", "d"))
def draw(key: jax.Array, runs: int, n: int, d: int):
    """Random runs of the given shape: inputs, labels from a random hyperplane, a teacher's noisy
    margins and a PyTorch-style initialisation (the data only shapes the work, not its cost)."""
    keys = jax.random.split(key, 5)
    x = jax.random.normal(keys[0], (runs, n, d))
    direction = jax.random.normal(keys[1], (runs, d))
    signal = jnp.einsum("rnd,rd->rn", x, direction) / jnp.sqrt(d)
    labels = (signal > 0).astype(jnp.float32)
    teacher = 3.0 * signal + jax.random.normal(keys[2], (runs, n))
    bound = 1.0 / np.sqrt(d)
    weights = jax.random.uniform(keys[3], (runs, d), minval=-bound, maxval=bound)
    biases = jax.random.uniform(keys[4], (runs,), minval=-bound, maxval=bound)
    return x, labels, weights, biases, teacher


def xla_path(steps: int, learning_rate: float, momentum: float, ce_weight: float, kd_weight: float,
             temperature: float, reduction: str):
    """The protocol's training of one model per run, vmapped over runs; returns (R, d + 1), (R,)."""

    def one(x, labels, weights, bias, teacher):
        gradient = lambda m: margin_gradient(m, labels[:, None], teacher[:, None], ce_weight=ce_weight,
                                             kd_weight=kd_weight, temperature=temperature, reduction=reduction)
        fitted = fit_linear(x, weights[:, None], bias[None], loss_gradient=gradient, form="margin",
                            optimizer=make_optimizer("sgd", learning_rate, momentum), steps=steps)
        return jnp.concatenate([fitted.weights[:, 0], fitted.biases]), fitted.diverged[0]

    return jax.jit(jax.vmap(one))


def kernel_path(steps: int, learning_rate: float, momentum: float, ce_weight: float, kd_weight: float,
                temperature: float, reduction: str, *, interpret: bool, num_warps: int):
    def train(x, labels, weights, biases, teacher):
        fitted = fit_margin_runs(x, labels, weights, biases, teacher, ce_weight=ce_weight, kd_weight=kd_weight,
                                 temperature=temperature, learning_rate=learning_rate, momentum=momentum,
                                 steps=steps, reduction=reduction, interpret=interpret, num_warps=num_warps)
        return jnp.concatenate([fitted.weights, fitted.biases[:, None]], axis=1), fitted.diverged

    return jax.jit(train)


def timed(function, arguments, repeats: int) -> tuple[float, list[float], tuple]:
    """(compile-and-first-call seconds, seconds of each later call, the outputs)."""
    start = time.perf_counter()
    outputs = jax.block_until_ready(function(*arguments))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = jax.block_until_ready(function(*arguments))
        times.append(time.perf_counter() - start)
    return first, times, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None,
                        help="training runs per call (default 65536 on an accelerator, 8 on a CPU)")
    parser.add_argument("--steps", type=int, default=FIG2["steps"], help="updates per run (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each path after the first")
    parser.add_argument("--num-warps", type=int, nargs="+", default=[4, 8, 16], help="Triton warps per run to try")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    on_cpu = jax.default_backend() == "cpu"
    runs = args.runs or (8 if on_cpu else 65536)
    knobs = {k: FIG2[k] for k in ("learning_rate", "momentum", "ce_weight", "kd_weight", "temperature", "reduction")}
    data = jax.block_until_ready(draw(jax.random.key(args.seed), runs, FIG2["n"], FIG2["d"]))

    report: dict = {"versions": versions(), "load_average": os.getloadavg()[0], "runs": runs,
                    "n": FIG2["n"], "d": FIG2["d"], "steps": args.steps, **knobs,
                    "kernel_mode": "interpret (CPU: not a measure of the kernel)" if on_cpu else "compiled"}
    first, times, (reference, reference_flags) = timed(xla_path(args.steps, **knobs), data, args.repeats)
    xla_per_min = 60.0 * runs / min(times)
    report["xla"] = {"first_call_s": round(first, 3), "call_s": [round(t, 4) for t in times],
                     "training_runs_per_min": round(xla_per_min)}
    scale = float(jnp.max(jnp.abs(reference)))
    for num_warps in args.num_warps:
        entry: dict = {}
        try:
            path = kernel_path(args.steps, **knobs, interpret=on_cpu, num_warps=num_warps)
            first, times, (weights, flags) = timed(path, data, args.repeats)
        except Exception as error:  # a GPU toolchain that cannot build this variant: report, go on
            entry["error"] = f"{type(error).__name__}: {str(error)[:500]}"
        else:
            per_min = 60.0 * runs / min(times)
            both_finite = ~(np.asarray(flags) | np.asarray(reference_flags))
            entry = {"first_call_s": round(first, 3), "call_s": [round(t, 4) for t in times],
                     "training_runs_per_min": round(per_min), "speedup_over_xla": round(per_min / xla_per_min, 3),
                     "max_abs_weight_difference": float(np.max(np.abs(np.asarray(weights) - np.asarray(reference))
                                                               [both_finite], initial=0.0)),
                     "max_abs_weight": scale,
                     "diverged_flags_agree": bool(np.array_equal(np.asarray(flags), np.asarray(reference_flags))),
                     "diverged_runs": int(np.sum(np.asarray(flags)))}
            if on_cpu:
                entry["interpret_mode"] = True
        report[f"kernel_num_warps_{num_warps}"] = entry
    report["target_training_runs_per_min"] = 10_000_000
    print(json.dumps(report, indent=1))
    print(f"XLA path: {xla_per_min / 1e6:.3f} million training runs/min")
    for name, entry in report.items():
        if name.startswith("kernel_num_warps_"):
            print(f"kernel, {name.removeprefix('kernel_num_warps_')} warps: " + (
                entry["error"] if "error" in entry else
                f"{entry['training_runs_per_min'] / 1e6:.3f} million training runs/min "
                f"({entry['speedup_over_xla']:.2f}x XLA{', interpret mode' if on_cpu else ''}), "
                f"max |weight difference| {entry['max_abs_weight_difference']:.2g} (weights up to {scale:.3g}), "
                f"divergence flags agree: {entry['diverged_flags_agree']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
