"""The runner: many (point, seed) runs of any protocol as few compiled, vmapped, chunked calls.

:func:`run` is the one way every experiment runs (``simulate``, ``sweep``, ``table2``, ...): it
opens the results directory if there is one (:mod:`mfh_sim.store`: resume, more seeds), draws
the progress bar and calls :func:`execute`, the executor underneath.

:func:`execute` runs a :class:`~mfh_sim.protocols.Protocol` (the paper's, Table 2's, ...) over
points and seed indices; it imports no protocol.  Points are grouped by ``protocol.static_of``
(points that share shapes and program structure share one compiled program).  Inside a group,
runs are the rows of a flat (point x seed) batch: row ``r`` of a group is (its ``r // n_seeds``-th
point, seed column ``r % n_seeds``).  Every run is described by data (``protocol.inputs_of``)
and its seed, so the whole batch is one ``vmap``.

Three levels of cutting, none of which changes a single number:

* a **chunk** is what one compiled call computes: ``chunk_size`` runs per device (the last chunk
  of a block is padded with copies of its last real row), sized to the device's memory from
  ``protocol.bytes_per_run`` (:func:`default_chunk_size`);
* with several devices, one call computes ``chunk_size`` runs on *each* device: the chunk is
  sharded over a 1-D :class:`jax.sharding.Mesh` with ``shard_map`` (axis ``"runs"``), so each
  device runs exactly the single-device program on its own rows; with several hosts
  (``jax.distributed.initialize()``) the mesh spans every host's devices;
* a **block** is a run of a group's missing rows, a whole number of chunks long, and the unit
  of persistence: ``execute(..., on_block=...)`` hands each finished block over (in the calling
  thread) and ``execute(..., completed=...)`` skips runs that are already known.

Keys come from identity, not position, so a result does not change when a sweep is chunked,
reordered, extended, sharded or resumed: run (point p, seed s) takes
``fold_in(fold_in(PRNGKey(root_seed), protocol.identity_of(p)), s)``, derived inside the
compiled call from each row's (identity, seed).  (The paper's protocol makes the identity 0 by
default, so every point shares *common random numbers*; see
:func:`mfh_sim.protocols.paper.paper_protocol`.)

On a CPU, XLA runs one vmapped computation on one core, so a small pool of threads keeps one
chunk in flight per core; on an accelerator two threads overlap one chunk's host transfer with
the next one's computation.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim._version import versions
from mfh_sim.progress import ProgressBar

# Only the interface: the engine runs any protocol and imports none.
from mfh_sim.protocols import Protocol, as_metric_dict, metric_specs
from mfh_sim.store import ResultStore
from mfh_sim.validation import require_root_seed, require_seeds

#: Runs per chunk on a CPU: small enough that a chunk's training data (8 x 60 KB at the paper's
#: dims) stays in a core's L2 cache.  Measured (benchmarks/RESULTS.md): on the 2-core reference
#: machine 4 to 12 runs per chunk are fastest, 16 and more about 25% slower.
CPU_CHUNK = 8
#: Runs per chunk per device on an accelerator whose memory cannot be queried.
ACCELERATOR_CHUNK = 8192
#: Upper bound on runs per chunk per device on an accelerator (beyond it throughput is flat and
#: a killed sweep loses more work).
ACCELERATOR_CHUNK_CAP = 65536
#: Share of an accelerator's memory that the chunks in flight may use together.
MEMORY_FRACTION = 0.6
#: Runs per block (the unit written to disk) on a CPU; a block is a whole number of chunks.  At
#: a few hundred runs per second this loses at most seconds of work when a sweep is killed.
CPU_BLOCK_RUNS = 2048
#: Chunks in flight on an accelerator: one computing while the previous one is copied back.
ACCELERATOR_WORKERS = 2

# ----------------------------------------------------------------------------------- sizing
def device_memory_bytes(device: jax.Device | None = None) -> int | None:
    """Memory available to XLA on ``device`` in bytes, or None where it cannot be queried (CPU)."""
    device = device if device is not None else jax.local_devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # some backends do not implement memory_stats
        return None
    if not stats:
        return None
    limit = stats.get("bytes_limit") or stats.get("bytes_reservable_limit")
    return int(limit) if limit else None


def default_chunk_size(bytes_per_run: int | None = None, device: jax.Device | None = None,
                       in_flight: int = ACCELERATOR_WORKERS) -> int:
    """Runs per chunk per device, for runs that need ``bytes_per_run`` bytes each.

    CPU: :data:`CPU_CHUNK` (cache-sized).  Accelerator: the largest multiple of 256 such that
    ``in_flight`` chunks use at most :data:`MEMORY_FRACTION` of the device's memory,
    ``in_flight * chunk * bytes_per_run <= MEMORY_FRACTION * memory``, capped at
    :data:`ACCELERATOR_CHUNK_CAP`; :data:`ACCELERATOR_CHUNK` where the memory cannot be queried
    or ``bytes_per_run`` is None.
    """
    device = device if device is not None else jax.local_devices()[0]
    if device.platform == "cpu":
        return CPU_CHUNK
    memory = device_memory_bytes(device)
    if memory is None or bytes_per_run is None:
        return ACCELERATOR_CHUNK
    fits = int(MEMORY_FRACTION * memory / max(in_flight, 1) / max(int(bytes_per_run), 1))
    return int(min(ACCELERATOR_CHUNK_CAP, max(256, fits // 256 * 256)))


def default_workers(devices: Sequence[jax.Device] | None = None) -> int:
    """Chunks in flight: one per CPU core shared among the CPU devices; two on accelerators."""
    devices = list(devices) if devices is not None else jax.local_devices()
    if devices[0].platform != "cpu":
        return ACCELERATOR_WORKERS
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        cores = os.cpu_count() or 1
    local = [d for d in devices if d.process_index == jax.process_index()]
    return max(1, cores // max(len(local), 1))


# ------------------------------------------------------------------------------------- keys
@jax.jit
def _seed_keys(root: jax.Array, identity: jax.Array, seeds: jax.Array) -> jax.Array:
    point_key = jax.random.fold_in(root, identity)
    return jax.vmap(lambda s: jax.random.fold_in(point_key, s))(seeds)


def run_keys(identity: int, seeds: np.ndarray, root_seed: int) -> np.ndarray:
    """Raw keys (len(seeds), 2) uint32: ``fold_in(fold_in(PRNGKey(root_seed), identity), seed)``
    for each seed index, the keys :func:`execute` gives the runs of a point of this identity."""
    root = jax.random.PRNGKey(root_seed)
    return np.asarray(_seed_keys(root, np.uint32(identity), np.asarray(seeds, np.uint32)))


#: (protocol, static part, devices, chunk rows) of the programs that have run in this process.
_WARM_PROGRAMS: set = set()


# ---------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class Group:
    """Packs of points sharing one compiled program.

    A *pack* is ``size`` points run together by one program call per seed: points whose runs
    share trainings (``protocol.share_of``, run by ``protocol.make_pack_run``), or, with
    ``size`` 1, one point alone (``protocol.make_run``).  A pack with fewer points than ``size``
    repeats its last point; ``counts`` says how many are real.
    """

    static: Hashable
    size: int  # points per pack
    layout: Hashable  # protocol.pack_layout of every pack of the group (None for packs of one)
    members: np.ndarray  # (packs, size) int64, indices of each pack's points in the sweep
    counts: np.ndarray  # (packs,) int64, real points of each pack (the rest repeat its last)
    identities: np.ndarray  # (packs,) uint32: what each pack's keys fold in
    inputs: Any  # the packs' traced inputs, numpy arrays with leading (packs, size) axes

    def rows(self, n_seeds: int) -> int:
        return self.members.shape[0] * n_seeds

    def real(self) -> np.ndarray:
        """(packs, size) bool: which entries of ``members`` are real points (not repeats)."""
        return np.arange(self.size)[None, :] < self.counts[:, None]


#: Most points in one pack: past a few dozen a pack saves little more (its runs' teachers and KD
#: students are trained one by one anyway) and each size is a program of its own.
MAX_PACK = 64


def plan_groups(protocol: Protocol, points: Sequence[Any], share: bool = True) -> list[Group]:
    """Points cut into packs and the packs grouped into programs, deterministically.

    Points are grouped by ``protocol.static_of`` in order of first appearance.  With ``share``
    (and a protocol with ``make_pack_run``), points of one program with equal ``identity_of``
    and equal, not-None ``share_of`` form a family, cut into packs of at most :data:`MAX_PACK`
    points of (nearly) equal size; packs of one static part, size and ``protocol.pack_layout``
    share a program.  Otherwise every point is a pack of its own.
    """
    packing = share and protocol.make_pack_run is not None
    families: dict[Hashable, list[int]] = {}
    for index, point in enumerate(points):
        static, shared = protocol.static_of(point), protocol.share_of(point) if packing else None
        key = (static, index) if shared is None else (static, protocol.identity_of(point), shared)
        families.setdefault(key, []).append(index)
    by_program: dict[tuple[Hashable, int, Hashable], list[list[int]]] = {}
    for (static, *_), family in families.items():
        size = math.ceil(len(family) / math.ceil(len(family) / MAX_PACK))
        for start in range(0, len(family), size):
            pack = family[start: start + size]
            padded = pack + [pack[-1]] * (size - len(pack))
            layout = protocol.pack_layout([points[i] for i in padded]) if size > 1 else None
            by_program.setdefault((static, size, layout), []).append(pack)
    groups = []
    for (static, size, layout), packs in by_program.items():
        members = np.asarray([pack + [pack[-1]] * (size - len(pack)) for pack in packs], dtype=np.int64)
        stacked = [jax.tree.map(lambda *a: np.stack(a), *[protocol.inputs_of(points[i]) for i in row])
                   for row in members]
        groups.append(Group(
            static=static, size=size, layout=layout, members=members,
            counts=np.asarray([len(pack) for pack in packs], dtype=np.int64),
            identities=np.asarray([protocol.identity_of(points[pack[0]]) for pack in packs], dtype=np.uint32),
            inputs=jax.tree.map(lambda *a: np.stack(a), *stacked),
        ))
    return groups


class Block(NamedTuple):
    """The unit of persistence: ``stop - start`` runs (point ``points[i]``, seed column
    ``columns[i]``, which is seed index ``seeds[i]``) of group ``group``; ``metrics`` maps each
    metric to (runs, *shape).  ``start`` is the block's first row times the group's pack size
    (with packs of one point: its rows ``start:stop``, unless the sweep already had some runs of
    that range), so the ranges of a group's blocks never overlap.  Blocks can be handed back as
    ``completed``."""

    group: int
    start: int
    stop: int
    points: np.ndarray
    columns: np.ndarray
    seeds: np.ndarray
    metrics: dict[str, np.ndarray]


def row_cells(group: Group, n_seeds: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sweep point index, seed column) of each of ``group``'s rows ``rows``: arrays of shape
    (rows, size), the pack's points (repeats included, see :meth:`Group.real`)."""
    rows = np.asarray(rows, dtype=np.int64)
    return group.members[rows // n_seeds], np.broadcast_to((rows % n_seeds)[:, None], (rows.size, group.size))


# --------------------------------------------------------------------------------- devices
def resolve_devices(devices: Sequence[jax.Device] | int | None = None) -> list[jax.Device]:
    """The devices a sweep runs on.

    ``None``: every device of the default backend (with ``jax.distributed.initialize()``, those
    of every host).  An int ``k``: the first ``k`` of them.  A sequence: those devices.
    """
    available = jax.devices()
    if devices is None:
        return list(available)
    if isinstance(devices, (bool, np.bool_)):
        raise ValueError(f"devices={devices!r} is not allowed: give None, a count >= 1 or a list of devices")
    if isinstance(devices, (int, np.integer)):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices={devices!r} is not allowed: give a count from 1 to {len(available)} "
                f"(the {jax.default_backend()} devices visible to JAX)"
            )
        return list(available[: int(devices)])
    chosen = list(devices)
    if not chosen or not all(isinstance(d, jax.Device) for d in chosen):
        raise ValueError(f"devices={devices!r} is not allowed: give None, a count >= 1 or a list of jax devices")
    if len({d.platform for d in chosen}) != 1:
        raise ValueError(f"devices={devices!r} is not allowed: all devices must be of one platform")
    return chosen


@functools.cache
def _chunk_program(protocol: Protocol, static: Hashable, devices: tuple[jax.Device, ...], size: int = 1,
                   layout: Hashable = None) -> Callable:
    """Compiled ``(root, identity, seed, inputs) -> metrics`` over a chunk of rows.

    Every argument but ``root`` (a raw key, replicated) has a leading row axis.  A row is one
    run (``size`` 1, ``protocol.make_run``) or one pack of ``size`` points for one seed
    (``protocol.make_pack_run`` with the packs' ``layout``; inputs and metrics then have a (size,)
    axis after the rows).  On
    one device it is ``jit(vmap(run))``; on several it is the same function inside ``shard_map``
    over a 1-D mesh, so each device runs the single-device program on its own slice of rows.
    """
    run = protocol.make_run(static) if size == 1 else protocol.make_pack_run(static, size, layout)
    # XLA on a CPU reduces a vmapped batch of more than about ten runs in another order (the sums
    # over samples round differently), so a wider chunk would change last bits: there a chunk
    # runs as vmaps of CPU_CHUNK rows, one after another, and every chunk size gives the same
    # numbers. Accelerators keep one wide vmap: that is their speed.
    batch = CPU_CHUNK if devices[0].platform == "cpu" else None

    def rows(root, identity, seed, inputs):
        def one(identity, seed, inputs):
            key = jax.random.fold_in(jax.random.fold_in(root, identity), seed)
            return as_metric_dict(run(key, inputs))

        n_rows = identity.shape[0]
        if batch is None or n_rows <= batch:
            return jax.vmap(one)(identity, seed, inputs)
        # Pad to whole batches with copies of the last row (sliced off below): every vmap XLA
        # sees has exactly CPU_CHUNK rows.
        padded = -(-n_rows // batch) * batch
        pad = lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], padded - n_rows, axis=0)]).reshape(
            (padded // batch, batch) + a.shape[1:])
        out = jax.lax.map(lambda xs: jax.vmap(one)(*xs), jax.tree.map(pad, (identity, seed, inputs)))
        return jax.tree.map(lambda a: a.reshape((padded,) + a.shape[2:])[:n_rows], out)

    if len(devices) == 1:
        return jax.jit(rows)
    from jax.sharding import Mesh, PartitionSpec

    mesh = Mesh(np.asarray(devices), ("runs",))
    sharded = jax.shard_map(
        rows, mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec("runs"), PartitionSpec("runs"), PartitionSpec("runs")),
        out_specs=PartitionSpec("runs"),
        # Rows are independent: no collective, so per-device varying-ness need not be tracked
        # (the training loops' carries start replicated and become per-device).
        check_vma=False,
    )
    return jax.jit(sharded)


def _place(array: np.ndarray, devices: tuple[jax.Device, ...]):
    """Put a host array with a leading row axis onto ``devices`` (sharded along rows)."""
    if len(devices) == 1:
        return jax.device_put(array, devices[0])
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    spec = PartitionSpec("runs", *([None] * (array.ndim - 1)))
    sharding = NamedSharding(Mesh(np.asarray(devices), ("runs",)), spec)
    # Works with one process and with many: each process supplies the shards it can address.
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def _replicate(array: np.ndarray, devices: tuple[jax.Device, ...]):
    if len(devices) == 1:
        return jax.device_put(array, devices[0])
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    sharding = NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec())
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def _to_host(array: jax.Array) -> np.ndarray:
    if getattr(array, "is_fully_addressable", True):
        return np.asarray(array)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


# ---------------------------------------------------------------------------------- execute
def check_settings(**settings: Any) -> None:
    """Refuse an execution setting (``chunk_size``, ``workers``, ``block_runs``) that is neither
    None nor an integer >= 1, naming it."""
    for name, value in settings.items():
        if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
                                  or value < 1):
            raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= 1")


class _Chunk(NamedTuple):
    group: int
    block: int  # index into the list of planned blocks
    rows: np.ndarray  # the group's rows it computes (the call pads them to its compiled size)


def execute(
    protocol: Protocol,
    points: Sequence[Any],
    seeds: np.ndarray,
    root_seed: int = 0,
    *,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    devices: Sequence[jax.Device] | int | None = None,
    block_runs: int | None = None,
    completed: Iterable[Block] = (),
    on_block: Callable[[Block], None] | None = None,
    share: bool = True,
) -> dict[str, np.ndarray]:
    """Run ``protocol`` at every point for every seed index.

    Returns one array per metric of shape (len(points), len(seeds), *per-run shape), with the
    metric's dtype (``protocol.metrics``).

    Args:
        protocol: the experiment (see :mod:`mfh_sim.protocols`).
        points, seeds, root_seed: what to run (seed indices in [0, 2**32), root in [0, 2**32)).
        chunk_size: rows per compiled call per device, a row being one run or one pack of points
            for one seed (see :func:`plan_groups`; default :func:`default_chunk_size`).  On a CPU
            a chunk wider than :data:`CPU_CHUNK` runs as vmaps of that many rows, so the chunk
            size never changes a number there.
        workers: chunks in flight (default :func:`default_workers`).
        progress: ``progress(n)`` is called with the number of runs each chunk finished.
        devices: see :func:`resolve_devices`; with several, each chunk is sharded over them.
        block_runs: rows per block, the unit handed to ``on_block`` (default: a whole number of
            chunks of about :data:`CPU_BLOCK_RUNS` runs on CPU, one chunk on accelerators).
        completed: runs already computed, each an object with ``points`` (indices into
            ``points``), ``columns`` (indices into ``seeds``) and ``metrics`` (for example
            :meth:`mfh_sim.store.ResultStore.completed`); they are filled in, not recomputed.
        on_block: called in the calling thread with each newly finished :class:`Block`.
        share: train what points share once (packs, see :func:`plan_groups`; the default);
            False runs every point alone.  The numbers are the same either way, bit for bit.
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    chosen = tuple(resolve_devices(devices))
    n_points, n_seeds = len(points), len(seeds)
    if not isinstance(share, (bool, np.bool_)):
        raise ValueError(f"share={share!r} is not allowed: use True or False")
    groups = plan_groups(protocol, points, share=bool(share))
    specs = metric_specs(protocol, [group.static for group in groups])
    out = {name: np.empty((n_points, n_seeds) + spec.shape, dtype=spec.dtype) for name, spec in specs.items()}
    seeds_u32 = seeds.astype(np.uint32)
    root = np.asarray(jax.random.PRNGKey(root_seed))

    known = np.zeros((n_points, n_seeds), dtype=bool)  # runs handed in as completed
    for block in completed:
        known_points, known_columns = np.asarray(block.points, np.int64), np.asarray(block.columns, np.int64)
        for name in specs:
            out[name][known_points, known_columns] = block.metrics[name]
        known[known_points, known_columns] = True
    # A row (a pack for one seed) is done when all its real points are known for that seed.
    done = []
    for group in groups:
        rows = np.arange(group.rows(n_seeds))
        cells, columns = row_cells(group, n_seeds, rows)
        done.append(np.all(known[cells, columns] | ~group.real()[rows // n_seeds], axis=1))

    check_settings(chunk_size=chunk_size, workers=workers, block_runs=block_runs)
    local_device = next((d for d in chosen if d.process_index == jax.process_index()), chosen[0])
    sizes = []
    for group in groups:
        sizes.append(int(chunk_size) if chunk_size is not None
                     else default_chunk_size(protocol.bytes_per_run(group.static) * group.size, local_device))
    workers = int(workers) if workers else default_workers(chosen)
    if jax.process_count() > 1:
        # Every host must issue the same sharded calls in the same order: one chunk at a time.
        workers = 1
    if not all(protocol.runs_concurrently(group.static) for group in groups):
        workers = 1  # see Protocol.runs_concurrently: concurrent executions would deadlock
    # Blocks: the missing rows of each group, in order, cut into whole numbers of chunks.  (The
    # missing rows need not be contiguous: a directory extended with more seeds misses some seeds
    # of every point.)
    blocks: list[tuple[int, np.ndarray]] = []
    for index, group in enumerate(groups):
        call_rows = sizes[index] * len(chosen)
        if block_runs is not None:
            per_block = int(block_runs)
        elif chosen[0].platform == "cpu":
            per_block = call_rows * max(1, math.ceil(CPU_BLOCK_RUNS / (call_rows * group.size)))
        else:
            per_block = call_rows
        missing = np.flatnonzero(~done[index])
        for block_start in range(0, missing.size, per_block):
            blocks.append((index, missing[block_start: block_start + per_block]))

    def new_cells(group: Group, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The runs that ``rows`` of ``group`` add: (mask over (rows, size), points, columns)."""
        cells, columns = row_cells(group, n_seeds, rows)
        fresh = group.real()[rows // n_seeds] & ~known[cells, columns]
        return fresh, cells[fresh], columns[fresh]

    def chunks() -> Iterator[_Chunk]:
        for block_index, (group_index, rows) in enumerate(blocks):
            call_rows = sizes[group_index] * len(chosen)
            for offset in range(0, rows.size, call_rows):
                yield _Chunk(group_index, block_index, rows[offset: offset + call_rows])

    def compute(chunk: _Chunk) -> dict[str, np.ndarray]:
        group = groups[chunk.group]
        call_rows = sizes[chunk.group] * len(chosen)
        # Pad with copies of the last real row: every call has the compiled shape.
        rows = np.concatenate([chunk.rows, np.full(call_rows - chunk.rows.size, chunk.rows[-1])])
        pack, columns = rows // n_seeds, rows % n_seeds  # index into the group's tables
        inputs = group.inputs if group.size > 1 else jax.tree.map(lambda a: a[:, 0], group.inputs)
        program = _chunk_program(protocol, group.static, chosen, group.size, group.layout)
        metrics = program(
            _replicate(root, chosen),
            _place(group.identities[pack], chosen),
            _place(seeds_u32[columns], chosen),
            jax.tree.map(lambda a: _place(a[pack], chosen), inputs),
        )
        # Per-run metrics as (rows, size, *shape) whatever the pack size.
        return {name: _to_host(metrics[name])[: chunk.rows.size].reshape((chunk.rows.size, group.size) + spec.shape)
                for name, spec in specs.items()}

    remaining = [rows.size for _, rows in blocks]

    def finish(chunk: _Chunk, metrics: dict[str, np.ndarray]) -> None:
        fresh, cells, columns = new_cells(groups[chunk.group], chunk.rows)
        for name in specs:
            out[name][cells, columns] = metrics[name][fresh]
        if progress is not None:
            progress(int(fresh.sum()))
        remaining[chunk.block] -= chunk.rows.size
        if remaining[chunk.block] == 0 and on_block is not None:
            group_index, rows = blocks[chunk.block]
            _, cells, columns = new_cells(groups[group_index], rows)
            # Run indices row * size + slot: ranges of later blocks start past this one's.
            start = int(rows[0]) * groups[group_index].size
            on_block(Block(group_index, start, start + cells.size, cells, columns, seeds[columns],
                           {name: out[name][cells, columns].copy() for name in specs}))

    # Compile each program in the calling thread (its first chunk) before fanning out, so threads
    # never compile the same program concurrently; a program already run in this process (same
    # static spec, pack size, devices and chunk shape) goes straight to the pool.  Chunks are
    # created lazily: memory holds only the chunks in flight, whatever the size of the sweep.
    in_flight: dict[Future, _Chunk] = {}
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for chunk in chunks():
            group = groups[chunk.group]
            program_key = (protocol, group.static, group.size, group.layout, chosen, sizes[chunk.group])
            if pool is None or program_key not in _WARM_PROGRAMS:
                finish(chunk, compute(chunk))
                _WARM_PROGRAMS.add(program_key)
                continue
            while len(in_flight) >= 2 * workers:
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(in_flight.pop(future), future.result())
            in_flight[pool.submit(compute, chunk)] = chunk
        while in_flight:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                finish(in_flight.pop(future), future.result())
    finally:
        if pool is not None:
            for future in in_flight:
                future.cancel()
            pool.shutdown(wait=True)
    return out


# -------------------------------------------------------------------------------------- run
class Outcome(NamedTuple):
    """What :func:`run` returns: ``arrays`` (one per metric, (points, seeds, *per-run shape)) and
    the open results directory (``store``, a :class:`mfh_sim.store.ResultStore`, or None)."""

    arrays: dict[str, np.ndarray]
    store: ResultStore | None


def run(
    protocol: Protocol,
    points: Sequence[Any],
    seeds: int | Iterable[int],
    *,
    root_seed: int = 0,
    grid: Sequence[dict[str, Any]] | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = False,
    label: str = "runs",
    devices: Sequence[jax.Device] | int | None = None,
    chunk_size: int | None = None,
    workers: int | None = None,
    block_runs: int | None = None,
    share: bool = True,
) -> Outcome:
    """Run ``protocol`` at every point for every seed: the one runner of every experiment.

    Args:
        protocol: any :class:`~mfh_sim.protocols.Protocol`; points: its points.
        seeds: a count (>= 1) or distinct seed indices in [0, 2**32); root_seed: in [0, 2**32).
        grid: one dict per point, the keyword values that define it (recorded in the results
            directory's manifest; default: empty dicts).
        out: a results directory (:mod:`mfh_sim.store`): a manifest, then each finished block
            written atomically with its checksum.  Calling again with the same arguments computes
            only what is missing (an interrupted run resumes; more seeds run only the new ones)
            and returns the same numbers as one uninterrupted call; a directory holding another
            sweep is refused (:class:`mfh_sim.store.ResultsMismatchError`, a ``ValueError``).
        resume: with ``out``, reuse the runs already there (default); False refuses a directory
            that already holds this sweep.
        progress: draw a progress bar (``label``: what it counts) with an ETA on stderr.
        devices, chunk_size, workers, block_runs, share: see :func:`execute`.
    Every argument is checked before anything is created or computed.  Returns an
    :class:`Outcome`; build the protocol's result from it (``protocol.result``).
    """
    seeds = require_seeds(seeds)
    root_seed = require_root_seed(root_seed)
    if seeds.size == 1:
        warnings.warn("seeds=1: one seed gives a mean but no standard deviation or interval (they print as "
                      "n/a); give seeds >= 2 for an interval", UserWarning, stacklevel=3)
    check_settings(chunk_size=chunk_size, workers=workers, block_runs=block_runs)
    resolve_devices(devices)
    for name, flag in (("resume", resume), ("progress", progress), ("share", share)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name}={flag!r} is not allowed: use True or False")
    if not len(points):
        raise ValueError("points=[] is not allowed: give at least one point")
    store, known = None, []
    if out is not None:
        grid = list(grid) if grid is not None else [{} for _ in points]
        store = ResultStore.open(out, protocol, points, grid, seeds, root_seed, resume=bool(resume),
                                 versions=versions())
        known = store.completed(seeds)
    bar = ProgressBar(len(points) * len(seeds) - sum(len(k.points) for k in known), label=label,
                      enabled=bool(progress))
    try:
        arrays = execute(protocol, points, seeds, root_seed, chunk_size=chunk_size, workers=workers,
                         progress=bar.update, devices=devices, block_runs=block_runs, completed=known,
                         on_block=store.write if store is not None else None, share=share)
    finally:
        bar.close()
    return Outcome(arrays, store)
