"""The host-side checks of mfh_sim.validation: each refusal names the parameter, its value and
what is allowed; the seed checks agree with the ones the simulator uses."""

import math
import re

import numpy as np
import pytest

from mfh_sim import validation
from mfh_sim.choices import OPTIMIZERS


@pytest.mark.parametrize(("value", "kwargs", "ok"), [
    (0.5, dict(low=0.0, high=1.0), True),
    (0.0, dict(low=0.0, high=None, open_low=True), False),
    (1.0, dict(low=0.0, high=1.0, open_high=True), False),
    (math.nan, dict(low=None, high=None), False),
    ("x", dict(low=None, high=None), False),
])
def test_require_real(value, kwargs, ok):
    if ok:
        assert validation.require_real("momentum", value, **kwargs) == value
    else:
        with pytest.raises(ValueError, match=r"momentum=.* is not allowed: it must be a finite number in"):
            validation.require_real("momentum", value, **kwargs)


def test_require_choice_names_the_allowed_values():
    validation.require_choice("optimizer", "adam", OPTIMIZERS)
    with pytest.raises(ValueError, match=re.escape(f"optimizer='adamw' is not allowed: use one of {OPTIMIZERS}")):
        validation.require_choice("optimizer", "adamw", OPTIMIZERS)


@pytest.mark.parametrize("seeds", [0, True, [-1], "x", [2**32], [1, 1]])
def test_the_simulator_refuses_what_require_seeds_refuses(seeds):
    from mfh_sim import simulate

    with pytest.raises(ValueError) as refused:
        validation.require_seeds(seeds)
    with pytest.raises(ValueError, match=re.escape(str(refused.value))):
        simulate(gamma=1.0, alpha=0.0, seeds=seeds, steps=1, n_test=10)


@pytest.mark.parametrize("seeds, indices", [(3, [0, 1, 2]), ([4, 1], [4, 1]), (np.arange(2), [0, 1])])
def test_require_seeds_accepts_counts_and_indices(seeds, indices):
    assert validation.require_seeds(seeds).tolist() == indices


@pytest.mark.parametrize("root_seed", [0, 7, -1, 2**32, True, 1.5])
def test_require_root_seed(root_seed):
    if isinstance(root_seed, int) and not isinstance(root_seed, bool) and 0 <= root_seed < 2**32:
        assert validation.require_root_seed(root_seed) == root_seed
    else:
        with pytest.raises(ValueError, match=r"root_seed=.* is not allowed: it must be an integer in \[0, 2\*\*32\)"):
            validation.require_root_seed(root_seed)
