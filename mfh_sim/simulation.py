"""The user-facing entry points: :func:`simulate` (one Venn diagram) and :func:`sweep` (a grid).

Both validate every keyword through :func:`mfh_sim.config.make_config` before anything is traced,
run through the one runner (:func:`mfh_sim.engine.run`) and attach the theory's prediction for
each config.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mfh_sim._version import versions
from mfh_sim.config import SimConfig, make_config
from mfh_sim.engine import run
from mfh_sim.protocols.paper import paper_protocol
from mfh_sim.results import FLAGS, SimulationResult, SweepResult
from mfh_sim.validation import require_root_seed, require_seeds


def theory_for(config: SimConfig) -> dict[str, float] | None:
    """The theory's prediction for ``config``, or None where the theory does not cover it."""
    return theory_for_many([config])[0]


def theory_for_many(configs: Sequence[SimConfig]) -> list[dict[str, float] | None]:
    """The theory's predictions for ``configs`` (one batched solve), None for each config the
    theory declines (:func:`mfh_sim.theory.decline_reason` says why)."""
    from mfh_sim import theory

    covered = [i for i, config in enumerate(configs) if theory.decline_reason(config) is None]
    out: list[dict[str, float] | None] = [None] * len(configs)
    for i, prediction in zip(covered, theory.predict_many([configs[i] for i in covered])):
        out[i] = prediction
    return out


def _decline_reason(config: SimConfig, prediction: dict[str, float] | None) -> str | None:
    """Why the theory declines ``config`` (asked only where it gave no prediction)."""
    if prediction is not None:
        return None
    from mfh_sim import theory

    return theory.decline_reason(config)


def simulate(
    gamma: float | SimConfig | None = None,
    alpha: float | None = None,
    beta: float | None = None,
    *,
    seeds: int | Iterable[int] = 100,
    root_seed: int = 0,
    theory: bool = True,
    chunk_size: int | None = None,
    workers: int | None = None,
    kernel: str = "xla",
    **knobs: Any,
) -> SimulationResult:
    """Simulate crossmodal KD on one modality Venn diagram, over many seeds.

    Args:
        gamma, alpha, beta: overlap ratios in [0, 1]; give two (the third is derived) or all
            three consistently.  Or leave them out and give counts (``shared``, ``a_only``,
            ``b_only``, all three) or ``venn=VennConfig(...)``; or give a whole
            :class:`~mfh_sim.config.SimConfig` as the first argument (``simulate(config)``).
        seeds: number of seeds (>= 1) or explicit seed indices.
        root_seed: integer in [0, 2**32); with the config it fixes every number.
        theory: attach the theory's prediction (``result.theory``: finite-sample keys
            ``teacher_acc`` ... ``delta`` and the infinite-data ``*_limit`` keys, see
            :func:`mfh_sim.theory.predict`); for a config the theory does not model it is None
            and ``result.theory_declined`` says why.
        kernel: how the models train: 'xla' (default) or 'pallas', the fused kernel for GPUs
            (:data:`mfh_sim.protocols.paper.KERNELS`; equal to 'xla' up to float rounding, slower
            on a CPU, for the linear two-class GD protocol with the KL loss only).
        knobs: any :func:`mfh_sim.config.make_config` keyword (every one, with its range and
            unit, is in :data:`mfh_sim.config.KNOBS` and the README's knob table).  Defaults
            follow the paper's protocol (linear models, full-batch GD at learning rate 0.1 for
            1000 steps, n_train=200, n_test=1000, CE + KL with the paper's reduction) with 20
            visible decisive latents and 50 channels per modality.

    Returns a :class:`~mfh_sim.results.SimulationResult`; accuracies are fractions in [0, 1].
    """
    if isinstance(gamma, SimConfig):
        extra = {k: v for k, v in dict(alpha=alpha, beta=beta, **knobs).items() if v is not None}
        if extra:
            raise ValueError(f"{', '.join(f'{k}={v!r}' for k, v in extra.items())} is not allowed with a SimConfig: "
                             "the config fixes every knob (change it with dataclasses.replace)")
        config, requested = gamma, {}
    else:
        for name, value in dict(gamma=gamma, alpha=alpha, beta=beta, **knobs).items():
            if _is_axis(value):
                raise ValueError(f"{name}={value!r} is not allowed: simulate runs one config; sweep(...) runs a "
                                 "grid over a list of values")
        config = make_config(gamma=gamma, alpha=alpha, beta=beta, **knobs)
        requested = {k: v for k, v in dict(gamma=gamma, alpha=alpha, beta=beta, **knobs).items() if v is not None}
    seed_indices = require_seeds(seeds)
    root_seed = require_root_seed(root_seed)
    protocol = paper_protocol(True, kernel)
    outcome = run(protocol, [config], seed_indices, root_seed=root_seed, chunk_size=chunk_size, workers=workers)
    prediction = theory_for(config) if theory else None
    result = SweepResult.from_run(protocol, [config], outcome.arrays, seeds=seed_indices, root_seed=root_seed,
                                  grid=[requested], versions=versions()).point(0)
    result.theory = prediction
    result.theory_declined = _decline_reason(config, prediction) if theory else None
    return result


def _is_axis(value: Any) -> bool:
    return isinstance(value, (list, range, np.ndarray))


#: The one knob whose single value is a tuple (MLP widths): a tuple there is a value, not an axis.
TUPLE_VALUED = ("hidden",)


def expand_grid(points: Sequence[Mapping[str, Any] | SimConfig] | None = None, **axes: Any) -> list[dict[str, Any]]:
    """The grid's points as keyword dicts: each of ``points`` times the product of the axes.

    A keyword whose value is a list, range or numpy array is an axis; any other value is held
    fixed.  A tuple is a value only for ``hidden`` (``hidden=(64, 64)``: two layers; sweep widths
    with a list of tuples); anywhere else it is refused, saying to use a list.  A point may be a
    :class:`~mfh_sim.config.SimConfig` (its keywords, :meth:`SimConfig.as_dict`).
    """
    for name, value in axes.items():
        if isinstance(value, tuple) and name not in TUPLE_VALUED:
            raise ValueError(f"{name}={value!r} is not allowed: a tuple is neither a value nor an axis of "
                             f"{name}; to sweep over values give a list, {name}={list(value)!r}")
    fixed = {k: v for k, v in axes.items() if not _is_axis(v)}
    varied = {k: list(np.asarray(v).tolist()) if isinstance(v, np.ndarray) else list(v)
              for k, v in axes.items() if _is_axis(v)}
    for name, values in varied.items():
        if not values:
            raise ValueError(f"{name}=[] is not allowed: a grid axis needs at least one value")
    base_points = ([p.as_dict() if isinstance(p, SimConfig) else dict(p) for p in points]
                   if points is not None else [{}])
    if points is not None and not base_points:
        raise ValueError("points=[] is not allowed: give at least one grid point")
    grid = []
    for point in base_points:
        for combo in itertools.product(*varied.values()):
            grid.append({**fixed, **point, **dict(zip(varied, combo))})
    return grid


def sweep(
    points: Sequence[Mapping[str, Any] | SimConfig] | None = None,
    *,
    seeds: int | Iterable[int] = 100,
    root_seed: int = 0,
    theory: bool = True,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: bool = False,
    out: str | os.PathLike | None = None,
    resume: bool = True,
    devices: Sequence[Any] | int | None = None,
    common_random_numbers: bool = True,
    share: bool = True,
    kernel: str = "xla",
    **axes: Any,
) -> SweepResult:
    """Run a grid of configs times seeds as a few compiled, vmapped computations.

    ``sweep(gamma=[0.25, 0.5, 1], alpha=0.0, n_train=[100, 200], seeds=100)`` runs
    the product of the list-valued keywords; ``points=[{...}, {...}]`` gives explicit points
    (keyword dicts or configs, :class:`~mfh_sim.config.SimConfig`, each combined with the axes).
    Every grid point's config is built and checked before anything runs.  Keywords are those of
    :func:`simulate`.  Results do not depend
    on the grid's order, chunking, sharding, resuming or which other points are in it: the key of
    a run derives from its seed index and, with ``common_random_numbers=False``, its config's
    content.  By default (common random numbers) every grid point sees the same draws for a given
    seed, so differences between points are paired.

    Scale:
        chunk_size: runs per compiled call per device (default: cache-sized on CPU, sized to the
            device's memory on accelerators; see :func:`mfh_sim.engine.default_chunk_size`).
            Memory stays bounded whatever the number of runs.
        devices: ``None`` (every device JAX sees; with ``jax.distributed.initialize()`` every
            host's), a count, or a list of devices; with several, each chunk is sharded over
            them.
        out: a directory to persist results in (see :mod:`mfh_sim.store`): a manifest, then
            each finished block written atomically with its checksum.  Re-running the same call
            after an interruption computes only the missing runs and returns the same numbers
            as an uninterrupted run; the same call with more seeds computes only the new seeds
            (bit-identical to a fresh run with all of them); a directory holding another sweep
            is refused (:class:`mfh_sim.store.ResultsMismatchError`, a ``ValueError``).
        resume: with ``out``, reuse the runs already there (default); ``False`` refuses a
            directory that already holds this sweep.
        progress: draw a progress bar with an ETA on stderr.
        share: train what grid points share once (the default; the no-KD student of points
            that differ only in the teacher's view or the KD knobs, see
            :func:`mfh_sim.engine.plan_groups`; the linear two-class GD protocol with the KL loss
            and two-class converged ERM pack, and with ``common_random_numbers=False`` no two
            points share a draw, so nothing is shared); False trains every point's models anew.
            An execution option like ``chunk_size``: the numbers are the same either way, bit for
            bit.
        kernel: how the models train, 'xla' (default) or 'pallas' (the fused kernel of
            :mod:`mfh_sim.kernels`, for GPUs; in Pallas' interpreter, slower, on a CPU): a setting
            of the protocol, since its numbers equal 'xla''s to float rounding only (a results
            directory keeps them apart); refused for configs other than the linear two-class GD
            protocol with the KL loss.

    Runs whose loss became non-finite (diverged) are flagged, counted and left out of the
    summaries, with a ``RuntimeWarning`` saying how many.
    """
    grid = expand_grid(points, **axes)
    configs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # realised ratios are reported per point
        for point in grid:
            configs.append(make_config(**point))
    seed_indices = require_seeds(seeds)
    root_seed = require_root_seed(root_seed)
    # Keys whose value differs between points, in order of first appearance (a key may be
    # missing from some points: it then takes its default there).
    seen: dict[str, None] = {}
    for point in grid:
        seen.update(dict.fromkeys(point))
    varied_keys = [k for k in seen if len({repr(q.get(k)) for q in grid}) > 1]
    labels = [{k: p[k] for k in varied_keys if k in p} for p in grid]
    protocol = paper_protocol(common_random_numbers, kernel)
    outcome = run(protocol, configs, seed_indices, root_seed=root_seed, grid=labels, out=out, resume=resume,
                  progress=progress, devices=devices, chunk_size=chunk_size, workers=workers, share=share)
    arrays = outcome.arrays
    theory_arrays = None
    if theory:
        # Declined configs (the theory does not model them) get NaN, covered ones their prediction.
        predictions = theory_for_many(configs)
        known = next((p for p in predictions if p is not None), None)
        if known is not None:
            theory_arrays = {k: np.asarray([np.nan if p is None else p[k] for p in predictions], dtype=np.float64)
                             for k in known}
    if outcome.store is not None:
        outcome.store.write_theory(theory_arrays)
    diverged = np.zeros((len(configs), len(seed_indices)), dtype=bool)
    for flag in FLAGS:
        diverged |= arrays[flag]
    if diverged.any():
        warnings.warn(
            f"{int(diverged.sum())} of {diverged.size} runs diverged (non-finite loss) at "
            f"{int(diverged.any(axis=1).sum())} of {len(configs)} grid points; they are flagged "
            "(result.teacher_diverged, ...) and left out of the summaries",
            RuntimeWarning, stacklevel=2,
        )
    return SweepResult.from_run(protocol, configs, arrays, seeds=seed_indices,
                                root_seed=root_seed, grid=labels, theory=theory_arrays, versions=versions())
