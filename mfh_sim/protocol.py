"""Moved to :mod:`mfh_sim.protocols.paper`; this name is that module (kept for existing imports)."""

import sys

from mfh_sim.protocols import paper as _moved

sys.modules[__name__] = _moved
