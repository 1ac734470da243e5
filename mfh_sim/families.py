"""Moved to :mod:`mfh_sim.experiments.families`; this name is that module (kept for existing imports)."""

import sys

from mfh_sim.experiments import families as _moved

sys.modules[__name__] = _moved
