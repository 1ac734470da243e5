import json
import warnings

import jax
import numpy as np
import pytest

import mfh_sim
from mfh_sim.config import make_config
from mfh_sim.protocols.paper import inputs_of, make_run, static_of

# Short trainings keep these tests fast; the properties checked do not depend on the step count.
FAST = dict(steps=50, n_test=200)


@pytest.fixture(scope="module")
def small_sweep():
    return mfh_sim.sweep(
        points=[dict(shared=o, a_only=4 - o, b_only=4 - o, unseen=o, dim_a=10, dim_b=12) for o in (0, 2, 4)],
        seeds=6, theory=False, **FAST)


def test_simulate_returns_per_seed_arrays_and_summaries():
    result = mfh_sim.simulate(gamma=0.5, alpha=1 / 3, seeds=8, theory=False, **FAST)
    for name in ("teacher_acc", "no_kd_acc", "kd_acc", "delta"):
        values = getattr(result, name)
        assert values.shape == (8,)
    for name in ("teacher_acc", "no_kd_acc", "kd_acc"):
        values = getattr(result, name)
        assert ((values >= 0) & (values <= 1)).all()
    np.testing.assert_allclose(result.delta, result.kd_acc.astype(float) - result.no_kd_acc)
    summary = result.summary("delta")
    assert summary.low <= summary.mean <= summary.high and summary.n == 8
    assert result.venn.gamma == 0.5 and result.alpha == pytest.approx(1 / 3)
    text = str(result)
    assert "KD gain" in text and "gamma=0.500" in text
    reproduce = result.reproduce()
    assert reproduce["config"]["shared"] == 10 and reproduce["root_seed"] == 0
    assert {"jax", "jaxlib", "flax", "optax", "numpy", "python", "backend"} <= set(result.versions)
    json.dumps(reproduce)  # the reproduction record is plain JSON


def test_same_seed_same_numbers_and_seed_subsets_agree():
    first = mfh_sim.simulate(gamma=0.5, alpha=1 / 3, seeds=6, theory=False, **FAST)
    again = mfh_sim.simulate(gamma=0.5, alpha=1 / 3, seeds=6, theory=False, chunk_size=4, workers=1, **FAST)
    subset = mfh_sim.simulate(gamma=0.5, alpha=1 / 3, seeds=[4, 1], theory=False, chunk_size=3, **FAST)
    for name in ("teacher_acc", "no_kd_acc", "kd_acc"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
        np.testing.assert_array_equal(getattr(subset, name), getattr(first, name)[[4, 1]])
    other_root = mfh_sim.simulate(gamma=0.5, alpha=1 / 3, seeds=6, root_seed=1, theory=False, **FAST)
    assert not np.array_equal(other_root.teacher_acc, first.teacher_acc)


def test_sweep_is_invariant_to_chunking_order_and_company(small_sweep):
    points = [dict(shared=o, a_only=4 - o, b_only=4 - o, unseen=o, dim_a=10, dim_b=12) for o in (4, 0)]
    reordered = mfh_sim.sweep(points=points, seeds=[5, 0, 3], theory=False, chunk_size=5, **FAST)
    for name in ("teacher_acc", "no_kd_acc", "kd_acc"):
        full = getattr(small_sweep, name)
        part = getattr(reordered, name)
        np.testing.assert_array_equal(part[0], full[2, [5, 0, 3]])
        np.testing.assert_array_equal(part[1], full[0, [5, 0, 3]])


def test_common_random_numbers_pair_the_grid(small_sweep):
    # x^b shows the same latents at every overlap, so with common random numbers the no-KD
    # student is the same draw at every grid point (as in the paper's Fig. 2) ...
    no_kd = small_sweep.no_kd_acc
    assert (no_kd == no_kd[0]).all()
    # ... and with independent draws per point it is not.
    independent = mfh_sim.sweep(
        points=[dict(shared=o, a_only=4 - o, b_only=4 - o, unseen=o, dim_a=10, dim_b=12) for o in (0, 2, 4)],
        seeds=6, theory=False, common_random_numbers=False, **FAST)
    assert not (independent.no_kd_acc == independent.no_kd_acc[0]).all()


def test_sweep_grid_axes_and_result_access(small_sweep):
    grid = mfh_sim.sweep(gamma=[0.5, 1.0], alpha=0.0, kd_weight=[0.0, 1.0], seeds=3, theory=False, **FAST)
    assert len(grid) == 4 and grid.kd_acc.shape == (4, 3)
    np.testing.assert_allclose(grid.gamma, [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(grid.kd_weight, [0.0, 1.0, 0.0, 1.0])
    # kd_weight = 0 makes the KD student the no-KD student (same init, same loss): identical.
    np.testing.assert_array_equal(grid.kd_acc[0], grid.no_kd_acc[0])
    rows = small_sweep.summary()
    assert len(rows) == 3 and {"gamma", "kd_acc_mean", "delta_low", "delta_high"} <= set(rows[0])
    point = small_sweep.point(1)
    np.testing.assert_array_equal(point.kd_acc, small_sweep.kd_acc[1])
    assert "gamma" in str(small_sweep)


def test_save_load_round_trip_without_pickle(tmp_path, small_sweep):
    path = small_sweep.save(tmp_path / "sweep.npz")
    loaded = mfh_sim.load(path)
    for name in ("teacher_acc", "no_kd_acc", "kd_acc", "kd_diverged"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(small_sweep, name))
    assert loaded.configs == small_sweep.configs and loaded.grid == small_sweep.grid
    np.testing.assert_array_equal(loaded.seeds, small_sweep.seeds)
    with np.load(path, allow_pickle=False) as data:  # loads with pickling disabled
        assert "meta" in data.files
    csv = small_sweep.to_csv(tmp_path / "sweep.csv").read_text().splitlines()
    assert len(csv) == 4 and csv[0].startswith("shared,")


def test_simulation_and_sweep_results_behave_alike(tmp_path, small_sweep):
    # summary(metric), to_pandas() and save() / mfh_sim.load on both result types.
    one = small_sweep.point(1)
    for metric in ("teacher_acc", "no_kd_acc", "kd_acc", "delta"):
        assert small_sweep.summary(metric)[1] == one.summary(metric)
    with pytest.raises(ValueError, match="metric='acc' is not allowed"):
        small_sweep.summary("acc")
    frame = one.to_pandas()
    assert len(frame) == 6 and frame["kd_acc"].tolist() == pytest.approx(one.kd_acc.tolist())
    assert frame.drop(columns="point").equals(
        small_sweep.to_pandas().query("point == 1").drop(columns="point").reset_index(drop=True)
        .drop(columns=[c for c in small_sweep.to_pandas().columns if c not in frame.columns]))
    loaded = mfh_sim.load(one.save(tmp_path / "one.npz"))
    assert isinstance(loaded, mfh_sim.SimulationResult) and loaded.config == one.config
    np.testing.assert_array_equal(loaded.kd_acc, one.kd_acc)
    assert str(loaded) == str(one)


def test_simulate_takes_a_config_and_sweep_takes_configs_as_points():
    config = make_config(gamma=0.5, alpha=1 / 3, **FAST)
    by_config = mfh_sim.simulate(config, seeds=3, theory=False)
    by_keywords = mfh_sim.simulate(gamma=0.5, alpha=1 / 3, seeds=3, theory=False, **FAST)
    np.testing.assert_array_equal(by_config.kd_acc, by_keywords.kd_acc)
    with pytest.raises(ValueError, match="not allowed with a SimConfig"):
        mfh_sim.simulate(config, n_train=100)
    with pytest.raises(ValueError, match="simulate runs one config"):
        mfh_sim.simulate(gamma=[0.5, 1.0], alpha=0.0)
    other = make_config(gamma=1.0, alpha=0.0, **FAST)
    grid = mfh_sim.sweep(points=[config, other], seeds=3, theory=False)
    assert grid.configs == [config, other]
    np.testing.assert_array_equal(grid.kd_acc[0], by_config.kd_acc)
    with pytest.warns(UserWarning, match="seeds=1: one seed gives a mean but no standard deviation"):
        single = mfh_sim.simulate(config, seeds=1, theory=False)
    assert "n/a" in str(single)


def test_sweeps_export_to_xarray_with_their_grid_as_axes():
    grid = mfh_sim.sweep(gamma=[0.25, 0.5], alpha=[0.0, 0.5], seeds=3, theory=False, **FAST)
    data = grid.to_xarray()
    assert dict(data.sizes) == {"gamma": 2, "alpha": 2, "seed": 3}
    for index, point in enumerate(grid.grid):
        np.testing.assert_array_equal(data.kd_acc.sel(**point).values, grid.kd_acc[index])
        np.testing.assert_array_equal(data.delta.sel(**point).values, grid.delta[index])
    assert float(data.kd_acc.mean("seed").sel(gamma=0.5, alpha=0.0)) == pytest.approx(grid.kd_acc[2].mean())
    # A grid that is not a full product keeps one point axis, its keywords as coordinates.
    ragged = mfh_sim.sweep(points=[dict(gamma=0.5, alpha=0.0), dict(gamma=1.0, alpha=0.0, kd_weight=0.5)],
                           seeds=2, theory=False, **FAST)
    flat = ragged.to_xarray()
    assert dict(flat.sizes) == {"point": 2, "seed": 2} and list(flat.gamma.values) == [0.5, 1.0]


def test_to_pandas_is_tidy(small_sweep):
    frame = small_sweep.to_pandas()
    assert len(frame) == 3 * 6
    assert {"point", "seed", "gamma", "kd_acc", "delta"} <= set(frame.columns)
    summary = small_sweep.to_pandas(tidy=False)
    assert len(summary) == 3


def test_kd_reduction_paper_is_half_weight_batchmean():
    # With two classes the paper's reduction equals batchmean at half the KD weight, exactly.
    paper = mfh_sim.simulate(gamma=0.5, alpha=1 / 3, seeds=4, theory=False, kd_weight=1.0, **FAST)
    half = mfh_sim.simulate(gamma=0.5, alpha=1 / 3, seeds=4, theory=False, kd_weight=0.5,
                            kd_reduction="batchmean", **FAST)
    np.testing.assert_array_equal(paper.kd_acc, half.kd_acc)


def test_fast_path_equals_generic_flax_path_in_the_full_protocol():
    config = make_config(gamma=0.5, alpha=1 / 3, fresh_student_sample=True, momentum=0.5, **FAST)
    keys = jax.random.split(jax.random.PRNGKey(7), 5)
    batch = lambda tree: jax.tree.map(lambda a: np.stack([a] * 5), tree)
    outputs = [jax.jit(jax.vmap(make_run(static_of(config), fast_path=fast)))(keys, batch(inputs_of(config)))
               for fast in (True, False)]
    for name in ("teacher_acc", "no_kd_acc", "kd_acc"):
        fast, generic = (np.asarray(getattr(o, name)) for o in outputs)
        # Float rounding can flip a test sample whose margin is ~1e-6 from zero: allow one.
        np.testing.assert_allclose(fast, generic, atol=1.0 / config.n_test + 1e-7)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(gamma=1.5, alpha=0.0), "gamma=1.5"),
        (dict(gamma=0.5, alpha=0.2, beta=0.2), "inconsistent"),
        (dict(gamma=0.5, alpha=1 / 3, n_train=0), "n_train=0"),
        (dict(gamma=0.5, alpha=1 / 3, n_test=-5), "n_test=-5"),
        (dict(gamma=0.5, alpha=1 / 3, seeds=0), "seeds=0"),
        (dict(gamma=0.5, alpha=1 / 3, seeds=[1, 1]), "seeds="),
        (dict(gamma=0.5, alpha=1 / 3, steps=0), "steps=0"),
        (dict(gamma=0.5, alpha=1 / 3, learning_rate=float("nan")), "learning_rate=nan"),
        (dict(gamma=0.5, alpha=1 / 3, learning_rate=-1.0), "learning_rate=-1.0"),
        (dict(gamma=0.5, alpha=1 / 3, momentum=1.0), "momentum=1.0"),
        (dict(gamma=0.5, alpha=1 / 3, temperature=0.0), "temperature=0.0"),
        (dict(gamma=0.5, alpha=1 / 3, kd_weight=-0.1), "kd_weight=-0.1"),
        (dict(gamma=0.5, alpha=1 / 3, model="transformer"), "model='transformer'"),
        (dict(gamma=0.5, alpha=1 / 3, kd_reduction="sum"), "kd_reduction='sum'"),
        (dict(gamma=0.5, alpha=1 / 3, root_seed=-1), "root_seed=-1"),
        (dict(gamma=0.5, alpha=1 / 3, dim_b=5), "dim_b=5"),
        (dict(gamma=0.5, alpha=1 / 3, shared=3), "exactly one way"),
        (dict(gamma=0.5, alpha=1 / 3, lr=0.1), "unknown parameter"),
        (dict(shared=2, a_only=1, b_only=1, n_visible=10), "only apply"),
        (dict(gamma=0.5, alpha=1 / 3, model="mlp", hidden=()), "hidden=()"),
        (dict(gamma=0.5, alpha=1 / 3, optimizer="adam", momentum=0.9), "momentum=0.9"),
    ],
)
def test_bad_input_is_a_clear_value_error(kwargs, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=message):
            mfh_sim.simulate(theory=False, **kwargs)


def test_bad_sweep_axes():
    with pytest.raises(ValueError, match=r"gamma=\[\]"):
        mfh_sim.sweep(gamma=[], alpha=0.0, seeds=2)
    with pytest.raises(ValueError, match="gamma=2.0"):
        mfh_sim.sweep(gamma=[0.5, 2.0], alpha=0.0, seeds=2)
