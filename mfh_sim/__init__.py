"""mfh-sim: a JAX simulator for the Modality Focusing Hypothesis of crossmodal knowledge distillation.

    import mfh_sim
    r = mfh_sim.simulate(gamma=0.5, alpha=1/3)   # one modality Venn diagram, 100 seeds
    print(r)                                     # teacher, no-KD and KD accuracies with intervals
"""

__version__ = "0.1.0"

# Persistent compilation cache (mfh_sim/_cache.py), set before anything imports jax.
from mfh_sim._cache import enable_compilation_cache as _enable_compilation_cache
_enable_compilation_cache()

from mfh_sim import experiments
from mfh_sim.config import SimConfig, make_config
from mfh_sim.results import SimulationResult, SweepResult
from mfh_sim.simulation import simulate, sweep
from mfh_sim.venn import VennConfig

load = SweepResult.load

__all__ = [
    "SimConfig",
    "SimulationResult",
    "SweepResult",
    "VennConfig",
    "experiments",
    "load",
    "make_config",
    "simulate",
    "sweep",
]
