"""Packs: points whose runs share a training (the paper's no-KD student across a grid over the
teacher's view or the KD knobs) train it once, and every number is bit for bit what each point
gives run alone (``share=False``, the undeduplicated path)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mfh_sim import engine
from mfh_sim.config import make_config
from mfh_sim.experiments.paper import fig2_point, fig3_points
from mfh_sim.protocols import paper
from mfh_sim.protocols.paper import METRIC_DTYPES, PAPER, paper_protocol

FAST = dict(steps=60, n_test=200)
# A large step turns any difference in a weight's last bit into different accuracies within a few
# dozen steps (the paper's 0.1 would hide it), so the exact comparisons below see every bit.
SENSITIVE = dict(learning_rate=30.0)


def grid(name):
    if name == "fig2":  # the paper's Fig. 2 at every overlap, the paper's learning rate
        return [make_config(**fig2_point(o), **FAST) for o in range(11)]
    if name == "fig3":
        return [make_config(**point, **FAST, **SENSITIVE) for point in fig3_points()]
    if name == "erm fig2":  # converged ERM: 11 teachers, one no-KD student, 11 KD students
        return [make_config(**fig2_point(o), optimizer="erm", l2=0.01, n_test=200) for o in range(11)]
    if name == "erm kd knobs":  # ERM across KD knobs, both KD losses (two programs), two teachers
        return [make_config(**fig2_point(o), optimizer="erm", l2=l2, kd_weight=k, temperature=t, kd_loss=loss,
                            n_test=200)
                for loss in ("kl", "mse") for k in (0.5, 4.0) for t in ((1.0,) if loss == "mse" else (0.5, 4.0))
                for o in (4, 8) for l2 in (0.01,)]
    if name == "kd_weight x temperature":  # (and ce_weight and two overlaps: two teachers, interleaved)
        return [make_config(**fig2_point(o), kd_weight=k, temperature=t, ce_weight=c, **FAST, **SENSITIVE)
                for k in (0.0, 2.0) for t in (0.5, 4.0) for c in (1.0, 0.5) for o in (4, 8)]
    # Several families in one sweep, in mixed order: two learning rates, another student view
    # (B = 4 instead of 6: other x^b), and points that are not packed (Adam; a family of one).
    other_view = dict(shared=4, a_only=6, b_only=4, unseen=6, dim_a=25, dim_b=50)
    return ([make_config(**fig2_point(o), **FAST, learning_rate=lr) for o in (0, 6, 10) for lr in (30.0, 3.0)]
            + [make_config(**other_view, kd_weight=k, **FAST, **SENSITIVE) for k in (1.0, 2.0, 0.5)]
            + [make_config(**fig2_point(2), **FAST, learning_rate=0.3),
               make_config(**fig2_point(2), optimizer="adam", **FAST, **SENSITIVE)])


def pack_sizes(configs, share=True, protocol=PAPER):
    return sorted(int(c) for group in engine.plan_groups(protocol, configs, share=share) for c in group.counts)


@pytest.mark.parametrize("name, sizes", [
    ("fig2", [11]), ("fig3", [5]), ("kd_weight x temperature", [16]), ("mixed", [1, 1, 3, 3, 3]),
    ("erm fig2", [11]), ("erm kd knobs", [4, 8]),
])
def test_packs_give_every_metric_bit_for_bit(name, sizes):
    configs = grid(name)
    assert pack_sizes(configs) == sizes  # the grid really is packed as intended
    seeds = np.arange(9)  # two chunks of 8 rows: the second padded
    packed = engine.execute(PAPER, configs, seeds, root_seed=2)
    alone = engine.execute(PAPER, configs, seeds, root_seed=2, share=False)
    for metric in METRIC_DTYPES:
        np.testing.assert_array_equal(packed[metric], alone[metric], err_msg=f"{name}: {metric}")
    if name == "fig2":  # the paper's observation: no KD is the same at every gamma, exactly
        assert (packed["no_kd_acc"] == packed["no_kd_acc"][0]).all()


def test_what_is_packed_and_what_is_not():
    fig2 = grid("fig2")
    (group,) = engine.plan_groups(PAPER, fig2)
    assert group.size == 11 and group.members.tolist() == [list(range(11))]
    assert group.layout == tuple(range(11))  # 11 teachers (x^a differs), one no-KD student
    (group,) = engine.plan_groups(PAPER, grid("kd_weight x temperature"))
    assert group.layout == (0, 1) * 8  # two teachers (two overlaps) for the 16 points
    assert pack_sizes(fig2, share=False) == [1] * 11
    assert pack_sizes(fig2, protocol=paper_protocol(common_random_numbers=False)) == [1] * 11  # own draws
    # A family larger than MAX_PACK is cut into packs of nearly equal size, the last one padded.
    many = [make_config(**fig2_point(4), kd_weight=0.01 * i, **FAST) for i in range(engine.MAX_PACK + 7)]
    groups = engine.plan_groups(PAPER, many)
    assert [g.size for g in groups] == [36] and pack_sizes(many) == [35, 36]
    assert groups[0].real().sum() == len(many) and groups[0].members[1, -1] == groups[0].members[1, -2]
    # Runs that the margin fast path does not train (here: Adam, channel mixing) are not packed.
    for knob in (dict(optimizer="adam"), dict(mixing_depth=1, mixing_strength=0.5)):
        configs = [make_config(**fig2_point(o), **FAST, **knob) for o in (0, 4)]
        assert pack_sizes(configs) == [1, 1]


@pytest.mark.parametrize("order", [(0.5, 1.0), (1.0, 0.5)])
def test_a_nan_teacher_leaves_the_no_kd_student_alone(monkeypatch, order):
    # The no-KD student never sees a teacher: a teacher with NaN margins makes its KD student
    # diverged and nothing else, alone and in a pack (one no-KD student for every point).  NaN
    # margins are injected here for the points whose KD weight is 1 (no real teacher produces them
    # at a usable learning rate).  Protocol version 2 trained the no-KD student beside the KD
    # student, where 0 x NaN made it NaN too.
    teacher = paper._margin_teacher

    def nan_for_kd_weight_one(train_a, students_a, draws, knobs, static):
        fit, margins = teacher(train_a, students_a, draws, knobs, static)
        return fit, jnp.where(knobs.kd_weight == 1.0, jnp.nan, margins)

    monkeypatch.setattr(paper, "_margin_teacher", nan_for_kd_weight_one)
    configs = [make_config(**fig2_point(4), kd_weight=k, **FAST) for k in order]
    static = paper.static_of(configs[0])
    keys = engine.run_keys(0, np.arange(4), 0)
    inputs = [paper.inputs_of(c) for c in configs]
    alone = [jax.jit(jax.vmap(paper.make_run(static), in_axes=(0, None)))(keys, i) for i in inputs]
    stacked = jax.tree.map(lambda *a: np.stack(a), *inputs)
    packed = jax.jit(jax.vmap(paper.make_pack_run(static, 2), in_axes=(0, None)))(keys, stacked)
    for point, kd_weight in enumerate(order):
        assert not np.any(alone[point].no_kd_diverged)
        assert np.all(alone[point].kd_diverged) == (kd_weight == 1.0)
        assert np.all(np.isnan(alone[point].kd_acc)) == (kd_weight == 1.0)
        np.testing.assert_array_equal(alone[point].no_kd_acc, alone[0].no_kd_acc)
        for metric in METRIC_DTYPES:
            np.testing.assert_array_equal(np.asarray(getattr(packed, metric))[:, point],
                                          np.asarray(getattr(alone[point], metric)), err_msg=metric)
    assert not np.any(np.isnan(alone[0].no_kd_acc))


def test_partly_known_packs_compute_only_the_missing_runs():
    # Some points of a pack known for some seeds (a sweep grown by a point, say): the pack is
    # computed again, only the unknown runs are reported and written, and the numbers are the same.
    configs, seeds = grid("fig2")[:5], np.arange(6)
    reference = engine.execute(PAPER, configs, seeds, root_seed=1)
    points, columns = np.meshgrid([0, 3], np.arange(6), indexing="ij")
    points, columns = np.append(points.ravel(), 4), np.append(columns.ravel(), 2)
    known = engine.Block(0, 0, points.size, points, columns, seeds[columns],
                         {m: reference[m][points, columns] for m in METRIC_DTYPES})
    computed, blocks = [], []
    again = engine.execute(PAPER, configs, seeds, root_seed=1, completed=[known], progress=computed.append,
                           on_block=blocks.append)
    assert all(np.array_equal(again[m], reference[m], equal_nan=True) for m in METRIC_DTYPES)
    assert sum(computed) == 30 - points.size == sum(b.points.size for b in blocks)
    written = {(p, c) for b in blocks for p, c in zip(b.points, b.columns)}
    assert not written & set(zip(points, columns))
