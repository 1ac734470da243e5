"""Shared fixtures and settings of the test suite.

* Tests run on the CPU whatever the machine has, so that numbers are comparable everywhere, and
  matplotlib draws off-screen.
* The paper's Fig. 2 and Fig. 3 at 100 seeds are computed once per test session
  (:func:`paper_fig2`, :func:`paper_fig3`), for every test that checks the paper's numbers; the
  README example and the notebooks run in the reduced mode (``MFH_SIM_QUICK=1``, see
  :mod:`mfh_sim.quick`), which proves that they run, not what they show.
* ``@pytest.mark.slow`` marks the expensive statistical checks and the end-to-end runs of the
  docs: ``make test-fast`` (``pytest -m "not slow"``) leaves them out for the inner loop;
  ``make test`` (what CI runs) runs everything.
"""

import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

#: Seeds of the paper-fidelity checks: the claims' bar (tests/test_presets.py).  The paper reports
#: 10-run means, so its own noise dominates every comparison with it: with a per-seed SD s, the SE
#: of ours minus the paper's is s * sqrt(1/10 + 1/seeds), and 100 seeds instead of 200 widen it by
#: 2%.  Measured: Fig. 2 run with a doubled KD weight has its slope 3.5 of the slope test's SE from
#: the paper's at 100 seeds (3.6 at 200), so that test still fails it; on seeds 0-99 every claim's
#: 95% interval stays more than 1 point on its side of zero.  Our own SE of a mean: 0.3-0.6 points.
PAPER_SEEDS = 100


@pytest.fixture(scope="session")
def paper_fig2():
    """The paper's Fig. 2 at PAPER_SEEDS seeds, root seed 0, without theory: computed once per session."""
    from mfh_sim import experiments

    return experiments.fig2(seeds=PAPER_SEEDS, theory=False)


@pytest.fixture(scope="session")
def paper_fig3():
    """The paper's Fig. 3 at PAPER_SEEDS seeds, root seed 0, without theory: computed once per session."""
    from mfh_sim import experiments

    return experiments.fig3(seeds=PAPER_SEEDS, theory=False)


@pytest.fixture
def quick_mode(monkeypatch):
    """Turn on the reduced mode of the docs' examples for this test (and its subprocesses)."""
    from mfh_sim import quick

    monkeypatch.setenv(quick.ENV, "1")
    return quick.QUICK_SEEDS


@pytest.fixture(scope="session")
def theory_family():
    """``benchmarks.theory_family``, the theory's family benchmark (the repository root is on the
    tests' path: ``pythonpath`` in pyproject.toml)."""
    from benchmarks import theory_family

    return theory_family
