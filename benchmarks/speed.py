"""Speed of the paper's Fig. 2 protocol against its peers and against the machine's own GEMM rate.

Everything runs in this one process, one after the other, and every ratio printed is between times
measured here (``make bench``):

1. **The machine.** The best of several 2048 x 2048 float32 matrix products in JAX
   (``jnp.matmul``, 2 * 2048^3 FLOPs each): this machine's practical f32 GEMM rate, GFLOP/s.
2. **The small protocol** (6 gammas x 10 seeds x 3 trainings x 1000 steps, 180 training runs), three
   ways: ``mfh_sim.sweep`` (first call, then compiled); a Python loop of single jitted runs; and the
   conventional PyTorch implementation, one ``nn.Linear`` at a time in a Python loop over steps as
   the paper's code does (``benchmarks/torch_baseline.py``, ``run_protocol``).
3. **The 33,000-run sweep** (11 overlaps o = 0..10 x 1000 seeds x 3 trainings): ``mfh_sim.sweep``
   (first call, then compiled) and two batched PyTorch peers, each in eager mode and with
   ``torch.compile`` (``torch_baseline.run_batched``: all seeds of a chunk in one tensor,
   ``torch.bmm``, the same margin form and closed-form gradients as ``mfh_sim``): the plain peer,
   one overlap at a time, and the *shared* peer (``SharedPeer``), which, like ``mfh_sim``'s packs,
   draws a seed's data once for all overlaps, trains the no-KD student once and the KD students
   as heads of one product.  The peers' accuracies are checked against ``mfh_sim``'s, per
   overlap, within seed noise (``torch_baseline.compare_accuracies``: |difference of means| <= 4
   standard errors).

The effective rate of a sweep is its protocol's FLOPs over its wall time.  The FLOP count is that
of the undeduplicated protocol, whatever the implementation skips: a linear model of d inputs on
n training samples costs 4 n d FLOPs a full-batch step, forward (x v: 2 n d) plus backward
(x^T g: 2 n d); a simulation trains the teacher (d = 25) and two students (d = 50) on n_train = 200
for 1000 steps, so 4 * 200 * (25 + 50 + 50) * 1000 = 100 MFLOP, 33.3 MFLOP a training run, and the
33,000-run sweep is 1.1 TFLOP.  (Data generation, the sigmoid and the test evaluation are left
out: they are small beside the steps.)  It is printed as a fraction of the GEMM rate.

The PyTorch parts run if torch is installed (``pip install -e '.[bench]'``): the one-at-a-time
peer on 2 intra-op threads (``--torch-threads``), the batched peer as 2 worker threads of one
PyTorch thread each, one chunk per core as ``mfh_sim``'s engine runs (``--torch-workers``).  The
one-at-a-time peer is too slow for the big sweep (about an hour), so its ratios against the big
sweep's ways compare training runs per second (its rate on the small protocol), and say so.

Run:  python benchmarks/speed.py                 (about 6 minutes on a 2-core CPU)
      python benchmarks/speed.py --big-seeds 100 (a quick check of the script, ~1 minute)
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

import mfh_sim
from mfh_sim._version import versions
from mfh_sim.config import make_config
from mfh_sim.engine import run_keys
from mfh_sim.experiments.paper import fig2_point
from mfh_sim.protocols.paper import PAPER, inputs_of, make_run, static_of

#: FLOPs of one simulation of the Fig. 2 protocol, undeduplicated (see the module docstring):
#: 4 n d per model-step, n_train 200, models of 25, 50 and 50 inputs, 1000 steps.
FLOPS_PER_SIMULATION = 4 * 200 * (25 + 50 + 50) * 1000
TRAININGS_PER_SIMULATION = 3


def gemm_rate(size: int = 2048, repeats: int = 10) -> float:
    """This machine's f32 GEMM rate in GFLOP/s: the best of ``repeats`` timed ``size`` x ``size``
    products (2 size^3 FLOPs each) in JAX, after one untimed call (compilation)."""
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def load() -> str:
    return "load average " + " / ".join(f"{x:.2f}" for x in os.getloadavg())


def fig2_points(overlaps):
    return [fig2_point(o) for o in overlaps]


def time_sweep(overlaps, seeds):
    start = time.perf_counter()
    result = mfh_sim.sweep(points=fig2_points(overlaps), seeds=seeds, theory=False)
    return time.perf_counter() - start, result


def time_loop(overlaps, seeds):
    configs = [make_config(**point) for point in fig2_points(overlaps)]
    run = jax.jit(make_run(static_of(configs[0])))
    inputs = [inputs_of(config) for config in configs]
    keys = [run_keys(PAPER.identity_of(config), np.arange(seeds), 0) for config in configs]
    start = time.perf_counter()
    jax.block_until_ready(run(keys[0][0], inputs[0]))
    compile_time = time.perf_counter() - start
    start = time.perf_counter()
    outputs = []
    for point, point_inputs in enumerate(inputs):
        for seed in range(seeds):
            outputs.append(run(keys[point][seed], point_inputs))
    jax.block_until_ready(outputs)
    return compile_time, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds of the small protocol")
    parser.add_argument("--big-seeds", type=int, default=1000, help="seeds of the big sweep (x 11 overlaps)")
    parser.add_argument("--torch-chunk", type=int, default=None,
                        help="simulations per chunk of the batched peer (must divide --big-seeds)")
    parser.add_argument("--torch-threads", type=int, default=2,
                        help="PyTorch intra-op threads of the one-at-a-time peer (default 2)")
    parser.add_argument("--torch-workers", type=int, default=2,
                        help="chunks the batched peer trains at once, one thread each (default 2)")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    use_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    if use_torch:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import torch_baseline

        # On a loaded machine pass --torch-threads 1: with two, every small op of the
        # one-at-a-time peer waits at a barrier for a thread that another process holds.
        torch_baseline.torch.set_num_threads(args.torch_threads)
    print(f"versions: {versions()}"
          + (f", torch {torch_baseline.torch.__version__}" if use_torch else ", torch not installed")
          + f"; cores: {len(os.sched_getaffinity(0))}; {load()}")

    gemm = gemm_rate()
    print(f"\nf32 GEMM, 2048 x 2048 in JAX, best of 10: {gemm:.1f} GFLOP/s ({load()})")

    overlaps = (0, 2, 4, 6, 8, 10)
    trainings = len(overlaps) * args.seeds * TRAININGS_PER_SIMULATION
    print(f"\nFig. 2 protocol: {len(overlaps)} gammas x {args.seeds} seeds x 3 trainings x 1000 steps "
          f"= {trainings} training runs")
    first, _ = time_sweep(overlaps, args.seeds)
    compiled, _ = time_sweep(overlaps, args.seeds)
    loop_compile, loop_time = time_loop(overlaps, args.seeds)
    one_at_a_time = None
    if use_torch:
        one_at_a_time = torch_baseline.run_protocol(repetitions=args.seeds)
    rows = [
        ("vmapped sweep, compiled", compiled),
        ("vmapped sweep, incl. compilation", first),
        ("loop of jitted runs, compiled", loop_time),
        ("loop of jitted runs, incl. compilation", loop_time + loop_compile),
    ]
    if one_at_a_time is not None:
        rows.append(("PyTorch, one model at a time", one_at_a_time["wall_time_s"]))
    print(f"{'way':<42} {'time s':>8} {'runs/s':>10} {'PyTorch / this':>15}")
    for name, seconds in rows:
        ratio = (f"{one_at_a_time['wall_time_s'] / seconds:15.1f}" if one_at_a_time is not None
                 else f"{'n/a':>15}")
        print(f"{name:<42} {seconds:8.3f} {trainings / seconds:10.1f} {ratio}")
    if one_at_a_time is not None:
        print(f"(PyTorch on {one_at_a_time['num_threads']} threads)")
    print(f"loop / vmapped (both compiled): {loop_time / compiled:.1f}x ({load()})")

    big_overlaps = tuple(range(11))
    simulations = len(big_overlaps) * args.big_seeds
    big_trainings = TRAININGS_PER_SIMULATION * simulations
    flops = FLOPS_PER_SIMULATION * simulations
    print(f"\n{args.big_seeds} seeds x 11 overlaps = {big_trainings} training runs "
          f"({flops / 1e12:.2f} TFLOP undeduplicated)")
    big_first, _ = time_sweep(big_overlaps, args.big_seeds)
    print(f"  mfh_sim sweep, first call: {big_first:.1f} s ({load()})", flush=True)
    big_again, big = time_sweep(big_overlaps, args.big_seeds)
    print(f"  mfh_sim sweep, compiled: {big_again:.1f} s ({load()})", flush=True)
    ways = [("mfh_sim sweep, compiled", big_again), ("mfh_sim sweep, first call", big_first)]
    peers = {}
    if use_torch:
        for share in (False, True):
            default = torch_baseline.SHARED_CHUNK if share else torch_baseline.BATCHED_CHUNK
            chunk = args.torch_chunk or math.gcd(default, args.big_seeds)
            for compiled_peer in (False, True):
                name = (f"batched PyTorch{', shared' if share else ''}, "
                        f"{'torch.compile' if compiled_peer else 'eager'}")
                peers[name] = torch_baseline.run_batched(big_overlaps, args.big_seeds, chunk=chunk,
                                                         compiled=compiled_peer, threads=1,
                                                         workers=args.torch_workers, share=share)
                ways.append((name, peers[name]["wall_time_s"]))
                print(f"  {name} (chunk {chunk}, {args.torch_workers} worker threads of 1 PyTorch "
                      f"thread each): {peers[name]['wall_time_s']:.1f} s, warm-up "
                      f"{peers[name]['warm_up_s']:.1f} s untimed ({load()})", flush=True)
    projected = None
    if one_at_a_time is not None:
        projected = big_trainings / one_at_a_time["runs_per_s"]
        ways.append(("PyTorch one at a time (projected*)", projected))

    print(f"\n{'way':<36} {'time s':>8} {'runs/s':>8} {'GFLOP/s':>8} {'of GEMM':>8}")
    for name, seconds in ways:
        rate = flops / seconds / 1e9
        print(f"{name:<36} {seconds:8.1f} {big_trainings / seconds:8.0f} {rate:8.1f} {rate / gemm:8.1%}")
    print("\nratios (row's time / column's time: how many times faster the column is):")
    labels = {"mfh_sim sweep, compiled": "mfh comp", "mfh_sim sweep, first call": "mfh first",
              "batched PyTorch, eager": "pt eager", "batched PyTorch, torch.compile": "pt comp",
              "batched PyTorch, shared, eager": "pt sh eag", "batched PyTorch, shared, torch.compile": "pt sh comp",
              "PyTorch one at a time (projected*)": "pt 1-by-1"}
    short = [labels[name] for name, _ in ways]
    print(f"{'':<36} " + " ".join(f"{label:>10}" for label in short))
    for name, seconds in ways:
        print(f"{name:<36} " + " ".join(f"{seconds / other:10.2f}" for _, other in ways))
    if projected is not None:
        print("* projected from its rate on the small protocol above (same steps and shapes): "
              "ratios against it compare training runs per second")

    reference = np.stack([getattr(big, key) for key in ("teacher_acc", "no_kd_acc", "kd_acc")], axis=-1)
    for name, peer in peers.items():
        agree, worst, lines = torch_baseline.compare_accuracies(reference, peer["accuracies"])
        print(f"\n{name} against mfh_sim, per overlap, mean difference (points) +- SE "
              f"({args.big_seeds} seeds each, independent random numbers):")
        for overlap, line in zip(big_overlaps, lines):
            print(f"  o={overlap:2d}  {line}")
        print(f"  largest |z| = {worst:.2f}: {'AGREE' if agree else 'DISAGREE'} within seed noise "
              "(bar |z| <= 4)")
    print("\nmean KD gain per gamma (points, mfh_sim):",
          " ".join(f"{g:.2f}:{100 * d:+.2f}" for g, d in zip(big.gamma, big.delta.mean(axis=1))))
    print(f"done ({load()})")


if __name__ == "__main__":
    main()
