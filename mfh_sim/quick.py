"""Reduced mode for the documentation's examples: ``MFH_SIM_QUICK=1`` cuts their seeds and grids.

The notebooks ask for their seed counts through :func:`seeds`, so they show the full numbers
(committed with their outputs) when run by a reader, and the test suite, which sets
``MFH_SIM_QUICK=1``, executes the same cells in seconds to prove that they run.  A reduced run
proves only that the code runs: its numbers are noise and nothing checks them.

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import os

#: The environment variable that turns the reduced mode on (any value but '', '0' or 'false').
ENV = "MFH_SIM_QUICK"
#: Seeds per grid point in the reduced mode: the fewest that give a standard deviation and an
#: interval (>= 2), with room for paired statistics.
QUICK_SEEDS = 4
#: Grid points of a curve in the reduced mode (:func:`points`): its ends and a middle.
QUICK_POINTS = 3


def enabled() -> bool:
    """True when ``MFH_SIM_QUICK`` is set to a value other than '', '0' or 'false'."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false")


def seeds(full: int, quick: int = QUICK_SEEDS) -> int:
    """``full`` seeds, or ``min(full, quick)`` in the reduced mode (see :func:`enabled`).

    Args:
        full: the seed count of the real run (>= 1).
        quick: the seed count of the reduced run (>= 1; default :data:`QUICK_SEEDS`).
    Raises :class:`ValueError` naming a count that is not an integer >= 1.
    """
    for name, value in (("full", full), ("quick", quick)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= 1")
    return min(full, quick) if enabled() else full


def points(full: int, quick: int = QUICK_POINTS) -> int:
    """``full`` points of a grid (say, training sizes of a theory curve), or ``min(full, quick)`` in
    the reduced mode: a curve drawn through fewer points still proves the cell runs.

    Raises :class:`ValueError` naming a count that is not an integer >= 1.
    """
    return seeds(full, quick)  # the same rule, with a grid's default


__all__ = ["ENV", "QUICK_POINTS", "QUICK_SEEDS", "enabled", "points", "seeds"]
