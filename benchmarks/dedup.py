"""Shared trainings run once: the 33,000-run Fig. 2 sweep with and without packs, in one process.

The sweep: 11 overlaps (o = 0..10) x 1,000 seeds of the paper's protocol through
``mfh_sim.sweep(points=..., seeds=1000, theory=False)``.  With common random numbers the 11 points
share, for each seed, the data, x^b and the no-KD student, so the engine runs them as one pack
(``share=True``, the default): 11 teachers, one no-KD student and 11 KD students trained two to a
product, 6 student fits where the points alone (``share=False``) need 11.  Both ways give the same
numbers bit for bit; this script checks that on every metric array of the whole sweep.

Each way is compiled first on a small sweep (the same programs), then timed once compiled, the two
ways alternating (``--repeats`` rounds), each time printed with the load average beside it.

``--layouts`` also times the students' training loop (:func:`mfh_sim.train.fit_linear`, margin
form, 1,000 steps, n_train 200, d 50) for a chunk of 8 runs of a Fig. 2 pack's 12 students,
trained in groups of 1 to 12 heads side by side in one (d, heads) product: the cost of each
layout, and how many heads end bit-identical to the heads trained alone, as (d, 1) vectors (the
layout of every student since paper protocol version 3), and the same descent with each product
written as an elementwise multiply and a sum (no dot), one head and all 12 heads at a time.

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


def layouts(chunk: int = 8, n: int = 200, d: int = 50, steps: int = 1000, heads: int = 12,
            rounds: int = 3) -> None:
    """``heads`` students on one x^b (a Fig. 2 pack: the no-KD student and 11 KD students), trained
    in groups of ``width`` heads, one (d, width) product per group, the groups one after another
    (``lax.map``), for a chunk of ``chunk`` runs (``vmap``): the cost of each layout, timed in
    ``rounds`` interleaved rounds, and which heads end bit-identical to width 1 (every head alone,
    the protocol's layout)."""
    import jax
    import jax.numpy as jnp

    from mfh_sim.losses import margin_gradient
    from mfh_sim.train import fit_linear, make_optimizer

    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    x = jax.random.normal(keys[0], (chunk, n, d))
    labels = (jax.random.normal(keys[1], (chunk, n, 1)) > 0).astype(jnp.float32)
    teachers = jax.random.normal(keys[2], (chunk, n, heads))
    start_w = 0.1 * jax.random.normal(keys[3], (chunk, d))
    # Head h distils from teacher h with KD weight h / 4 (head 0: no KD): each head its own loss.
    kd_weights = jnp.arange(heads, dtype=jnp.float32) / 4

    def program(width):
        groups = heads // width

        def group(x, labels, start_w, margins, kd_weight):
            gradient = lambda m: margin_gradient(m, labels, margins, kd_weight=kd_weight)
            return fit_linear(x, jnp.stack([start_w] * width, axis=1), jnp.zeros(width), loss_gradient=gradient,
                              form="margin", optimizer=make_optimizer("sgd", 0.1), steps=steps).weights

        def train(x, labels, teachers, start_w):
            margins = jnp.moveaxis(teachers.reshape(n, groups, width), 1, 0)
            out = jax.lax.map(lambda g: group(x, labels, start_w, *g), (margins, kd_weights.reshape(groups, width)))
            return jnp.moveaxis(out, 0, 1).reshape(d, heads)

        return jax.jit(jax.vmap(train))

    def summed_program(width):
        """The same descent with each product written as a multiply and a sum (no dot): every head's
        sums then run in one fixed order, whatever its neighbours, a layout XLA might fuse."""
        groups = heads // width

        def group(x, labels, start_w, margins, kd_weight):
            def step(params, _):
                w, b = params
                m = jnp.sum(x[:, :, None] * w[None], axis=1) + b
                g = margin_gradient(m, labels, margins, kd_weight=kd_weight)
                return (w - 0.1 * (2.0 * jnp.sum(x[:, :, None] * g[:, None, :], axis=0)),
                        b - 0.1 * (2.0 * jnp.sum(g, axis=0))), None

            (w, _), _ = jax.lax.scan(step, (jnp.stack([start_w] * width, axis=1), jnp.zeros(width)), None,
                                     length=steps)
            return w

        def train(x, labels, teachers, start_w):
            margins = jnp.moveaxis(teachers.reshape(n, groups, width), 1, 0)
            out = jax.lax.map(lambda g: group(x, labels, start_w, *g), (margins, kd_weights.reshape(groups, width)))
            return jnp.moveaxis(out, 0, 1).reshape(d, heads)

        return jax.jit(jax.vmap(train))

    widths = [w for w in (1, 2, 3, 4, 6, 12, 16, 24) if heads % w == 0]
    programs = {w: program(w) for w in widths}
    weights = {w: np.asarray(f(x, labels, teachers, start_w)) for w, f in programs.items()}
    times: dict[int, list[float]] = {w: [] for w in widths}
    for _ in range(rounds):
        for w, f in programs.items():
            start = time.perf_counter()
            jax.block_until_ready(f(x, labels, teachers, start_w))
            times[w].append((time.perf_counter() - start) / chunk)
    print(f"{heads} student heads on one x^b, {chunk} runs per chunk, {steps} steps, n {n}, d {d} ({load()}):")
    for w in widths:
        same = sum(np.array_equal(weights[w][..., h], weights[1][..., h]) for h in range(heads))
        print(f"  groups of {w:2d} heads: {1e3 * min(times[w]):6.2f} ms per run (best of {rounds}); "
              f"{same} of {heads} heads bit-identical to width 1", flush=True)
    # Products as a multiply and a sum: so slow that one timed round (after the compiling call) says enough.
    summed = {}
    for w in (1, heads):
        f = summed_program(w)
        jax.block_until_ready(f(x, labels, teachers, start_w))
        start = time.perf_counter()
        summed[w] = np.asarray(f(x, labels, teachers, start_w))
        elapsed = (time.perf_counter() - start) / chunk
        same = sum(np.array_equal(summed[w][..., h], summed[1][..., h]) for h in range(heads))
        print(f"  groups of {w:2d} heads, products as multiply and sum: {1e3 * elapsed:8.2f} ms per run; "
              f"{same} of {heads} heads bit-identical to its width 1, largest difference from the dot "
              f"layout {np.abs(summed[w] - weights[1]).max():.1e} ({load()})", flush=True)


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
