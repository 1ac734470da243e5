"""Golden values of the theory's curves, stored in tests/data/theory_golden.json, compared to 1e-6.

The file was generated once by running this module as a script (``PYTHONPATH=. python
tests/test_theory_golden.py``) after the theory had been checked against simulation
(tests/test_theory_simulation.py).  A change to any formula that moves a curve by more than 1e-6
fails here; regenerate only for an intended, documented change.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import mfh_sim
from mfh_sim.theory import complementarity, predict_limit

GOLDEN = Path(__file__).parent / "data" / "theory_golden.json"
TOLERANCE = 1e-6


def _fig2(o: int) -> dict:
    return dict(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25, dim_b=50)


CASES: list[tuple[str, dict, str]] = (
    [(f"fig2_o{o}", _fig2(o), "logistic") for o in (0, 2, 4, 6, 8, 10)]
    + [(f"fig3_s{s}", dict(shared=10, a_only=s, b_only=0, unseen=40 - s, dim_a=50, dim_b=50), "logistic")
       for s in (0, 20, 40)]
    + [(f"table2_a{a}_g{g}", dict(shared=g, a_only=a, b_only=0, hyperplane="ones", fresh_student_sample=True),
        "logistic") for a, g in ((30, 10), (10, 30))]
    + [
        ("fig2_o4_T4_batchmean", dict(_fig2(4), temperature=4.0, kd_reduction="batchmean", kd_weight=2.0), "logistic"),
        ("fig2_o4_T4_bayes", dict(_fig2(4), temperature=4.0), "bayes"),
        ("fig2_o6_pure_kd", dict(_fig2(6), ce_weight=0.0), "logistic"),
        ("mixed_nondecisive_ones", dict(shared=3, a_only=2, b_only=4, unseen=1, shared_nondecisive=2,
                                        b_nondecisive=3, hyperplane="ones", n_train=400), "logistic"),
    ]
)


def golden_values() -> dict:
    """Every pinned number, recomputed from the current implementation."""
    out: dict = {"predict": {}, "complementarity": {}}
    for name, knobs, teacher in CASES:
        config = mfh_sim.make_config(**knobs)
        # The population limit (pinned since before the GCM theory, whose golden values live in
        # tests/data/theory_gcm_golden.json; the least-squares surrogate's were pinned here until it
        # left the package).
        out["predict"][name] = dict(predict_limit(config, teacher=teacher))
        out["complementarity"][name] = {
            label: complementarity(config, label=label) for label in ("binary", "gaussian")
        }
    return out


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= TOLERANCE


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def current() -> dict:
    return golden_values()


@pytest.mark.parametrize("section", ["predict", "complementarity"])
def test_golden_values(stored, current, section):
    assert set(stored[section]) == set(current[section])
    mismatches = []
    for name, expected in stored[section].items():
        got = current[section][name]
        if isinstance(expected, dict):
            assert set(expected) == set(got), name
            mismatches += [(name, k, expected[k], got[k]) for k in expected if not _close(expected[k], got[k])]
        elif not _close(expected, got):
            mismatches.append((name, expected, got))
    assert not mismatches, mismatches


if __name__ == "__main__":
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(golden_values(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
