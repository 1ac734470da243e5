"""Speed of the paper's Fig. 2 protocol: vmapped sweep vs a loop of jitted runs vs PyTorch.

The protocol: 6 gammas x 10 seeds x 3 trainings (teacher, no-KD student, KD student) x 1000
full-batch steps at the paper's dims (x^a 25 channels, x^b 50, n_train 200, n_test 1000).  All
three ways run in this one process, one after the other, and the ratios printed are between
times measured here:

1. ``mfh_sim.sweep``: one vmapped computation over (gamma, seed), chunked and spread over the
   CPU cores; timed on its first call (compilation included) and again once compiled.
2. A Python loop over single runs, each a jitted function of one (config, seed), compiled once.
3. The conventional PyTorch implementation (``benchmarks/torch_baseline.py``: one model at a
   time, a Python loop over steps), if torch is installed (``pip install -e '.[bench]'``).

Then 1,000 seeds x 11 gammas (overlaps o = 0..10) of the same protocol with the vmapped sweep.

Run:  python benchmarks/speed.py            (about two minutes on a 2-core CPU)
"""

from __future__ import annotations

import argparse
import importlib.util
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
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--big-seeds", type=int, default=1000)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    overlaps = (0, 2, 4, 6, 8, 10)
    trainings = len(overlaps) * args.seeds * 3
    print(f"versions: {versions()}; cores: {len(os.sched_getaffinity(0))}; load: {os.getloadavg()}")
    print(f"Fig. 2 protocol: {len(overlaps)} gammas x {args.seeds} seeds x 3 trainings x 1000 steps "
          f"= {trainings} training runs\n")

    first, _ = time_sweep(overlaps, args.seeds)
    compiled, sweep_result = time_sweep(overlaps, args.seeds)
    loop_compile, loop_time = time_loop(overlaps, args.seeds)

    torch_time = None
    if not args.no_torch and importlib.util.find_spec("torch") is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from torch_baseline import run_protocol

        torch_result = run_protocol(repetitions=args.seeds)
        torch_time = torch_result["wall_time_s"]

    rows = [
        ("vmapped sweep, compiled", compiled),
        ("vmapped sweep, incl. compilation", first),
        ("loop of jitted runs, compiled", loop_time),
        ("loop of jitted runs, incl. compilation", loop_time + loop_compile),
    ]
    if torch_time is not None:
        rows.append(("PyTorch, one model at a time", torch_time))
    print(f"{'way':<42} {'time s':>8} {'runs/s':>10} {'PyTorch / this':>15}")
    for name, seconds in rows:
        ratio = f"{torch_time / seconds:15.1f}" if torch_time is not None else f"{'n/a':>15}"
        print(f"{name:<42} {seconds:8.3f} {trainings / seconds:10.1f} {ratio}")
    print(f"\nloop / vmapped (both compiled): {loop_time / compiled:.1f}x")

    big_overlaps = tuple(range(11))
    big_trainings = len(big_overlaps) * args.big_seeds * 3
    big_first, _ = time_sweep(big_overlaps, args.big_seeds)
    big_again, big = time_sweep(big_overlaps, args.big_seeds)
    print(f"\n{args.big_seeds} seeds x 11 gammas = {big_trainings} training runs: "
          f"{big_first:.1f} s on the first call (same program as the Fig. 2 sweep's, already "
          f"compiled), {big_again:.1f} s on the second "
          f"({big_trainings / big_again:.0f} training runs/s)")
    print("mean KD gain per gamma (points):",
          " ".join(f"{g:.2f}:{100 * d:+.2f}" for g, d in zip(big.gamma, big.delta.mean(axis=1))))


if __name__ == "__main__":
    main()
