"""Moved to :mod:`mfh_sim.protocols.paper`; this name re-exports it for existing imports."""

from mfh_sim.protocols.paper import *  # noqa: F401,F403
from mfh_sim.protocols.paper import (  # noqa: F401
    CLASSES_TAG,
    HINT_TAG,
    INIT_TAG,
    LABEL_NOISE_TAG,
    MIXING_TAG,
    Knobs,
    Metrics,
    RunDraws,
    draw_run,
    inputs_of,
    knobs_of,
    make_run,
)
