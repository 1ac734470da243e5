"""The executor: many (config, seed) runs as few compiled, vmapped, chunked computations.

Runs are grouped by their :class:`~mfh_sim.config.StaticSpec` (configs that share shapes and
program structure share one compiled program); inside a group every run is a row of a batch,
described by data (its layout and knobs) and its key.  The batch is cut into chunks of a fixed
size (the last one padded), and chunks are executed by a small pool of threads: XLA runs one
vmapped computation on one CPU core, so two chunks in flight use two cores.

Keys come from identity, not position, so a result does not change when a sweep is chunked,
reordered, extended or split across calls.  By default grid points use *common random numbers*:
run (config c, seed s) takes ``fold_in(fold_in(PRNGKey(root_seed), 0), s)`` whatever c is, so all
points of a sweep see the same hyperplanes, samples and initial weights for a given seed (as the
paper's Fig. 2, whose no-KD student is the same at every gamma).  Differences between grid points
are then paired and much less noisy.  With ``common_random_numbers=False`` the key is
``fold_in(fold_in(PRNGKey(root_seed), c.identity()), s)``: independent draws for every point.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim.config import SimConfig, StaticSpec
from mfh_sim.protocol import Metrics, inputs_of, make_run

#: Runs per chunk on a CPU: small enough that a chunk's data stays in cache (see benchmarks/).
CPU_CHUNK = 24
#: Runs per chunk on an accelerator.
ACCELERATOR_CHUNK = 8192


@functools.lru_cache(maxsize=None)
def compiled_run(static: StaticSpec) -> Callable:
    """``jit(vmap(run))`` for one static spec, cached for the life of the process."""
    return jax.jit(jax.vmap(make_run(static)))


def default_chunk_size() -> int:
    return CPU_CHUNK if jax.default_backend() == "cpu" else ACCELERATOR_CHUNK


def default_workers() -> int:
    if jax.default_backend() != "cpu":
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


@jax.jit
def _seed_keys(root: jax.Array, identity: jax.Array, seeds: jax.Array) -> jax.Array:
    point_key = jax.random.fold_in(root, identity)
    return jax.vmap(lambda s: jax.random.fold_in(point_key, s))(seeds)


def run_keys(
    config: SimConfig, seeds: np.ndarray, root_seed: int, common_random_numbers: bool = True
) -> np.ndarray:
    """Raw keys (len(seeds), 2) uint32 of the runs of ``config`` for these seed indices."""
    root = jax.random.PRNGKey(root_seed)
    identity = 0 if common_random_numbers else config.identity()
    return np.asarray(_seed_keys(root, np.uint32(identity), np.asarray(seeds, np.uint32)))


def execute(
    configs: Sequence[SimConfig],
    seeds: np.ndarray,
    root_seed: int = 0,
    *,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    common_random_numbers: bool = True,
) -> dict[str, np.ndarray]:
    """Run every config for every seed index; arrays of shape (len(configs), len(seeds)).

    ``progress(n)`` is called with the number of runs finished by each chunk.
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    chunk_size = chunk_size or default_chunk_size()
    workers = workers or default_workers()
    n_points, n_seeds = len(configs), len(seeds)
    out = {name: np.empty((n_points, n_seeds), dtype=np.float32 if "acc" in name else bool)
           for name in Metrics._fields}

    groups: dict[StaticSpec, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config.static_signature(), []).append(index)

    jobs = []
    for static, members in groups.items():
        per_point = [inputs_of(configs[i]) for i in members]
        layouts = jax.tree.map(lambda *a: np.stack(a), *[p[0] for p in per_point])
        knobs = jax.tree.map(lambda *a: np.stack(a), *[p[1] for p in per_point])
        keys = np.stack([run_keys(configs[i], seeds, root_seed, common_random_numbers) for i in members])  # (P, S, 2)
        rows = np.arange(len(members) * n_seeds)
        point_of_row, seed_of_row = rows // n_seeds, rows % n_seeds
        for start in range(0, rows.size, chunk_size):
            chunk = rows[start : start + chunk_size]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], chunk_size - chunk.size)])
            points, seed_idx = point_of_row[padded], seed_of_row[padded]
            jobs.append((
                static,
                keys[points, seed_idx],
                jax.tree.map(lambda a: a[points], layouts),
                jax.tree.map(lambda a: a[points], knobs),
                np.asarray(members)[point_of_row[chunk]],
                seed_of_row[chunk],
            ))

    def work(job):
        static, keys, layouts, knobs, point_ids, seed_ids = job
        metrics = jax.device_get(compiled_run(static)(keys, layouts, knobs))
        count = point_ids.size
        for name in Metrics._fields:
            out[name][point_ids, seed_ids] = np.asarray(getattr(metrics, name))[:count]
        if progress is not None:
            progress(count)

    # Compile each program once before fanning out, so threads do not compile it concurrently.
    first_of_group = {}
    for job in jobs:
        first_of_group.setdefault(job[0], job)
    for job in first_of_group.values():
        work(job)
    rest = [job for job in jobs if all(job is not first for first in first_of_group.values())]
    if workers == 1 or len(rest) <= 1:
        for job in rest:
            work(job)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, rest))
    return out
