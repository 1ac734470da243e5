"""Host-side checks of user values: each failure is a ValueError naming the value and what is allowed.

Every check that runs before anything is traced lives here (integers, ratios, real numbers,
choices, seed counts and the root seed), so the config, the simulator and the command line
refuse the same values with the same words.  Imports only numpy.
"""

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


def _refuse_text(name: str, value: Any, allowed: str) -> None:
    """A string or a bool where a number belongs is refused, naming the argument (float("0.5")
    would take it silently; True would be 1)."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise ValueError(f"{name}={value!r} is not allowed: it must be {allowed}, not a {type(value).__name__}")


def require_ratio(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1] (NaN, infinities, strings and bools are refused)."""
    _refuse_text(name, value, "a number in [0, 1]")
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not allowed: it must be a number in [0, 1]") from None
    if not math.isfinite(ratio) or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{name}={value!r} is not allowed: it must be a number in [0, 1]")
    return ratio


def require_real(
    name: str,
    value: Any,
    low: float | None,
    high: float | None,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """``value`` as a finite float in the interval from ``low`` to ``high`` (None: unbounded).

    ``open_low`` / ``open_high`` exclude the bound itself (learning_rate > 0: ``low=0.0,
    open_low=True``).  NaN, infinities, strings and bools are refused.
    """
    lo = "(" if open_low else "["
    hi = ")" if open_high else "]"
    allowed = f"a finite number in {lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}"
    _refuse_text(name, value, allowed)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not allowed: it must be {allowed}") from None
    bad = not math.isfinite(number)
    if low is not None:
        bad |= number < low or (open_low and number == low)
    if high is not None:
        bad |= number > high or (open_high and number == high)
    if bad:
        raise ValueError(f"{name}={value!r} is not allowed: it must be {allowed}")
    return number


def require_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Refuse ``value`` unless it is one of ``allowed`` (a tuple of :mod:`mfh_sim.choices`)."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: use one of {allowed}")


def require_choices(name: str, values: Any, allowed: tuple[str, ...], item: str | None = None) -> tuple[str, ...]:
    """``values`` (one string, or a sequence of them) as a non-empty tuple of distinct members of
    ``allowed``; a bad member is named as ``item=...`` (default ``name``)."""
    if isinstance(values, str):
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{name}={values!r} is not allowed: give a sequence of {allowed}") from None
    if not values:
        raise ValueError(f"{name}={values!r} is not allowed: give at least one of {allowed}")
    for value in values:
        if value not in allowed:
            raise ValueError(f"{item or name}={value!r} is not allowed: use one or more of {allowed}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name}={values!r} is not allowed: give each at most once")
    return values


def require_seeds(seeds: Any) -> np.ndarray:
    """Seed indices as int64: a count ``seeds`` >= 1 means 0..seeds-1; a sequence gives distinct
    indices in [0, 2**32) themselves."""
    message = f"seeds={seeds!r} is not allowed: give a count >= 1 or a list of indices >= 0"
    if isinstance(seeds, (bool, np.bool_)):
        raise ValueError(message)
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(message)
        return np.arange(int(seeds), dtype=np.int64)
    try:
        indices = np.asarray(list(seeds))
    except TypeError:
        raise ValueError(message) from None
    if (indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer)
            or (indices < 0).any() or (indices >= 2**32).any() or np.unique(indices).size != indices.size):
        raise ValueError(
            f"seeds={seeds!r} is not allowed: give a count >= 1 or distinct integer indices in [0, 2**32)"
        )
    return indices.astype(np.int64)


def require_root_seed(root_seed: Any) -> int:
    """The root of every key: an integer in [0, 2**32) (bools refused)."""
    if isinstance(root_seed, (bool, np.bool_)) or not isinstance(root_seed, (int, np.integer)) or not (
        0 <= root_seed < 2**32
    ):
        raise ValueError(f"root_seed={root_seed!r} is not allowed: it must be an integer in [0, 2**32)")
    return int(root_seed)


#: The trainings of the paper's linear models that ``require_optimizer`` accepts: the paper's
#: full-batch GD and converged ridge ERM (:mod:`mfh_sim.erm`).
TRAININGS = ("sgd", "erm")


def require_optimizer(optimizer: Any, l2: Any) -> tuple[str, float]:
    """Checked (optimizer, l2) of a run of the paper's linear models (Table 2, ``mfh-sim reproduce``):
    'sgd' with l2 = 0, or 'erm' with a finite l2 > 0.

    Raises :class:`ValueError` naming the parameter, its value and what is allowed.
    """
    if not isinstance(optimizer, str) or optimizer not in TRAININGS:
        raise ValueError(f"optimizer={optimizer!r} is not allowed: use one of {TRAININGS}")
    if isinstance(l2, (bool, np.bool_)):
        raise ValueError(f"l2={l2!r} is not allowed: it must be a number")
    l2 = require_real("l2", l2, 0.0, None)
    if optimizer == "sgd" and l2 != 0.0:
        raise ValueError(
            f"l2={l2!r} is not allowed with optimizer='sgd': the ridge is optimizer='erm''s; the "
            "paper's gradient training has none (use l2=0)"
        )
    if optimizer == "erm" and l2 == 0.0:
        raise ValueError(
            "l2=0.0 is not allowed with optimizer='erm': without a ridge the logistic minimiser does "
            "not exist on separable data; give l2 > 0 (for example 0.01)"
        )
    return optimizer, l2


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
