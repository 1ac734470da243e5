"""One palette and one figure saver: every figure wears the same colours for the teacher, the
no-KD and the KD student, and a saved figure is the same bytes on a rerun."""

import matplotlib.pyplot as plt  # off-screen: tests/conftest.py sets MPLBACKEND=Agg
import numpy as np
import pytest
from matplotlib.colors import to_hex

from mfh_sim.config import make_config
from mfh_sim.plots import plot_curves, plot_venn, save_figure, theory_vs_simulation
from mfh_sim.plots.style import COLOURS, MODALITY_COLOURS
from mfh_sim.results import SweepResult

KEYS = ("teacher_acc", "no_kd_acc", "kd_acc")


@pytest.fixture
def small_sweep():
    """A hand-made three-point result (no simulation: the plots only read arrays)."""
    rng = np.random.default_rng(0)
    configs = [make_config(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25, dim_b=50) for o in (2, 4, 8)]
    arrays = {key: rng.uniform(0.6, 0.7, (3, 5)) for key in KEYS}
    theory = {key: np.full(3, 0.65) for key in KEYS}
    theory.update({f"{key}_limit": np.full(3, 0.66) for key in KEYS})
    theory["delta"], theory["delta_limit"] = np.zeros(3), np.zeros(3)
    return SweepResult(configs=configs, grid=[{} for _ in configs], arrays=arrays, seeds=np.arange(5), root_seed=0,
                       theory=theory)


def _line_colours(figure) -> dict[str, str]:
    """Legend label -> colour (hex) of the first line with that label."""
    out: dict[str, str] = {}
    for axis in figure.axes:
        for line in axis.get_lines():
            out.setdefault(line.get_label(), to_hex(line.get_color()))
    return out


def test_curves_and_theory_figures_share_the_palette(small_sweep):
    curves = _line_colours(plot_curves(small_sweep, "gamma"))
    theory = _line_colours(theory_vs_simulation(small_sweep, "gamma"))
    expected = {key: to_hex(COLOURS[key]) for key in KEYS}
    assert curves["teacher"] == theory["teacher (finite-n theory)"] == expected["teacher_acc"]
    assert curves["student, KD"] == theory["KD student (finite-n theory)"] == expected["kd_acc"]
    assert curves["student, no KD"] == theory["no-KD student (finite-n theory)"] == expected["no_kd_acc"]
    plt.close("all")


def test_venn_drawing_colours_the_teacher_modality_as_the_teacher():
    figure = plot_venn(make_config(shared=4, a_only=6, b_only=6).venn)
    edges = [to_hex(p.get_edgecolor()) for p in figure.axes[0].patches]
    assert edges == [to_hex(MODALITY_COLOURS["a"]), to_hex(MODALITY_COLOURS["b"])]
    assert MODALITY_COLOURS["a"] == COLOURS["teacher_acc"]
    plt.close("all")


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_save_figure_writes_the_same_bytes_twice(tmp_path, suffix):
    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0], color=COLOURS["kd_acc"])
    first = save_figure(figure, tmp_path / f"one{suffix}", dpi=50)
    second = save_figure(figure, tmp_path / f"two{suffix}", dpi=50, close=True)
    assert first.read_bytes() == second.read_bytes() and first.stat().st_size > 100
    if suffix == ".pdf":
        assert b"CreationDate" not in first.read_bytes()


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("x.jpg", {}, "path="), ("x.png", {"dpi": 0}, "dpi=0"),
])
def test_save_figure_refuses_bad_input(tmp_path, name, kwargs, message):
    figure, _ = plt.subplots()
    with pytest.raises(ValueError, match=message):
        save_figure(figure, tmp_path / name, **kwargs)
    plt.close(figure)
