"""Throughput of big sweeps of the paper's Fig. 2 protocol: chunk sizes, the 11-gamma sweep, and
large persisted sweeps (host and device memory).

The protocol (paper-notes.md, Fig. 2): x^a 25 channels, x^b 50, K = 20 decisive latents, overlap
o in 0..10 (``shared=o, a_only=10-o, b_only=10-o, unseen=o``, gamma = o/(20-o)), n_train 200,
n_test 1000, linear models, full-batch GD at learning rate 0.1 for 1000 steps.  One simulation
(a grid point and a seed) trains three models (teacher, no-KD student, KD student): **training
runs = 3 x simulations**, the unit of the project's speed bars.

    python benchmarks/throughput.py chunks              # runs/s against chunk size (CPU)
    python benchmarks/throughput.py fig2 --seeds 1000   # 1,000 seeds x 11 gammas, compile in/out
    python benchmarks/throughput.py sweep --training-runs 100000 --out /tmp/big
                                                        # a big persisted sweep; reports peak host
                                                        # memory (max RSS) and, on accelerators,
                                                        # peak device memory

Every mode prints the versions and device it ran on.  Run from the repository root with
``PYTHONPATH=.`` (or after ``pip install -e .``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import time

import jax
import numpy as np

import mfh_sim
from mfh_sim import engine
from mfh_sim._version import versions
from mfh_sim.experiments.paper import fig2_point
from mfh_sim.protocols.paper import bytes_per_run, static_of

TRAININGS_PER_SIMULATION = 3


def fig2_points(overlaps: tuple[int, ...] = tuple(range(11))):
    return [fig2_point(o) for o in overlaps]


def header() -> str:
    v = versions()
    return (f"# {v['device']} ({v['backend']}, {len(jax.devices())} device(s), {os.cpu_count()} CPUs); "
            f"jax {v['jax']}, jaxlib {v['jaxlib']}, numpy {v['numpy']}, python {v['python']}; "
            f"load average {os.getloadavg()[0]:.2f}")


def max_rss_gib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def peak_device_gib() -> float | None:
    stats = jax.local_devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


def timed_sweep(seeds, **kwargs):
    start = time.perf_counter()
    result = mfh_sim.sweep(points=fig2_points(), seeds=seeds, theory=False, **kwargs)
    return time.perf_counter() - start, result


def chunks_mode(args) -> None:
    """Simulations per second against chunk size.

    Every size is compiled first; then the sizes are timed in interleaved rounds and the best
    round of each is kept, so that a burst of load from other processes on a shared machine
    does not fall on one size only (the median is printed too).
    """
    print(header())
    seeds = math.ceil(args.simulations / 11)
    n = 11 * seeds
    print(f"# {n} simulations ({TRAININGS_PER_SIMULATION * n} training runs) of {args.steps} steps per timing, "
          f"best and median of {args.repeat} interleaved rounds, workers={engine.default_workers()}")
    compile_s = {}
    for size in args.sizes:
        start = time.perf_counter()
        timed_sweep(1, chunk_size=size, steps=args.steps)  # compiles this chunk shape
        compile_s[size] = time.perf_counter() - start
    times = {size: [] for size in args.sizes}
    for _ in range(args.repeat):
        for size in args.sizes:
            times[size].append(timed_sweep(seeds, chunk_size=size, steps=args.steps)[0])
    print("| runs per chunk | compile s | best s | simulations/s (best) | training runs/s (best) "
          "| training runs/s (median) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        best, median = min(times[size]), float(np.median(times[size]))
        print(f"| {size} | {compile_s[size]:.1f} | {best:.2f} | {n / best:.0f} | "
              f"{TRAININGS_PER_SIMULATION * n / best:.0f} | {TRAININGS_PER_SIMULATION * n / median:.0f} |")
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


def fig2_mode(args) -> None:
    """1,000 seeds x 11 gammas: the first call (compilation included), then the same call again."""
    print(header())
    n = 11 * args.seeds
    cold, _ = timed_sweep(args.seeds, chunk_size=args.chunk_size)
    warm, result = timed_sweep(args.seeds, chunk_size=args.chunk_size)
    print(f"{args.seeds} seeds x 11 gammas = {n} simulations = {TRAININGS_PER_SIMULATION * n} training runs "
          f"of 1000 steps (chunk size {args.chunk_size or engine.default_chunk_size()})")
    print(f"compile included: {cold:.1f} s; compile excluded: {warm:.1f} s "
          f"({TRAININGS_PER_SIMULATION * n / warm:.0f} training runs/s)")
    with np.errstate(all="ignore"):
        gains = [f"{100 * row['delta_mean']:+.2f}" for row in result.summary()]
    print("KD gain (points) by overlap o = 0..10:", " ".join(gains))


def sweep_mode(args) -> None:
    """One persisted sweep of about ``--training-runs`` training runs at the Fig. 2 protocol."""
    print(header())
    simulations = math.ceil(args.training_runs / TRAININGS_PER_SIMULATION)
    seeds = math.ceil(simulations / 11)
    n = 11 * seeds
    if args.out and os.path.isdir(args.out) and args.fresh:
        shutil.rmtree(args.out)
    # Compile first (a tiny sweep with the same shapes), so the timed part is the steady state.
    start = time.perf_counter()
    mfh_sim.sweep(points=fig2_points(), seeds=1, theory=False, chunk_size=args.chunk_size)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    result = mfh_sim.sweep(points=fig2_points(), seeds=seeds, theory=False, chunk_size=args.chunk_size,
                           out=args.out, progress=args.progress)
    elapsed = time.perf_counter() - start
    rate = TRAININGS_PER_SIMULATION * n / elapsed
    report = {
        "simulations": n,
        "training_runs": TRAININGS_PER_SIMULATION * n,
        "chunk_size": args.chunk_size or engine.default_chunk_size(
            bytes_per_run(static_of(mfh_sim.make_config(**fig2_points()[0])))),
        "devices": len(jax.devices()),
        "compile_s": round(compile_s, 2),
        "sweep_s": round(elapsed, 2),
        "training_runs_per_s": round(rate),
        "training_runs_per_min": round(60 * rate),
        "max_rss_gib": round(max_rss_gib(), 3),
        "peak_device_gib": None if peak_device_gib() is None else round(peak_device_gib(), 3),
        "diverged": int(result.n_diverged),
        "versions": versions(),
    }
    print(json.dumps(report, indent=1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    chunks = modes.add_parser("chunks", help="throughput against chunk size")
    chunks.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[2, 4, 8, 16, 24, 32, 64, 128])
    chunks.add_argument("--simulations", type=int, default=550, help="simulations per timing (default 550)")
    chunks.add_argument("--steps", type=int, default=1000)
    chunks.add_argument("--repeat", type=int, default=3, help="interleaved rounds; the best is kept")
    chunks.set_defaults(func=chunks_mode)
    fig2 = modes.add_parser("fig2", help="seeds x 11 gammas, compile included and excluded")
    fig2.add_argument("--seeds", type=int, default=1000)
    fig2.add_argument("--chunk-size", type=int, default=None)
    fig2.set_defaults(func=fig2_mode)
    big = modes.add_parser("sweep", help="a big persisted sweep; memory and throughput")
    big.add_argument("--training-runs", type=int, default=100_000)
    big.add_argument("--chunk-size", type=int, default=None)
    big.add_argument("--out", default=None, help="results directory (default: none, in memory only)")
    big.add_argument("--fresh", action="store_true", help="delete --out first")
    big.add_argument("--progress", action="store_true")
    big.set_defaults(func=sweep_mode)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
