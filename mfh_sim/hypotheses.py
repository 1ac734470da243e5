"""Moved to :mod:`mfh_sim.experiments.hypotheses`; this name is that module (kept for existing imports)."""

import sys

from mfh_sim.experiments import hypotheses as _moved

sys.modules[__name__] = _moved
