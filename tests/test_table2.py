"""The modality-general teacher and the Table 2 protocol (mfh_sim.protocols.table2, experiments.table2)."""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mfh_sim.commands.reproduce import write_table2
from mfh_sim.data import Sample
from mfh_sim.experiments import PAPER_ROWS, table2
from mfh_sim.init import linear_init, linear_init_size
from mfh_sim.losses import margin_gradient
from mfh_sim.protocols.table2 import (
    MODES,
    Table2Spec,
    fit_teachers_gd,
    restrict_to_selection,
    select_channels,
    selection_mask,
)
from mfh_sim.train import fit_linear, make_optimizer, margin_params

# A cheap protocol (fewer steps, smaller samples) for the properties that do not need the
# paper's settings; every test that uses it shares one compiled program.
CHEAP = dict(n_train=100, n_test=200, steps=100, permutations=20, algorithm1_steps=100)


@pytest.fixture(scope="module")
def cheap_result():
    return table2(seeds=3, rows=PAPER_ROWS[:2], **CHEAP)


# ------------------------------------------------------------------------------ selection
def test_selection_modes():
    salience = np.array([0.1, 0.9, 0.3, 1.0, 0.0, 0.5])
    np.testing.assert_array_equal(
        select_channels("algorithm1", 2, dim=6, salience=salience), [1, 3]
    )
    np.testing.assert_array_equal(
        select_channels("modality_specific", 2, dim=6, salience=salience), [0, 2, 4, 5]
    )
    np.testing.assert_array_equal(
        select_channels("ground_truth", 3, dim=6, shared=[4, 0, 2]), [0, 2, 4]
    )
    chosen = select_channels("random", 4, dim=6, key=jax.random.PRNGKey(0))
    assert chosen.size == 4 and np.unique(chosen).size == 4 and chosen.max() < 6


def test_random_selection_is_uniform_without_replacement():
    # Each channel is in a uniform 3-of-10 subset with probability 0.3; over 4000 draws the
    # frequency has binomial SE sqrt(0.3 * 0.7 / 4000) = 0.0072, tested at 5 SE.
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    template = jnp.zeros(10)
    masks = np.asarray(jax.vmap(
        lambda k: selection_mask("random", 3, key=k, salience=template)
    )(keys))
    assert np.all(masks.sum(axis=1) == 3)
    assert np.all(np.abs(masks.mean(axis=0) - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 4000))


@pytest.mark.parametrize(
    "args, kwargs, message",
    [(("algorithm1", 7), dict(dim=6, salience=np.zeros(6)), "count=7"),
     (("algorithm1", 0), dict(dim=6, salience=np.zeros(6)), "count=0"),
     (("modality_specific", 6), dict(dim=6, salience=np.zeros(6)), "count=6"),
     (("best", 2), dict(dim=6), "mode='best'"),
     (("random", 2), dict(dim=6), "key=None"),
     (("algorithm1", 2), dict(dim=6), "salience"),
     (("ground_truth", 2), dict(dim=6), "shared=None"),
     (("ground_truth", 2), dict(dim=6, shared=[6]), "shared=")],
)
def test_selection_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_channels(*args, **kwargs)


# ------------------------------------------------------------------------ the teachers
def _teacher_init(key, masks):
    # The production steps: one draw for fan-in dim (the package's linear initialiser, margin
    # form), restricted to each selection.
    dim = masks.shape[-1]
    weights, bias = margin_params(*linear_init(jax.random.normal(key, (linear_init_size(dim),)), dim))
    return restrict_to_selection(weights, bias, masks)


def test_teacher_init_uses_the_fan_in_of_the_selection():
    # Teachers reading k = 50, 10 and 2 channels: margin weights w_1 - w_0 of two U(-b, b)
    # weights, b = 1/sqrt(k), lie in [-2b, 2b] with variance 2 b^2 / 3.  The sample variance of
    # N draws of this triangular law (kurtosis 2.4) has relative SE sqrt(1.4 / N); tested at 5 SE.
    masks = np.zeros((3, 50), np.float32)
    masks[0] = 1.0
    masks[1, 5:15] = 1.0
    masks[2, [3, 40]] = 1.0
    weights, biases = jax.jit(jax.vmap(lambda k: _teacher_init(k, jnp.asarray(masks))))(
        jax.random.split(jax.random.PRNGKey(2), 3000)
    )
    weights, biases = np.asarray(weights), np.asarray(biases)
    assert np.all(weights[:, masks == 0] == 0.0)
    for index, k in enumerate((50, 10, 2)):
        bound = 1.0 / np.sqrt(k)
        values = np.concatenate([weights[:, index, masks[index] > 0].ravel(), biases[:, index]])
        assert np.abs(values).max() <= 2 * bound + 1e-6
        assert abs(values.var() / (2 * bound**2 / 3) - 1) < 5 * np.sqrt(1.4 / values.size)


def test_masked_teacher_is_a_teacher_on_the_selected_channels():
    key = jax.random.PRNGKey(3)
    x = jax.random.normal(key, (80, 12))
    labels = (x[:, 0] - x[:, 4] + 0.3 * x[:, 7] > 0).astype(jnp.int32)
    selected = np.array([0, 4, 9])
    mask = np.zeros((1, 12), np.float32)
    mask[0, selected] = 1.0
    # fit_teachers_gd trains row 0 of its masks as the regular teacher from init[0], as given.
    start_w, start_b = _teacher_init(jax.random.fold_in(key, 1), jnp.asarray(mask))
    init = ((start_w[0], start_b[0]), (start_w[0], start_b[0]), None)
    spec = Table2Spec(dim_a=12, steps=200)
    data = Sample(x, x, labels, None)
    masked_w, masked_b, _ = jax.jit(lambda m: fit_teachers_gd(data, m, init, spec))(jnp.asarray(mask))
    targets = labels.astype(jnp.float32)[:, None]
    direct_w, direct_b, _ = jax.jit(lambda w, b: fit_linear(
        x[:, selected], w, b, loss_gradient=lambda m: margin_gradient(m, targets), form="margin",
        optimizer=make_optimizer("sgd", 0.1), steps=200,
    ))(start_w[0, selected][:, None], start_b[:1])
    np.testing.assert_allclose(np.asarray(masked_w[0, selected]), np.asarray(direct_w[:, 0]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(masked_b[0]), float(direct_b[0]), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(masked_w[0])[mask[0] == 0] == 0.0)


# --------------------------------------------------------------------------- table2
def test_keys_come_from_identity(cheap_result):
    # The row (20, 10) alone, for seeds 2 and 0 only, in chunks of another size, with fewer
    # modes: the same numbers as inside the two-row, three-seed, all-mode run.
    alone = table2(seeds=[2, 0], rows=[PAPER_ROWS[1]], modes=("ground_truth",),
                   chunk_size=3, workers=1, **CHEAP)
    column = cheap_result.modes.index("ground_truth")
    for name in ("regular_teacher", "no_kd", "regular_kd"):
        np.testing.assert_array_equal(getattr(alone, name)[0], getattr(cheap_result, name)[1, [2, 0]])
    np.testing.assert_array_equal(alone.general_teacher[0, 0],
                                  cheap_result.general_teacher[1, column, [2, 0]])
    np.testing.assert_array_equal(alone.general_kd[0, 0], cheap_result.general_kd[1, column, [2, 0]])
    assert np.isnan(alone.recovery).all()  # no salience mode, so Algorithm 1 did not run


def test_result_shapes_and_ranges(cheap_result):
    r = cheap_result
    assert r.modes == MODES and r.counts == (10, 10)
    assert r.regular_teacher.shape == (2, 3) and r.general_kd.shape == (2, len(MODES), 3)
    assert r.salience.shape == (2, 3, 50)
    for values in (r.regular_teacher, r.no_kd, r.regular_kd, r.general_teacher, r.general_kd,
                   r.recovery):
        assert np.all((values >= 0) & (values <= 1))
    np.testing.assert_allclose(r.gammas, (0.25, 1 / 3))
    np.testing.assert_allclose(r.chance_recovery, (0.2, 0.2))
    np.testing.assert_array_equal(r.shared_channels(0), np.arange(10))


def test_csv_markdown_and_text(cheap_result, tmp_path):
    path = cheap_result.to_csv(tmp_path / "t.csv")
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * len(MODES)
    first = rows[0]
    assert first["mode"] == "random" and first["a_only"] == "30" and first["shared"] == "10"
    assert float(first["regular_teacher"]) == pytest.approx(cheap_result.regular_teacher[0].mean())
    markdown = cheap_result.to_markdown()
    assert markdown.count("\n") == 2 + 2 * len(MODES)
    percent = f"{100 * cheap_result.regular_teacher[0].mean():.2f}"
    assert percent in markdown and percent in str(cheap_result)


def test_write_table2(tmp_path):
    written = write_table2(tmp_path / "figures", seeds=2, **CHEAP)
    names = sorted(p.name for p in written)
    assert names == ["table2.csv", "table2.md", "table2_salience.pdf", "table2_salience.png"]
    assert all(p.stat().st_size > 0 for p in written)
    assert "| ground_truth | 0.25 |" in (tmp_path / "figures" / "table2.md").read_text()


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(modes=("best",)), "mode='best'"),
     (dict(modes=()), "modes=()"),
     (dict(modes=("random", "random")), "at most once"),
     (dict(permutations=0), "permutations=0"),
     (dict(count=51), "count=51"),
     (dict(count=50), "count=50"),
     (dict(rows=[(45, 10)]), "dim_a"),
     (dict(rows=[(10, 0)]), "shared=0"),
     (dict(rows=[(10,)]), "rows="),
     (dict(algorithm1_data="test"), "algorithm1_data='test'"),
     (dict(seeds=0), "seeds=0"),
     (dict(root_seed=-1), "root_seed=-1")],
)
def test_table2_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        table2(**kwargs)


def test_modality_general_teacher_teaches_better():
    # The paper's protocol (1000 steps, n = 200, M = 100) on the row (A, G) = (10, 10), 8 seeds.
    # Measured over 100 seeds: mod.-general KD - regular KD = +2.4 points (sd 1.0) for the
    # ground-truth and Algorithm 1 teachers, teacher gap -16 points (sd 2), recovery 0.99: with
    # 8 seeds the gain's SE is 1.0 / sqrt(8) = 0.35 points, so its 95% t-interval (half-width
    # 2.36 SE = 0.85) excludes zero by ~7 SE, and the teacher gap's by ~20 SE.
    r = table2(seeds=8, rows=[(10, 10)], modes=("ground_truth", "algorithm1"))
    for mode in r.modes:
        (gain,) = r.general_minus_regular_kd(mode)
        assert gain.low > 0, (mode, gain)
        (gap,) = r.difference("general_teacher", "regular_teacher", mode)
        assert gap.high < 0, (mode, gap)
    (no_kd_gain,) = r.difference("general_kd", "no_kd", "ground_truth")
    assert no_kd_gain.low > 0
    (recovery,) = r.summary("recovery")
    assert recovery.mean >= 0.9


def test_salience_figure_marks_the_channels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mfh_sim.plots import plot_salience

    salience = np.linspace(0, 1, 24).reshape(4, 6)
    figure = plot_salience([salience, salience[0]], [[0, 1], [2]], specific=[[2], []],
                           titles=["four seeds", "one seed"])
    top, bottom = figure.axes[:2]
    assert len(top.patches) == 6 and len(bottom.patches) == 6
    colours = [matplotlib.colors.to_hex(p.get_facecolor()) for p in top.patches]
    assert colours[0] == colours[1] != colours[2] != colours[3]
    np.testing.assert_allclose([p.get_height() for p in top.patches], salience.mean(axis=0))
    plt.close(figure)
    with pytest.raises(ValueError, match="shared channels"):
        plot_salience(salience[0], [7])


def test_table2_hyperplane_is_the_decisive_mask():
    # The run uses `layout.decisive` as w; that is what `data.hyperplane` gives for 'ones'.
    from mfh_sim.data import hyperplane
    from mfh_sim.protocols.table2 import Table2Spec, row_inputs

    layout = row_inputs(20, 10, Table2Spec()).layout
    w = hyperplane(jax.random.PRNGKey(0), layout)
    np.testing.assert_array_equal(np.asarray(w), layout.decisive)
    assert layout.decisive.sum() == 30 and layout.decisive.shape == (50,)


# ------------------------------------------------------------------------------ the engine
def test_table2_runs_through_the_engine_and_resumes_from_its_directory(cheap_result, tmp_path, monkeypatch, capsys):
    # Table 2 is a protocol of the generic engine: keys are fold_in(fold_in(root, row_identity),
    # seed), and table2(out=DIR) stores blocks and resumes like sweep(out=DIR).
    from mfh_sim import engine, store
    from mfh_sim.experiments import table2 as entry
    from mfh_sim.experiments.table2 import Table2Result
    from mfh_sim.protocols.table2 import TABLE2, Table2Spec, row_identity, table2_point
    from mfh_sim.results import load

    spec = Table2Spec(**CHEAP, modes=MODES)
    point = table2_point(*PAPER_ROWS[1], spec)
    assert TABLE2.identity_of(point) == row_identity(*PAPER_ROWS[1], spec)
    assert TABLE2.point_from_dict(TABLE2.describe(point)) == point
    monkeypatch.setattr(engine, "CPU_BLOCK_RUNS", 2)  # blocks of one chunk of 2 runs
    out = tmp_path / "t2"
    stored = entry(seeds=3, rows=PAPER_ROWS[:2], out=out, chunk_size=2, **CHEAP)
    for name in ("regular_teacher", "no_kd", "regular_kd", "general_teacher", "general_kd", "salience"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(cheap_result, name))
    files = sorted((out / store.BLOCKS).glob("*.npz"))
    assert len(files) == 3  # 6 runs in blocks of 2
    files[1].unlink()
    computed = []
    original = engine.execute

    def counting(*args, **kwargs):
        user = kwargs.pop("progress")
        return original(*args, progress=lambda n: (computed.append(n), user(n)), **kwargs)

    monkeypatch.setattr(engine, "execute", counting)
    resumed = entry(seeds=3, rows=PAPER_ROWS[:2], out=out, chunk_size=2, **CHEAP)
    assert sum(computed) == 2
    loaded = load(out)
    assert isinstance(loaded, Table2Result) and loaded.rows == tuple(PAPER_ROWS[:2])
    for result in (resumed, loaded):
        np.testing.assert_array_equal(result.general_kd, cheap_result.general_kd)
        assert result.to_markdown() == cheap_result.to_markdown()
    with pytest.raises(store.ResultsMismatchError, match="root_seed 0 there, 1 here"):
        entry(seeds=3, rows=PAPER_ROWS[:2], out=out, root_seed=1, chunk_size=2, **CHEAP)
    # `mfh-sim show` prints a Table 2 directory and refuses to plot it in one line.
    from mfh_sim.cli import main

    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "6 of 6 runs stored" in shown and "mod.-general" in shown
    assert main(["show", str(out), "--plot", str(tmp_path / "gain.png")]) == 2
    assert "holds Table 2 results" in capsys.readouterr().err


# ------------------------------------------------------------------------ converged ERM mode
def _scipy_fit(x, y, t, *, l2, k=0.0):
    """Float64 BFGS minimiser of mean(CE + k KL(sigma(t) || sigma(h))) + l2/2 ||theta||^2 (T = 1),
    written independently of mfh_sim.erm (the pattern of tests/test_erm.py)."""
    from scipy.optimize import minimize

    x, y, t = (np.asarray(a, np.float64) for a in (x, y, t))
    q = 1.0 / (1.0 + np.exp(-t))

    def f(params):
        theta, b = params[:-1], params[-1]
        h = x @ theta + b
        ce = np.logaddexp(0.0, h) - y * h
        soft = q * np.logaddexp(0.0, -h) + (1 - q) * np.logaddexp(0.0, h)  # KL up to a constant
        return np.mean(ce + k * soft) + 0.5 * l2 * theta @ theta

    return minimize(f, np.zeros(x.shape[1] + 1), method="BFGS", options={"gtol": 1e-9, "maxiter": 10_000}).x


ERM = dict(n_train=60, n_test=300, permutations=10, algorithm1_steps=50, dim_a=12, dim_b=10,
           optimizer="erm", l2=0.05)


def test_table2_erm_matches_independent_minimisers_and_is_deterministic():
    # optimizer='erm' against float64 BFGS minimisers (tests/test_erm.py's, written independently of
    # erm.py) fitted on the run's own draws, rebuilt here from the protocol's key derivation.
    from mfh_sim.data import sample, split
    from mfh_sim.engine import run_keys
    from mfh_sim.protocols.table2 import Table2Spec, row_identity, row_inputs

    rows, seeds = [(4, 3)], [0, 1]
    result = table2(seeds=seeds, rows=rows, modes=("ground_truth",), **ERM)
    again = table2(seeds=seeds, rows=rows, modes=("ground_truth",), **ERM)
    for name in ("regular_teacher", "no_kd", "regular_kd", "general_teacher", "general_kd"):
        np.testing.assert_array_equal(getattr(result, name), getattr(again, name))
        assert np.isfinite(getattr(result, name)).all(), name
    spec = Table2Spec(**{k: v for k, v in ERM.items()}, modes=("ground_truth",))
    inputs = row_inputs(4, 3, spec)
    n, n_test = ERM["n_train"], ERM["n_test"]
    for seed, key in zip(seeds, run_keys(row_identity(4, 3, spec), np.asarray(seeds), 0), strict=True):
        keys = jax.random.split(jnp.asarray(key), 7)
        teachers, students, test = split(
            sample(keys[1], inputs.layout, inputs.layout.decisive, 2 * n + n_test), (n, n, n_test)
        )
        shared = np.asarray(inputs.shared_mask, np.float64)
        labels = np.asarray(test.labels)

        def accuracy(fit, x, labels=labels):
            return np.mean(((np.asarray(x, np.float64) @ fit[:-1] + fit[-1]) > 0) == labels)

        regular = _scipy_fit(teachers.x_a, teachers.labels, np.zeros(n), l2=ERM["l2"])
        general = _scipy_fit(np.asarray(teachers.x_a) * shared, teachers.labels, np.zeros(n), l2=ERM["l2"])
        x_a = np.asarray(students.x_a, np.float64)
        expected = {
            "regular_teacher": accuracy(regular, test.x_a),
            "general_teacher": accuracy(general, np.asarray(test.x_a) * shared),
            "no_kd": accuracy(_scipy_fit(students.x_b, students.labels, np.zeros(n), l2=ERM["l2"]), test.x_b),
            # Table 2's KD loss: CE + KL with weight 1, 'paper' reduction (effective k = 1/2), T = 1.
            "regular_kd": accuracy(_scipy_fit(students.x_b, students.labels, x_a @ regular[:-1] + regular[-1],
                                              l2=ERM["l2"], k=0.5), test.x_b),
            "general_kd": accuracy(_scipy_fit(students.x_b, students.labels,
                                              (x_a * shared) @ general[:-1] + general[-1],
                                              l2=ERM["l2"], k=0.5), test.x_b),
        }
        for name, value in expected.items():
            got = getattr(result, name)[0, 0, seed] if name.startswith("general") else getattr(result, name)[0, seed]
            # float32 vs float64 minimisers may disagree on a test point sitting on the boundary.
            assert abs(got - value) <= 1.0 / n_test + 1e-9, (name, seed, got, value)


def test_table2_erm_shares_the_sgd_runs_draws_and_leaves_them_alone():
    from mfh_sim.protocols.table2 import TABLE2, Table2Spec, row_identity, table2_point

    sgd, ridge = Table2Spec(), Table2Spec(optimizer="erm", l2=0.01)
    assert row_identity(20, 10, sgd) == row_identity(20, 10, ridge)
    # The default spec is described (stored) exactly as before the option existed.
    assert "optimizer" not in TABLE2.describe(table2_point(20, 10, sgd))["spec"]
    described = TABLE2.describe(table2_point(20, 10, ridge))
    assert described["spec"]["optimizer"] == "erm"
    assert TABLE2.point_from_dict(described).spec == ridge
    assert TABLE2.point_from_dict(TABLE2.describe(table2_point(20, 10, sgd))).spec == sgd


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(optimizer="adam"), "optimizer='adam'"),
     (dict(optimizer="erm"), "l2=0.0 is not allowed with optimizer='erm'"),
     (dict(optimizer="erm", l2=-1.0), "l2=-1.0"),
     (dict(optimizer="erm", l2=float("nan")), "l2=nan"),
     (dict(l2=0.1), "l2=0.1 is not allowed with optimizer='sgd'")],
)
def test_table2_erm_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        table2(**kwargs)
