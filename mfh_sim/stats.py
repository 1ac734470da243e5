"""Summary statistics over seeds: means, standard deviations, t-intervals, paired differences.

Accuracies are fractions in [0, 1].  Runs that diverged carry NaN and are left out of every
summary (with a warning that says how many), never averaged in.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation, standard error and a two-sided t confidence interval."""

    mean: float
    std: float
    sem: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f} (95% CI {self.low:.4f} to {self.high:.4f}, n={self.n})"

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


def summarize(values: np.ndarray, level: float = 0.95, name: str = "values") -> Summary:
    """Summary of the finite entries of ``values`` (1-D) with a ``level`` t-interval for the mean."""
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    dropped = values.size - finite.size
    if dropped:
        warnings.warn(
            f"{name}: {dropped} of {values.size} runs diverged (non-finite loss) and are excluded",
            RuntimeWarning,
            stacklevel=2,
        )
    n = finite.size
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, math.nan, math.nan, 0, level)
    mean = float(finite.mean())
    if n == 1:
        return Summary(mean, math.nan, math.nan, math.nan, math.nan, 1, level)
    std = float(finite.std(ddof=1))
    sem = std / math.sqrt(n)
    half = float(scipy_stats.t.ppf(0.5 + level / 2.0, n - 1)) * sem
    return Summary(mean, std, sem, mean - half, mean + half, n, level)
