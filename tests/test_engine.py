"""The executor: chunking, ordering, resuming from blocks and memory sizing never change a number;
diverged runs are flagged, counted and left out of summaries with a warning."""

import warnings

import jax
import numpy as np
import pytest

import mfh_sim
from mfh_sim import engine
from mfh_sim.config import make_config
from mfh_sim.experiments.paper import fig2_point
from mfh_sim.protocols.paper import METRIC_DTYPES, PAPER, bytes_per_run, inputs_of, paper_protocol, static_of

FAST = dict(steps=60, n_test=200)


def fig2_points(overlaps=(0, 4, 10)):
    return [make_config(**fig2_point(o), **FAST) for o in overlaps]


def same(a, b):
    return all(np.array_equal(a[name], b[name], equal_nan=True) for name in METRIC_DTYPES)


@pytest.fixture(scope="module")
def reference():
    return engine.execute(PAPER, fig2_points(), np.arange(11), root_seed=3, chunk_size=8)


@pytest.mark.parametrize("crn", [True, False])
def test_keys_are_those_of_the_documented_formula(crn):
    # The engine derives keys inside the compiled call; they must be the documented
    # fold_in(fold_in(PRNGKey(root), identity or 0), seed), bit for bit.
    configs, seeds = fig2_points(), np.array([0, 5, 7])
    protocol = paper_protocol(common_random_numbers=crn)
    result = engine.execute(protocol, configs, seeds, root_seed=3, chunk_size=8)
    config = configs[1]
    batch = lambda tree: jax.tree.map(lambda a: np.broadcast_to(a, (seeds.size,) + np.shape(a)).copy(), tree)
    assert protocol.identity_of(config) == (0 if crn else config.identity())
    direct = jax.jit(jax.vmap(protocol.make_run(protocol.static_of(config))))(
        engine.run_keys(protocol.identity_of(config), seeds, 3), batch(inputs_of(config)))
    for name in METRIC_DTYPES:
        np.testing.assert_array_equal(np.asarray(getattr(direct, name)), result[name][1])


def test_chunking_workers_and_order_do_not_change_results(reference):
    configs = fig2_points()
    # Each chunk size is a separate compilation: two sizes (odd padding, threads) keep this quick.
    assert same(engine.execute(PAPER, configs, np.arange(11), 3, chunk_size=5, workers=2), reference)
    backwards = engine.execute(PAPER, configs[::-1], np.arange(11)[::-1], 3, chunk_size=8, workers=1)
    assert same({k: v[::-1, ::-1] for k, v in backwards.items()}, reference)


@pytest.mark.parametrize("share", [True, False])
def test_blocks_partition_the_runs_and_completed_blocks_are_not_recomputed(reference, share):
    # With packs (share=True) a row is the three Fig. 2 points for one seed: 11 rows, 33 runs.
    rows = 33
    configs, seeds = fig2_points(), np.arange(11)
    blocks = []
    result = engine.execute(PAPER, configs, seeds, 3, chunk_size=8, block_runs=4, on_block=blocks.append,
                            share=share)
    assert same(result, reference)
    covered = sorted((b.start, b.stop) for b in blocks)
    assert covered[0][0] == 0 and covered[-1][1] == rows and all(a[1] == b[0] for a, b in zip(covered, covered[1:]))
    runs = sorted(zip(np.concatenate([b.points for b in blocks]), np.concatenate([b.columns for b in blocks])))
    assert runs == sorted((p, c) for p in range(3) for c in range(11))  # every run in exactly one block
    # Resume from every other block: only the rest is computed, and the result is the same.
    kept = blocks[::2]
    computed, new_blocks = [], []
    resumed = engine.execute(PAPER, configs, seeds, 3, chunk_size=8, completed=kept, progress=computed.append,
                             on_block=new_blocks.append, share=share)
    assert same(resumed, reference)
    assert sum(computed) == 33 - sum(b.points.size for b in kept)
    assert not {(b.start, b.stop) for b in kept} & {(b.start, b.stop) for b in new_blocks}


def test_known_runs_in_any_pattern_are_not_recomputed(reference):
    # Every other seed of every point known (the pattern a directory extended with more seeds
    # leaves): only the others run, and the result is the reference's.
    configs, seeds = fig2_points(), np.arange(11)
    points, columns = np.meshgrid(np.arange(3), np.arange(0, 11, 2), indexing="ij")
    points, columns = points.ravel(), columns.ravel()
    known = engine.Block(0, 0, points.size, points, columns, seeds[columns],
                         {name: reference[name][points, columns] for name in METRIC_DTYPES})
    computed = []
    again = engine.execute(PAPER, configs, seeds, 3, chunk_size=8, completed=[known], progress=computed.append)
    assert same(again, reference) and sum(computed) == 33 - points.size


class FakeAccelerator:
    platform = "gpu"
    process_index = 0

    def __init__(self, memory):
        self.memory = memory

    def memory_stats(self):
        return {"bytes_limit": self.memory}


def test_chunks_are_sized_to_device_memory():
    small = static_of(make_config(gamma=0.5, alpha=0, n_train=200))
    large = static_of(make_config(gamma=0.5, alpha=0, n_train=2000, n_test=10000))
    assert bytes_per_run(large) > 5 * bytes_per_run(small)
    assert PAPER.bytes_per_run(small) == bytes_per_run(small)
    memory = 80 * 2**30
    size_of = lambda static, device: engine.default_chunk_size(bytes_per_run(static), device)
    for static in (small, large):
        size = size_of(static, FakeAccelerator(memory))
        assert size % 256 == 0 and 256 <= size <= engine.ACCELERATOR_CHUNK_CAP
        # The chunks in flight fit in the allowed share of memory.
        assert engine.ACCELERATOR_WORKERS * size * bytes_per_run(static) <= engine.MEMORY_FRACTION * memory
    assert size_of(large, FakeAccelerator(memory)) < size_of(small, FakeAccelerator(memory))
    assert size_of(small, FakeAccelerator(2**50)) == engine.ACCELERATOR_CHUNK_CAP
    assert size_of(small, jax.devices("cpu")[0]) == engine.CPU_CHUNK


@pytest.mark.parametrize("keyword, value", [("chunk_size", 0), ("chunk_size", 2.5), ("workers", 0),
                                            ("block_runs", -1), ("devices", 0), ("devices", 10**6)])
def test_bad_execution_settings_are_refused(keyword, value):
    with pytest.raises(ValueError, match=keyword):
        engine.execute(PAPER, fig2_points((4,)), np.arange(2), **{keyword: value})


def test_diverged_runs_are_flagged_counted_and_excluded_with_a_warning():
    # An MLP at learning rate 1e5 overflows: its loss becomes non-finite within a few steps.
    # (The paper's linear model does not: its logistic gradient is bounded.)
    with pytest.warns(RuntimeWarning, match="6 of 12 runs diverged"):
        result = mfh_sim.sweep(gamma=0.5, alpha=0, model="mlp", hidden=8, steps=20, n_test=100,
                               learning_rate=[0.1, 1e5], seeds=6, theory=False)
    assert result.teacher_diverged[1].all() and not result.teacher_diverged[0].any()
    assert np.isnan(result.kd_acc[1]).all() and np.isfinite(result.kd_acc[0]).all()
    assert result.n_diverged == 6
    with pytest.warns(RuntimeWarning, match="diverged"):
        rows = result.summary()
    assert rows[1]["n_diverged"] > 0 and np.isfinite(rows[0]["kd_acc_mean"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert "6 runs diverged" in str(result)
    # One point's summary over the finite seeds only: the diverged point has no finite seed.
    with pytest.warns(RuntimeWarning, match="6 of 6 seeds have a diverged model"):
        assert result.point(1).summary("kd_acc").n == 0


def test_summaries_compare_the_same_seeds_when_only_the_kd_student_diverges():
    # At learning rate 21 this MLP's KD student diverges on 1 of 8 seeds (fixed keys) while its
    # teacher and its no-KD twin do not: divergence caused by the treatment.  Every column must
    # then be summarised over the same 7 seeds, so the means' difference is the mean gain.
    knobs = dict(gamma=0.5, alpha=0, model="mlp", hidden=8, steps=20, n_test=100, learning_rate=21.0,
                 seeds=8, theory=False)
    result = mfh_sim.simulate(**knobs)
    assert np.isnan(result.kd_acc).sum() == 1 and np.isfinite(result.no_kd_acc).all()
    assert result.divergence == {"teacher_diverged": 0, "no_kd_diverged": 0, "kd_diverged": 1, "n_complete": 7}
    with pytest.warns(RuntimeWarning, match=r"learning_rate=21.0: 1 of 8 seeds have a diverged model "
                                            r"\(teacher 0, no-KD 0, KD 1\)"):
        kd, no_kd, gain = (result.summary(name) for name in ("kd_acc", "no_kd_acc", "delta"))
    assert kd.n == no_kd.n == gain.n == 7
    assert kd.mean - no_kd.mean == pytest.approx(gain.mean, abs=1e-12)
    assert "diverged: teacher 0, no-KD 0, KD 1 of 8 seeds" in str(result)
    # The sweep says a run diverged, its summary which knob to look at: both warnings expected.
    with pytest.warns(RuntimeWarning) as caught:
        (row,) = mfh_sim.sweep(**knobs).summary()
    messages = [str(warning.message) for warning in caught]
    assert any("1 of 8 runs diverged (non-finite loss) at 1 of 1 grid points" in m for m in messages), messages
    assert any("learning_rate=21" in m for m in messages), messages
    assert (row["n_complete"], row["kd_diverged"], row["no_kd_diverged"]) == (7, 1, 0)
    assert row["kd_acc_mean"] - row["no_kd_acc_mean"] == pytest.approx(row["delta_mean"], abs=1e-12)


# ------------------------------------------------------------------------------ any protocol
from mfh_sim.protocols import MetricSpec, Protocol  # noqa: E402


def _toy_run(static):
    def run(key, scale):
        return {"draw": jax.random.uniform(key, (3,)) * scale + static, "big": scale > 2}
    return run


#: A protocol that is not the paper's: per-run vector metrics, two static groups.
TOY = Protocol(
    name="toy", version=1,
    static_of=lambda point: point % 2,  # two compiled programs
    inputs_of=np.float32,
    identity_of=lambda point: 1000 + point,
    make_run=_toy_run,
    metrics=lambda static: {"draw": MetricSpec(np.float32, (3,)), "big": MetricSpec(np.bool_, ())},
    bytes_per_run=lambda static: 64,
    describe=lambda point: {"point": point},
    point_from_dict=lambda values: values["point"],
    result="",
)


def test_the_engine_runs_any_protocol_with_per_run_shapes_and_blocks():
    toy, points, seeds = TOY, [0, 1, 2, 3], np.array([4, 9, 2])
    blocks = []
    out = engine.execute(toy, points, seeds, root_seed=5, chunk_size=2, block_runs=2, on_block=blocks.append)
    assert out["draw"].shape == (4, 3, 3) and out["draw"].dtype == np.float32
    assert out["big"].dtype == np.bool_ and out["big"][3].all() and not out["big"][:3].any()
    for point in points:  # keys: fold_in(fold_in(PRNGKey(5), identity), seed)
        keys = engine.run_keys(toy.identity_of(point), seeds, 5)
        expected = np.stack([np.asarray(jax.random.uniform(k, (3,))) for k in keys]) * point + point % 2
        np.testing.assert_array_equal(out["draw"][point], expected.astype(np.float32))
    resumed = engine.execute(toy, points, seeds, root_seed=5, chunk_size=2, completed=blocks[::2])
    np.testing.assert_array_equal(resumed["draw"], out["draw"])


def test_table2_chunks_are_sized_to_device_memory():
    from mfh_sim.protocols.table2 import TABLE2, Table2Spec

    memory = 80 * 2**30
    paper_size = Table2Spec()
    size = engine.default_chunk_size(TABLE2.bytes_per_run(paper_size), FakeAccelerator(memory))
    assert 256 <= size <= engine.ACCELERATOR_CHUNK_CAP and size % 256 == 0
    assert engine.ACCELERATOR_WORKERS * size * TABLE2.bytes_per_run(paper_size) <= engine.MEMORY_FRACTION * memory
    bigger = Table2Spec(n_train=2000, n_test=10000)
    assert TABLE2.bytes_per_run(bigger) > 10 * TABLE2.bytes_per_run(paper_size)


@pytest.mark.parametrize("share", [False, True])
def test_large_chunks_give_the_default_chunks_numbers(share):
    # XLA on a CPU sums a vmapped batch of 11 or more runs in another order than a batch of 8, so
    # a chunk that wide used to change last bits (the bias gradient's sum over samples), which a
    # large learning rate grows into other accuracies. A CPU chunk now runs as vmaps of
    # engine.CPU_CHUNK rows, one after another: every chunk size gives the default's numbers.
    configs = [make_config(**fig2_point(o), **FAST, learning_rate=30.0) for o in (0, 10)]
    seeds = np.arange(24)
    default = engine.execute(PAPER, configs, seeds, 1, chunk_size=8, share=share)
    for chunk_size in (11, 24):
        wide = engine.execute(PAPER, configs, seeds, 1, chunk_size=chunk_size, share=share)
        for name in METRIC_DTYPES:
            np.testing.assert_array_equal(wide[name], default[name], err_msg=f"chunk_size={chunk_size}: {name}")
