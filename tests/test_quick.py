"""The reduced mode's counts: full numbers unless MFH_SIM_QUICK is set, and bad counts refused."""

from __future__ import annotations

import pytest

from mfh_sim import quick


def test_counts_are_full_without_the_reduced_mode(monkeypatch):
    monkeypatch.delenv(quick.ENV, raising=False)
    assert quick.seeds(200) == 200 and quick.points(16) == 16


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_reduced_mode_caps_seeds_and_grid_points(monkeypatch, value):
    monkeypatch.setenv(quick.ENV, value)
    assert quick.seeds(200) == quick.QUICK_SEEDS and quick.points(16) == quick.QUICK_POINTS
    assert quick.points(2) == 2  # never more than the full count


@pytest.mark.parametrize("value", ["", "0", "false", "FALSE"])
def test_reduced_mode_is_off_for_empty_zero_and_false(monkeypatch, value):
    monkeypatch.setenv(quick.ENV, value)
    assert not quick.enabled() and quick.points(16) == 16


@pytest.mark.parametrize("full, quick_count, name", [(0, 3, "full"), (16, 0, "quick"), (2.5, 3, "full"),
                                                      (True, 3, "full")])
def test_bad_counts_are_refused_naming_the_count(full, quick_count, name):
    with pytest.raises(ValueError, match=f"{name}="):
        quick.points(full, quick_count)
