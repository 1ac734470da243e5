"""The results directory: manifest, atomic checksummed chunks, refusal of other sweeps, loading
without pickle, and the ``sweep`` / ``show`` commands that use it."""

import json
from pathlib import Path

import numpy as np
import pytest

import mfh_sim
from mfh_sim import engine, store
from mfh_sim.cli import main
from mfh_sim.commands.sweep import parse_values
from mfh_sim.protocols.paper import METRIC_DTYPES, PAPER

FAST = dict(steps=60, n_test=200)
# Independent draws per point: no two points share a training, so every run is a row of its own
# and a block holds consecutive seeds of one point (packs are tested below).
SWEEP = dict(gamma=[0.25, 0.5, 1.0], alpha=0.0, seeds=7, theory=False, chunk_size=8, common_random_numbers=False,
             **FAST)


@pytest.fixture
def small_blocks(monkeypatch):
    # Blocks of 16 rows: the 21-run sweep is stored in two chunk files.
    monkeypatch.setattr(engine, "CPU_BLOCK_RUNS", 16)


def same(a, b):
    return all(np.array_equal(a.arrays[k], b.arrays[k], equal_nan=True) for k in METRIC_DTYPES)


def chunk_files(directory):
    return sorted((directory / store.BLOCKS).glob("*.npz"))


def test_directory_holds_manifest_and_checksummed_chunks_that_load_without_pickle(tmp_path, small_blocks):
    out = tmp_path / "run"
    result = mfh_sim.sweep(**SWEEP, out=out)
    manifest = json.loads((out / store.MANIFEST).read_text())
    assert manifest["root_seed"] == 0 and manifest["seeds"] == list(range(7))
    assert [c["steps"] for c in manifest["points"]] == [60, 60, 60]
    assert manifest["protocol"] == {"name": "paper", "version": PAPER.version} and manifest["package_version"]
    assert manifest["versions"]["backend"] == "cpu" and "jax" in manifest["versions"]
    files = chunk_files(out)
    assert len(files) == 2
    assert not list(out.rglob("*.tmp"))  # nothing half-written is left behind
    for file in files:
        digest = file.name.split(".")[1]
        assert store._sha256(file.read_bytes()) == digest
        with np.load(file, allow_pickle=False) as archive:  # plain arrays only
            assert all(archive[name].dtype != object for name in archive.files)
    assert same(mfh_sim.load(out), result)
    assert mfh_sim.load(out).grid == result.grid


def test_a_different_sweep_is_refused(tmp_path):
    out = tmp_path / "run"
    mfh_sim.sweep(**SWEEP, out=out)
    before = sorted(p.name for p in chunk_files(out))
    for change, words in ((dict(steps=61), "steps=60 there, 61 here"), (dict(root_seed=1), "root_seed 0 there, 1 here"),
                          (dict(common_random_numbers=True), "common_random_numbers")):
        with pytest.raises(store.ResultsMismatchError, match=words):
            mfh_sim.sweep(**{**SWEEP, **change}, out=out)
    with pytest.raises(ValueError, match="resume=False"):
        mfh_sim.sweep(**SWEEP, out=out, resume=False)
    assert sorted(p.name for p in chunk_files(out)) == before  # nothing was mixed in


def test_more_seeds_run_only_the_new_ones_and_equal_a_fresh_run(tmp_path, small_blocks, monkeypatch):
    # 7 seeds, then 12 (5 new, one of them out of order), then the 7 again (nothing runs):
    # every number equals a fresh run with all the seeds, and only the new runs are computed.
    out = tmp_path / "run"
    mfh_sim.sweep(**SWEEP, out=out)
    before = set(chunk_files(out))
    seeds = [0, 1, 2, 3, 4, 5, 6, 9, 7, 8, 10, 11]
    computed = []
    execute = engine.execute

    def counting(*args, **kwargs):
        kwargs["progress"] = lambda n, bar=kwargs["progress"]: (computed.append(n), bar(n))
        return execute(*args, **kwargs)

    monkeypatch.setattr(engine, "execute", counting)
    grown = mfh_sim.sweep(**{**SWEEP, "seeds": seeds}, out=out)
    assert sum(computed) == 3 * 5
    monkeypatch.undo()
    fresh = mfh_sim.sweep(**{**SWEEP, "seeds": seeds})
    assert same(grown, fresh)
    assert set(chunk_files(out)) > before  # the old blocks are kept and still valid
    manifest = json.loads((out / store.MANIFEST).read_text())
    assert manifest["seeds"] == seeds
    loaded = mfh_sim.load(out)
    assert list(loaded.seeds) == seeds and same(loaded, fresh)
    again = mfh_sim.sweep(**SWEEP, out=out)  # the first 7 seeds: read back, nothing computed
    assert same(again, mfh_sim.sweep(**SWEEP))


def test_foreign_directories_and_edited_manifests_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="non-empty directory"):
        mfh_sim.sweep(**SWEEP, out=tmp_path)
    out = tmp_path / "run"
    mfh_sim.sweep(**SWEEP, out=out)
    manifest = json.loads((out / store.MANIFEST).read_text())
    manifest["root_seed"] = 5
    (out / store.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="fingerprint"):
        mfh_sim.load(out)


def test_an_altered_chunk_is_detected_set_aside_and_recomputed(tmp_path, small_blocks):
    out = tmp_path / "run"
    clean = mfh_sim.sweep(**SWEEP, out=out)
    victim = chunk_files(out)[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same length, wrong checksum
    victim.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="checksum mismatch"):
        again = mfh_sim.sweep(**SWEEP, out=out)
    assert same(again, clean)
    assert (victim.parent / (victim.name + ".corrupt")).exists()
    rows = victim.name.split(".")[0]
    assert [f for f in chunk_files(out) if f.name.split(".")[0] == rows]  # its rows were written again
    assert same(mfh_sim.load(out), clean)


def test_a_chunk_from_another_directory_is_not_loaded(tmp_path, small_blocks):
    first, second = tmp_path / "a", tmp_path / "b"
    mfh_sim.sweep(**SWEEP, out=first)
    mfh_sim.sweep(**{**SWEEP, "root_seed": 1}, out=second)
    stray = chunk_files(second)[0]
    for file in chunk_files(first):
        if file.name.split(".")[0] == stray.name.split(".")[0]:
            file.unlink()
    (first / store.BLOCKS / stray.name).write_bytes(stray.read_bytes())
    with pytest.warns(RuntimeWarning, match="another sweep"):
        with pytest.raises(ValueError, match="unfinished"):
            mfh_sim.load(first)


def test_an_unfinished_directory_loads_its_finished_points_on_request(tmp_path, small_blocks):
    out = tmp_path / "run"
    mfh_sim.sweep(**SWEEP, out=out)
    chunk_files(out)[-1].unlink()  # rows 16..20: points 2 (seeds 2..6)
    with pytest.raises(ValueError, match="16 of 21 runs"):
        mfh_sim.load(out)
    partial = mfh_sim.load(out, partial=True)
    assert len(partial) == 2 and partial.kd_acc.shape == (2, 7)


def test_packed_runs_resume_and_grow_to_the_numbers_of_a_fresh_run(tmp_path, small_blocks):
    # Common random numbers: the three points share their no-KD student and run as one pack, a
    # block holds every point for some seeds.  An interrupted directory (its last block lost)
    # and more seeds give the numbers of a fresh run, computing only what is missing.
    packed = {**SWEEP, "common_random_numbers": True, "chunk_size": 2}
    out = tmp_path / "run"
    mfh_sim.sweep(**packed, out=out)
    files = chunk_files(out)
    assert len(files) == 2
    files[-1].unlink()
    seeds = [0, 1, 2, 3, 4, 5, 6, 9, 7, 8]
    grown = mfh_sim.sweep(**{**packed, "seeds": seeds}, out=out)
    assert same(grown, mfh_sim.sweep(**{**packed, "seeds": seeds}))
    assert same(mfh_sim.load(out), grown)


def test_range_syntax():
    assert parse_values("gamma", "0:1:11", "float") == [round(0.1 * i, 12) for i in range(11)]
    assert parse_values("gamma", "0.5", "float") == [0.5]
    assert parse_values("n_train", "100,200", "int") == [100, 200]
    assert parse_values("hidden", "64x64,32", "text") == [(64, 64), (32,)]
    for bad, kind in (("0:1", "float"), ("0:1:0", "float"), ("1.5", "int"), ("a", "float")):
        with pytest.raises(ValueError, match="--"):
            parse_values("n_train" if kind == "int" else "gamma", bad, kind)


def test_cli_sweep_then_show_with_a_plot(tmp_path, capsys):
    out = tmp_path / "x"
    args = ["sweep", "--gamma", "0.25,0.5,1", "--alpha", "0", "--seeds", "7", "--steps", "60", "--n-test", "200",
            "--chunk-size", "8", "--no-theory", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "3 grid points x 7 seeds" in printed.out and "runs" in printed.err  # table and progress bar
    assert main(args + ["--quiet"]) == 0  # re-running a finished sweep only loads it
    plot = tmp_path / "gain.png"
    assert main(["show", str(out), "--plot", str(plot), "--csv", str(tmp_path / "s.csv")]) == 0
    shown = capsys.readouterr().out
    assert "21 of 21 runs stored" in shown and "KD gain" in shown
    assert plot.stat().st_size > 5000 and len((tmp_path / "s.csv").read_text().splitlines()) == 4
    # The table shows the same numbers as the sweep's result.
    result = mfh_sim.load(out)
    assert f"{100 * result.summary()[2]['kd_acc_mean']:8.2f}" in shown
    assert main(["sweep", "--gamma", "0.25,0.5,1", "--alpha", "0", "--seeds", "7", "--steps", "61", "--n-test", "200",
                 "--no-theory", "--out", str(out)]) == 2
    assert "different sweep" in capsys.readouterr().err
    assert main(["show", str(tmp_path)]) == 2


def test_cli_reports_diverged_runs(tmp_path, capsys):
    # An MLP at learning rate 1e5 diverges (see tests/test_engine.py); both commands say so.
    out = tmp_path / "d"
    assert main(["sweep", "--gamma", "0.5", "--alpha", "0", "--model", "mlp", "--hidden", "8", "--steps", "20",
                 "--n-test", "100", "--learning-rate", "0.1,1e5", "--seeds", "4", "--no-theory", "--no-progress",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "warning: 4 of 8 runs diverged" in printed.err and "4 runs diverged" in printed.out
    assert main(["show", str(out)]) == 0
    printed = capsys.readouterr()
    assert "diverged" in printed.err and "4 runs diverged" in printed.out


# ------------------------------------------------------------------------------ versions
LEGACY = Path(__file__).parent / "data" / "legacy_store"
#: The legacy store: mfh_sim 0.1.0's sweep(gamma=[0, 1], alpha=0, seeds=3, steps=5, n_test=20,
#: theory=False, out=...), results format 1 (blocks in chunks/, no protocol recorded).  (gamma = 0
#: with alpha = 0 is 0/0 and refused today: the same two diagrams are given by their counts.)
LEGACY_SWEEP = dict(points=[dict(shared=0, a_only=0, b_only=20), dict(shared=20, a_only=0, b_only=0)], seeds=3,
                    steps=5, n_test=20, theory=False)


def test_the_manifest_records_protocol_and_package_version_and_a_mismatch_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "run"
    mfh_sim.sweep(**SWEEP, out=out)
    manifest = json.loads((out / store.MANIFEST).read_text())
    assert manifest["protocol"] == {"name": "paper", "version": PAPER.version}
    assert manifest["package_version"] == store.package_version()
    assert manifest["settings"] == {"common_random_numbers": False}
    before = sorted(p.name for p in chunk_files(out))
    monkeypatch.setattr(store, "package_version", lambda: "99.0")
    with pytest.raises(store.ResultsMismatchError,
                       match=rf"mfh_sim {manifest['package_version']} there, 99.0 here.*start fresh"):
        mfh_sim.sweep(**SWEEP, out=out)
    monkeypatch.undo()
    from mfh_sim import simulation

    version = PAPER.version
    monkeypatch.setattr(simulation, "paper_protocol", lambda crn, kernel: PAPER._replace(version=version + 1))
    with pytest.raises(store.ResultsMismatchError,
                       match=f"protocol 'paper' version {version} there, {version + 1} here"):
        mfh_sim.sweep(**SWEEP, out=out)
    assert sorted(p.name for p in chunk_files(out)) == before  # nothing was mixed in


def test_a_store_of_results_format_1_loads_but_is_not_resumed(tmp_path):
    import shutil

    from mfh_sim.results import load

    legacy = load(LEGACY)
    fresh = mfh_sim.sweep(**LEGACY_SWEEP)
    assert legacy.grid == [{"gamma": 0.0}, {"gamma": 1.0}] and legacy.configs == fresh.configs
    assert legacy.teacher_acc.shape == fresh.teacher_acc.shape
    # What format 1 wrote (protocol version 1's draws, which the current protocol no longer makes).
    np.testing.assert_allclose(legacy.teacher_acc, [[0.60, 0.40, 0.45], [0.50, 0.40, 0.60]], atol=1e-6)
    np.testing.assert_allclose(legacy.kd_acc, [[0.45, 0.60, 0.70], [0.45, 0.60, 0.70]], atol=1e-6)
    copy = tmp_path / "legacy"
    shutil.copytree(LEGACY, copy)
    with pytest.raises(store.ResultsMismatchError, match="results format 1.*start fresh"):
        mfh_sim.sweep(**LEGACY_SWEEP, out=copy)


def test_one_load_opens_directories_and_saved_files(tmp_path):
    from mfh_sim.results import load

    out = tmp_path / "run"
    result = mfh_sim.sweep(**SWEEP, out=out)
    saved = result.save(tmp_path / "saved.npz")
    assert same(load(out), result) and same(load(saved), result)
    table = load(result.to_csv(tmp_path / "summary.csv"))
    # The CSV holds 10 decimals.
    assert list(table["kd_acc_mean"]) == pytest.approx([s.mean for s in result.summary("kd_acc")], abs=1e-10)
    assert table.to_pandas()["delta_mean"].tolist() == pytest.approx([s.mean for s in result.summary("delta")],
                                                                     abs=1e-10)
    with pytest.raises(ValueError, match="path="):
        load(tmp_path / "missing")


def test_show_carries_the_theory_beside_the_simulation_and_plots_it(tmp_path, capsys):
    from mfh_sim.plots.gain import plot_gain_curve

    out = tmp_path / "t"
    result = mfh_sim.sweep(gamma=[0.5, 1.0], alpha=0.0, seeds=3, chunk_size=8, out=out, **FAST)
    assert "| theory:" in str(result) and result.theory is not None
    capsys.readouterr()
    assert main(["show", str(out), "--plot", str(tmp_path / "g.png")]) == 0
    shown = capsys.readouterr().out
    assert "| theory:" in shown and f"{100 * result.theory['delta'][1]:+6.2f}" in shown
    figure = plot_gain_curve(result, result.table(), "gamma")
    dotted = [line for line in figure.axes[0].lines if line.get_linestyle() == ":"]
    assert len(dotted) == 1 and list(dotted[0].get_ydata()) == pytest.approx(100 * result.theory["delta"])
