"""The theory's family benchmarks (benchmarks/theory_family.py): the draws are fixed and cover the space."""

from __future__ import annotations

import pytest


def test_family_seed_draws_another_family_and_build_refuses_a_mixed_cache(tmp_path, theory_family):
    tf = theory_family
    held_out = tf.draw_family(tf.FAMILY_SEED + 1)
    assert held_out != tf.draw_family() and held_out == tf.draw_family(tf.FAMILY_SEED + 1)
    fresh = tf.load_cache(tmp_path / "none.json", family_seed=tf.FAMILY_SEED + 1)
    assert fresh["family_seed"] == tf.FAMILY_SEED + 1 and fresh["family"] == held_out
    path = tmp_path / "cache.json"
    tf.save_cache(fresh, path)
    with pytest.raises(ValueError, match="another family"):  # before any simulation
        tf.build(1, 0, 0, 0, path=path, log=lambda text: None)


def test_knob_family_is_pure_and_switches_every_knob_on_and_off(theory_family):
    tf = theory_family
    family = tf.draw_knob_family()
    assert family == tf.draw_knob_family() and family != tf.draw_knob_family(seed=tf.KNOB_FAMILY_SEED + 1)
    assert len(family) == 36 and len(tf.draw_knob_family(count=6)) == 6
    assert {c.n_classes for c in family} == {2, 3, 4}
    assert {c.mixing_depth for c in family} == {0, 1, 2}
    for knob in ("label_noise", "momentum"):
        values = [getattr(c, knob) for c in family]
        assert min(values) == 0.0 and max(values) > 0.0
    assert {c.fresh_student_sample for c in family} == {False, True}
    # Every config is one the theory covers, and its converged-ERM twin has no momentum.
    from mfh_sim.theory import decline_reason

    assert all(decline_reason(c) is None for c in family)
    assert all(tf.erm_twin(c)["momentum"] == 0.0 for c in family)
