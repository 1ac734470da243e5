"""Theory of the modality Venn diagram generator (population and finite-sample predictions)."""

from __future__ import annotations

from mfh_sim.config import SimConfig


def predict(config: SimConfig) -> dict[str, float]:
    """The theory's accuracies for ``config`` (keys as the simulated ones)."""
    raise NotImplementedError("the theory module is being written")
