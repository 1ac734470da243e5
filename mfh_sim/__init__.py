"""mfh-sim: a JAX simulator for the Modality Focusing Hypothesis of crossmodal knowledge distillation.

    import mfh_sim
    r = mfh_sim.simulate(gamma=0.5, alpha=1/3)   # one modality Venn diagram, 100 seeds
    print(r)                                     # teacher, no-KD and KD accuracies with intervals

The face: :func:`simulate`, :func:`sweep`, :func:`table2`, :func:`load`, :func:`make_config`,
:class:`SimConfig`, :class:`VennConfig`, :mod:`experiments` and ``__version__``.  The members
that need JAX are imported on first use (module ``__getattr__``), so ``import mfh_sim.config``
or ``mfh-sim --help`` does not load JAX; ``from mfh_sim import simulate`` works as before.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Persistent compilation cache (mfh_sim/_cache.py): set up before anything imports jax (it only
# sets environment variables, so the face stays free of jax until a heavy member is used).
from mfh_sim._cache import enable_compilation_cache as _enable_compilation_cache

_enable_compilation_cache()

from mfh_sim._version import __version__  # noqa: E402
from mfh_sim.config import SimConfig, make_config  # noqa: E402
from mfh_sim.venn import VennConfig  # noqa: E402

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and editors
    from mfh_sim import experiments
    from mfh_sim.experiments import table2
    from mfh_sim.generation import generate
    from mfh_sim.results import SimulationResult, SweepResult
    from mfh_sim.simulation import simulate, sweep

#: Lazily imported members: name -> (module, attribute or None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "experiments": ("mfh_sim.experiments", None),
    "generate": ("mfh_sim.generation", "generate"),
    "simulate": ("mfh_sim.simulation", "simulate"),
    "sweep": ("mfh_sim.simulation", "sweep"),
    "table2": ("mfh_sim.experiments", "table2"),
    "SimulationResult": ("mfh_sim.results", "SimulationResult"),
    "SweepResult": ("mfh_sim.results", "SweepResult"),
}


def load(path: str | os.PathLike) -> Any:
    """Open a saved result: a file written by ``result.save(path)`` or a results directory
    written by ``sweep(out=DIR)`` / ``mfh-sim sweep --out DIR``.  Returns a
    :class:`~mfh_sim.results.SweepResult`; never unpickles anything.

    This is :func:`mfh_sim.results.load` where that exists; until then it dispatches here
    (a directory to :func:`mfh_sim.store.load`, a file to ``SweepResult.load``).
    """
    results = importlib.import_module("mfh_sim.results")
    one_load = getattr(results, "load", None)
    if one_load is not None:
        return one_load(path)
    if Path(path).is_dir():
        from mfh_sim.store import load as load_directory

        return load_directory(path)
    return results.SweepResult.load(path)


def __getattr__(name: str) -> Any:
    """Import a heavy member (one that needs JAX) on first use and keep it."""
    if name not in _LAZY:
        raise AttributeError(f"module 'mfh_sim' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "SimConfig",
    "SimulationResult",
    "SweepResult",
    "VennConfig",
    "__version__",
    "experiments",
    "generate",
    "load",
    "make_config",
    "simulate",
    "sweep",
    "table2",
]
