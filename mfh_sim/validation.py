"""Host-side checks of user values: each failure is a ValueError naming the value and what is allowed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def require_integer(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum`` (integral floats such as 3.0 are accepted; bools are not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {minimum}")
    return int(value)


def require_ratio(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1] (NaN and infinities are refused)."""
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not allowed: it must be a number in [0, 1]") from None
    if not math.isfinite(ratio) or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{name}={value!r} is not allowed: it must be a number in [0, 1]")
    return ratio


def json_default(value: Any):
    """``json.dumps(default=...)`` for numpy scalars and arrays and for tuples."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
