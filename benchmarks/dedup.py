"""Shared trainings run once: the 33,000-run Fig. 2 sweep with and without packs, in one process.

The sweep: 11 overlaps (o = 0..10) x 1,000 seeds of the paper's protocol through
``mfh_sim.sweep(points=..., seeds=1000, theory=False)``.  With common random numbers the 11 points
share, for each seed, the data, x^b and the no-KD student, so the engine runs them as one pack
(``share=True``, the default): 11 teachers, one no-KD student and 11 KD students trained two to a
product, 6 student fits where the points alone (``share=False``) need 11.  Both ways give the same
numbers bit for bit; this script checks that on every metric array of the whole sweep.

Each way is compiled first on a small sweep (the same programs), then timed once compiled, the two
ways alternating (``--repeats`` rounds), each time printed with the load average beside it.

``--layouts`` also times the student's training loop (:func:`mfh_sim.train.fit_linear`, margin
form, 1,000 steps, n_train 200, d 50) for a chunk of 8 runs with 1 to 24 heads side by side in
one (d, heads) product: the cost per head of each layout, and whether head 0's final weights are
bit-identical to those of the same head trained alone, as a (d, 1) vector (the layout of every
student since paper protocol version 3).

``--grid kd`` runs a sweep over KD knobs instead (5 KD weights x 3 temperatures at Fig. 2's overlap
4, ``--seeds`` seeds): one teacher and one no-KD student serve the 15 points of a seed.

``--chunk-sizes`` compares the numbers of chunk sizes 4 to 32 with those of 8 (points alone).

Run:  PYTHONPATH=. python benchmarks/dedup.py [--layouts] [--chunk-sizes]   (about three minutes on
two quiet cores)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import mfh_sim
from mfh_sim.experiments.paper import fig2_point
from mfh_sim.protocols.paper import METRIC_DTYPES


def load() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


#: ``--grid kd``: a sweep over KD knobs at Fig. 2's overlap 4, where one teacher and one no-KD
#: student serve all 15 points of a seed.
KD_GRID = dict(kd_weight=[0.0, 0.5, 1.0, 2.0, 4.0], temperature=[1.0, 2.0, 4.0])


def sweep(seeds: int, share: bool, grid: str = "fig2"):
    if grid == "kd":
        return mfh_sim.sweep(points=[fig2_point(4)], seeds=seeds, theory=False, share=share, **KD_GRID)
    return mfh_sim.sweep(points=[fig2_point(o) for o in range(11)], seeds=seeds, theory=False, share=share)


def layouts(chunk: int = 8, n: int = 200, d: int = 50, steps: int = 1000) -> None:
    import jax
    import jax.numpy as jnp

    from mfh_sim.losses import margin_gradient
    from mfh_sim.train import fit_linear, make_optimizer

    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    x = jax.random.normal(keys[0], (chunk, n, d))
    labels = (jax.random.normal(keys[1], (chunk, n, 1)) > 0).astype(jnp.float32)
    teacher = jax.random.normal(keys[2], (chunk, n, 1))
    start_w = 0.1 * jax.random.normal(keys[3], (chunk, d))

    def program(heads):
        def train(x, labels, teacher, start_w):
            # Head 0 without KD, the others with KD weights 1, 2, ...: each head's own loss.
            gradient = lambda m: margin_gradient(m, labels, teacher, kd_weight=jnp.arange(heads, dtype=jnp.float32))
            return fit_linear(x, jnp.stack([start_w] * heads, axis=1), jnp.zeros(heads), loss_gradient=gradient,
                              form="margin", optimizer=make_optimizer("sgd", 0.1), steps=steps).weights
        return jax.jit(jax.vmap(train))

    alone = np.asarray(program(1)(x, labels, teacher, start_w))
    print(f"student loop, {chunk} runs per chunk, {steps} steps, n {n}, d {d}:")
    for heads in (1, 2, 3, 4, 8, 12, 16, 24):
        run = program(heads)
        weights = np.asarray(jax.block_until_ready(run(x, labels, teacher, start_w)))
        start = time.perf_counter()
        for _ in range(3):
            jax.block_until_ready(run(x, labels, teacher, start_w))
        per_head = (time.perf_counter() - start) / 3 / chunk / heads
        same = np.array_equal(weights[..., 0], alone[..., 0])
        print(f"  {heads:2d} heads: {1e3 * per_head:.2f} ms per head per run; head 0 bit-identical to "
              f"the head alone: {same} ({load()})", flush=True)


def chunk_sizes() -> None:
    from mfh_sim import engine
    from mfh_sim.config import make_config
    from mfh_sim.protocols.paper import PAPER

    # Learning rate 30: a difference in a weight's last bit grows into other accuracies.
    configs = [make_config(**fig2_point(o), steps=60, n_test=200, learning_rate=30.0) for o in (0, 4)]
    seeds = np.arange(32)
    reference = engine.execute(PAPER, configs, seeds, share=False, chunk_size=8)
    print(f"chunk size against 8 ({len(configs)} points x {seeds.size} seeds, learning rate 30, points alone):")
    for size in (4, 10, 11, 16, 32):
        other = engine.execute(PAPER, configs, seeds, share=False, chunk_size=size)
        differ = {name: int(np.sum(~np.isclose(other[name], reference[name], rtol=0, atol=0, equal_nan=True)))
                  for name in ("teacher_acc", "no_kd_acc", "kd_acc")}
        print(f"  chunk size {size:2d}: accuracies that differ {differ}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of (without packs, with packs)")
    parser.add_argument("--grid", choices=("fig2", "kd"), default="fig2",
                        help="Fig. 2's 11 overlaps, or 5 KD weights x 3 temperatures at overlap 4")
    parser.add_argument("--layouts", action="store_true", help="also time the heads-per-product layouts")
    parser.add_argument("--chunk-sizes", action="store_true", help="also compare chunk sizes' numbers")
    args = parser.parse_args(argv)
    if args.layouts:
        layouts()
    if args.chunk_sizes:
        chunk_sizes()
    runs = (11 if args.grid == "fig2" else 15) * args.seeds
    for share in (False, True):  # compile both programs (and warm the caches) on a small sweep
        start = time.perf_counter()
        sweep(16, share, args.grid)
        print(f"compile and warm-up, share={share}: {time.perf_counter() - start:.1f} s ({load()})", flush=True)
    # Wall time, and this process's CPU time (less sensitive to other jobs on a shared machine).
    times: dict[bool, list[float]] = {False: [], True: []}
    cpu_times: dict[bool, list[float]] = {False: [], True: []}
    results = {}
    for _ in range(args.repeats):
        for share in (False, True):
            start, cpu = time.perf_counter(), time.process_time()
            results[share] = sweep(args.seeds, share, args.grid)
            times[share].append(time.perf_counter() - start)
            cpu_times[share].append(time.process_time() - cpu)
            label = "with packs (share=True) " if share else "points alone (share=False)"
            print(f"{runs:,} simulations ({3 * runs:,} training runs), {label}: {times[share][-1]:.1f} s, "
                  f"{runs / times[share][-1]:.0f} simulations/s, {cpu_times[share][-1]:.1f} CPU s ({load()})",
                  flush=True)
    identical = all(np.array_equal(getattr(results[False], name), getattr(results[True], name), equal_nan=True)
                    for name in METRIC_DTYPES)
    before, after = min(times[False]), min(times[True])
    cpu_before, cpu_after = min(cpu_times[False]), min(cpu_times[True])
    print(f"best of {args.repeats}: {before:.1f} s -> {after:.1f} s wall, {before / after:.2f}x faster; "
          f"{cpu_before:.1f} -> {cpu_after:.1f} CPU s, {cpu_before / cpu_after:.2f}x; "
          f"every metric bit-identical: {identical}")
    if not identical:
        raise SystemExit("the packed sweep's numbers differ from the points alone")


if __name__ == "__main__":
    main()
