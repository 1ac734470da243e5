"""Every mistake on the command line, one line (issue 12, item 7).

A table walks the mistakes of every command: each option's bad value (for ``sweep``, every knob of
:data:`mfh_sim.config.KNOBS`, generated from its kind), an impossible grid point, a results
directory of another sweep or version, an unwritable or unusable output folder, a missing or
unreadable input of ``show``.  Each must give exit status 2 and exactly one line on stderr that
names the option, with no traceback, nothing on stdout, nothing computed and nothing written.
A bug, on the other hand, must keep its traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mfh_sim.cli import command_names, main
from mfh_sim.config import KNOBS

# ------------------------------------------------------------------------------ the table
#: A value of the wrong form for each kind of knob (refused when the options are read).
BAD_FORM = {"int": "1.5", "float": "abc", "choice": "nope", "bool": "maybe", "widths": "64xq"}
#: A value of the right form out of range for each numeric kind (every int and float knob is
#: >= 0, every width >= 1): refused when the grid point's config is built, before anything runs.
OUT_OF_RANGE = {"int": "-1", "float": "-1", "widths": "0"}


def _venn_words(name: str) -> list[str]:
    """A valid Venn diagram to go with knob ``name`` (which the case then gives a bad value)."""
    if name in ("shared", "a_only", "b_only"):
        given = {"shared": "5", "a_only": "5", "b_only": "5"}
    elif name == "gamma":
        given = {"alpha": "0", "beta": "0"}
    else:
        given = {"gamma": "0.5", "alpha": "0"}
    given.pop(name, None)
    return [word for key, value in given.items() for word in (KNOBS[key].option, value)]


def _knob_cases() -> list:
    cases = []
    for name, knob in KNOBS.items():
        words = ["sweep", "--out", "{new}", *_venn_words(name), knob.option]
        bad = BAD_FORM[knob.kind]
        cases.append(pytest.param([*words, bad], f"{knob.option} {bad!r} is not allowed",
                                  id=f"sweep {knob.option} {bad}"))
        if knob.kind in OUT_OF_RANGE:
            bad = OUT_OF_RANGE[knob.kind]
            cases.append(pytest.param([*words, bad], f"{knob.option}: {name}=", id=f"sweep {knob.option} {bad}"))
    return cases


SWEEP = ["sweep", "--gamma", "0.5", "--alpha", "0"]
#: /proc refuses new entries even to root (permission bits do not: root passes them).
PROC = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")

#: (argv, a substring of the one line): ``{new}`` is a path that does not exist, ``{file}`` a
#: file, ``{tmp}`` the test's folder, the others results directories made by the fixtures.
CASES = [
    # The command itself.
    pytest.param([], "give a command: one of", id="no command"),
    pytest.param(["swep"], "invalid choice: 'swep'", id="unknown command"),
    pytest.param(["--bogus"], "give a command", id="option without command"),
    # sweep: the running options.
    pytest.param([*SWEEP], "required: --out", id="sweep without --out"),
    pytest.param([*SWEEP, "--out", "{new}", "--bogus", "1"], "unrecognized arguments: --bogus", id="sweep --bogus"),
    pytest.param([*SWEEP, "--out", "{new}", "--gamma"], "argument --gamma: expected one argument",
                 id="sweep --gamma without value"),
    pytest.param([*SWEEP, "--out", "{new}", "--seeds", "0"], "--seeds: '0' is not allowed: give an integer >= 1",
                 id="sweep --seeds 0"),
    pytest.param([*SWEEP, "--out", "{new}", "--seeds", "ten"], "--seeds: 'ten'", id="sweep --seeds ten"),
    pytest.param([*SWEEP, "--out", "{new}", "--root-seed", "-1"], "--root-seed: '-1' is not allowed",
                 id="sweep --root-seed -1"),
    pytest.param([*SWEEP, "--out", "{new}", "--root-seed", str(2**32)], "from 0 to 4294967295",
                 id="sweep --root-seed 2**32"),
    pytest.param([*SWEEP, "--out", "{new}", "--chunk-size", "0"], "--chunk-size: '0'", id="sweep --chunk-size 0"),
    pytest.param([*SWEEP, "--out", "{new}", "--devices", "0"], "--devices: '0'", id="sweep --devices 0"),
    pytest.param([*SWEEP, "--out", "{new}", "--devices", "999"], "--devices: devices=999 is not allowed: give a count",
                 id="sweep --devices 999"),
    # sweep: values of the wrong syntax, and a Venn diagram missing or given two ways.
    pytest.param(["sweep", "--gamma", "0:1", "--alpha", "0", "--out", "{new}"], "--gamma '0:1' is not allowed",
                 id="sweep half a range"),
    pytest.param(["sweep", "--gamma", "0:1:0", "--alpha", "0", "--out", "{new}"], "COUNT must be >= 1",
                 id="sweep empty range"),
    pytest.param(["sweep", "--gamma", "0.5,", "--alpha", "0", "--out", "{new}"], "--gamma '0.5,'",
                 id="sweep trailing comma"),
    pytest.param(["sweep", "--out", "{new}", "--steps", "10"], "no Venn diagram: give two of --gamma",
                 id="sweep without a Venn diagram"),
    pytest.param([*SWEEP, "--shared", "3", "--out", "{new}"], "--shared 3", id="sweep ratios and counts"),
    # sweep: impossible grid points, each named by its options, found before anything runs.
    pytest.param([*SWEEP, "--optimizer", "erm", "--l2", "0", "--out", "{new}"], "--l2: l2=0.0 is not allowed",
                 id="sweep erm without ridge"),
    pytest.param([*SWEEP, "--optimizer", "erm", "--l2", "0.1,0", "--out", "{new}"], "grid point 2 of 2",
                 id="sweep the second point impossible"),
    pytest.param([*SWEEP, "--l2", "0.1", "--out", "{new}"], "--l2, --optimizer: l2=0.1 is not allowed with",
                 id="sweep ridge without erm"),
    pytest.param(["sweep", "--shared", "40", "--a-only", "20", "--out", "{new}"], "--dim-a: dim_a=50",
                 id="sweep blocks exceed dims"),
    pytest.param([*SWEEP, "--n-train", "200,1", "--out", "{new}"], "--n-train: n_train=1", id="sweep n_train 1"),
    pytest.param([*SWEEP, "--kd-loss", "hint", "--out", "{new}"], "--kd-loss, --model: kd_loss='hint'",
                 id="sweep hint on a linear model"),
    pytest.param([*SWEEP, "--optimizer", "adam", "--momentum", "0.9", "--out", "{new}"], "--momentum",
                 id="sweep adam with momentum"),
    pytest.param([*SWEEP, "--n-classes", "30", "--out", "{new}"], "--n-classes: n_classes=30",
                 id="sweep more classes than latents"),
    pytest.param(["sweep", "--gamma", "0.8", "--alpha", "0.9", "--beta", "0.1", "--out", "{new}"], "--gamma",
                 id="sweep inconsistent ratios"),
    *_knob_cases(),
    # sweep: the output folder.
    pytest.param([*SWEEP, "--out", "{file}"], "--out '{file}' is not allowed: it is a file", id="sweep --out file"),
    pytest.param([*SWEEP, "--out", "{file}/sub"], "is a file, so no folder can be created",
                 id="sweep --out under file"),
    pytest.param([*SWEEP, "--out", "/proc/mfh-sim-test"], "--out '/proc/mfh-sim-test' is not allowed: nothing can be",
                 id="sweep --out unwritable", marks=PROC),
    pytest.param([*SWEEP, "--out", "{notresults}"], "non-empty folder without a manifest.json",
                 id="sweep --out other folder"),
    pytest.param([*SWEEP, "--out", "{badmanifest}"], "--out: ", id="sweep --out broken manifest"),
    # sweep: a results directory of another sweep, another version, an older format.
    pytest.param(["sweep", "--gamma", "0,0.5", "--alpha", "0", "--seeds", "3", "--out", "{results}"],
                 "--out: out='{results}' holds the results of a different sweep (seeds:", id="sweep other sweep"),
    pytest.param(["sweep", "--gamma", "0,0.5", "--alpha", "0", "--seeds", "2", "--out", "{oldversion}"],
                 "mfh_sim 0.0.1 there", id="sweep other version"),
    pytest.param(["sweep", "--gamma", "0,1", "--alpha", "0", "--seeds", "3", "--steps", "5", "--n-test", "20",
                  "--out", "{legacy}"], "older mfh_sim (results format 1", id="sweep older format"),
    # reproduce.
    pytest.param(["reproduce", "--only", "fig9"], "argument --only: invalid choice: 'fig9'", id="reproduce --only"),
    pytest.param(["reproduce", "--seeds", "1"], "--seeds: '1' is not allowed: give an integer >= 2",
                 id="reproduce --seeds 1"),
    pytest.param(["reproduce", "--seeds", "x"], "--seeds: 'x'", id="reproduce --seeds x"),
    pytest.param(["reproduce", "--out", "{file}"], "--out '{file}' is not allowed", id="reproduce --out file"),
    pytest.param(["reproduce", "--out", "/proc/mfh-sim-test"], "--out '/proc/mfh-sim-test'",
                 id="reproduce --out unwritable", marks=PROC),
    pytest.param(["reproduce", "--quiet", "extra"], "unrecognized arguments: extra", id="reproduce extra word"),
    # hypotheses.
    pytest.param(["hypotheses", "--configs", "3"], "--configs: n_configs=3", id="hypotheses --configs 3"),
    pytest.param(["hypotheses", "--configs", "many"], "--configs: 'many'", id="hypotheses --configs many"),
    pytest.param(["hypotheses", "--multiclass-share", "2"], "--multiclass-share: multiclass_share=2",
                 id="hypotheses --multiclass-share 2"),
    pytest.param(["hypotheses", "--multiclass-share", "half"], "--multiclass-share: 'half'",
                 id="hypotheses --multiclass-share half"),
    pytest.param(["hypotheses", "--n-train", "50", "1"], "--n-train: n_train_values=", id="hypotheses --n-train 1"),
    pytest.param(["hypotheses", "--dim", "3"], "--dim: dim=3", id="hypotheses --dim 3"),
    pytest.param(["hypotheses", "--n-visible", "1"], "--n-visible: n_visible=1", id="hypotheses --n-visible 1"),
    pytest.param(["hypotheses", "--steps", "0"], "--steps: steps=0", id="hypotheses --steps 0"),
    pytest.param(["hypotheses", "--seeds", "1"], "--seeds: '1'", id="hypotheses --seeds 1"),
    pytest.param(["hypotheses", "--bootstrap", "5"], "--bootstrap: '5'", id="hypotheses --bootstrap 5"),
    pytest.param(["hypotheses", "--workers", "0"], "--workers: '0'", id="hypotheses --workers 0"),
    pytest.param(["hypotheses", "--chunk-size", "0"], "--chunk-size: '0'", id="hypotheses --chunk-size 0"),
    pytest.param(["hypotheses", "--root-seed", "-1"], "--root-seed: '-1'", id="hypotheses --root-seed -1"),
    pytest.param(["hypotheses", "--family-seed", "-1"], "--family-seed: '-1'", id="hypotheses --family-seed -1"),
    pytest.param(["hypotheses", "--out", "{file}"], "--out '{file}' is not allowed", id="hypotheses --out file"),
    # real (every mistake before the estimator's validation or any split runs).
    pytest.param(["real", "--tasks", "6x9", "--out", "{new}"], "--tasks '6x9' is not allowed", id="real --tasks 6x9"),
    pytest.param(["real", "--views", "nope", "--out", "{new}"], "--views: views='nope'", id="real --views nope"),
    pytest.param(["real", "--splits", "1", "--out", "{new}"], "--splits: '1' is not allowed", id="real --splits 1"),
    pytest.param(["real", "--n-teacher", "5000", "--out", "{new}"], "--n-teacher: n_teacher=5000",
                 id="real --n-teacher 5000"),
    pytest.param(["real", "--validate", "2", "--out", "{new}"], "--validate: 2 is not allowed", id="real --validate 2"),
    pytest.param(["real", "--data", "{new}.npz", "--out", "{new}"], "--data:", id="real --data missing"),
    pytest.param(["real", "--data", "{file}", "--tasks", "6v9", "--out", "{new}"], "--data is not allowed with --tasks",
                 id="real --data with --tasks"),
    pytest.param(["real", "--out", "{file}"], "--out '{file}' is not allowed", id="real --out file"),
    # show.
    pytest.param(["show"], "required: directory", id="show without directory"),
    pytest.param(["show", "{new}"], "directory '{new}' does not exist", id="show missing"),
    pytest.param(["show", "{file}"], "directory '{file}' is a file", id="show a file"),
    pytest.param(["show", "{notresults}"], "directory: '{notresults}' is not a results directory",
                 id="show not results"),
    pytest.param(["show", "{badmanifest}"], "directory: ", id="show broken manifest"),
    pytest.param(["show", "{results}", "--plot", "{tmp}/g.png", "--x", "nope"], "--x: x='nope' is not allowed: use",
                 id="show --x"),
    pytest.param(["show", "{results}", "--x", "gamma"], "--x 'gamma' picks the x axis of the plot: give --plot",
                 id="show --x without --plot"),
    pytest.param(["show", "{results}", "--plot", "{tmp}/gain.txt"], "--plot '{tmp}/gain.txt' is not allowed",
                 id="show --plot suffix"),
    pytest.param(["show", "{results}", "--plot", "{tmp}/none/gain.png"], "its folder '{tmp}/none' does not exist",
                 id="show --plot folder missing"),
    pytest.param(["show", "{results}", "--plot", "/proc/gain.png"], "--plot '/proc/gain.png'",
                 id="show --plot unwritable", marks=PROC),
    pytest.param(["show", "{results}", "--csv", "{tmp}"], "--csv '{tmp}' is not allowed: it is a folder",
                 id="show --csv folder"),
    pytest.param(["show", "{results}", "--csv", "{tmp}/s.csv", "--plot", "{tmp}/g.png", "--x", "nope"], "--x:",
                 id="show --csv written only when --x is valid"),
    pytest.param(["show", "{oldversion}", "--plot", "{tmp}/g.png"], "--plot: '{oldversion}' has no finished",
                 id="show --plot nothing finished"),
]


# ------------------------------------------------------------------------------ fixtures
def _fake_results(path: Path, seeds: int, version: str | None = None) -> Path:
    """A results directory of ``sweep --gamma 0,0.5 --alpha 0 --seeds SEEDS``, written through the
    store with made-up numbers (nothing is simulated); with ``version``, as that package version
    wrote it, and without blocks."""
    from mfh_sim import store
    from mfh_sim.config import make_config
    from mfh_sim.engine import Block
    from mfh_sim.protocols.paper import PaperProtocol

    configs = [make_config(gamma=g, alpha=0.0) for g in (0.0, 0.5)]
    grid = [{"gamma": 0.0}, {"gamma": 0.5}]
    real_version = store.package_version
    if version is not None:
        store.package_version = lambda: version
    try:
        opened = store.ResultStore.open(path, PaperProtocol(), configs, grid, np.arange(seeds), 0)
    finally:
        store.package_version = real_version
    if version is None:
        for index, group in enumerate(opened.groups):
            rows = group.rows(seeds)
            opened.write(Block(index, 0, rows, {
                name: np.full((rows,) + spec.shape, False if spec.dtype == np.bool_ else 0.75, dtype=spec.dtype)
                for name, spec in opened.metrics.items()}))
    return path


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    """The paths the cases name, made once: inputs that must stay as they are."""
    base = tmp_path_factory.mktemp("inputs")
    (base / "file.txt").write_text("not a results directory\n")
    (base / "notresults").mkdir()
    (base / "notresults" / "notes.txt").write_text("someone's notes\n")
    (base / "badmanifest").mkdir()
    (base / "badmanifest" / "manifest.json").write_text("{not json")
    legacy = base / "legacy"
    shutil.copytree(Path(__file__).parent / "data" / "legacy_store", legacy)
    return {"file": str(base / "file.txt"), "notresults": str(base / "notresults"),
            "badmanifest": str(base / "badmanifest"), "legacy": str(legacy),
            "results": str(_fake_results(base / "results", seeds=2)),
            "oldversion": str(_fake_results(base / "oldversion", seeds=2, version="0.0.1")),
            "inputs": str(base)}


@pytest.fixture(autouse=True)
def nothing_runs(monkeypatch):
    """Any simulation a case starts fails the test: the engine's entry point, wherever imported."""
    import mfh_sim.engine
    import mfh_sim.experiments.hypotheses
    import mfh_sim.simulation  # noqa: F401

    def refuse(*args, **kwargs):
        raise AssertionError("a simulation started: the mistake was not caught before computing")

    engine_execute = mfh_sim.engine.execute
    for name, module in list(sys.modules.items()):
        if name.startswith("mfh_sim") and getattr(module, "execute", None) is engine_execute:
            monkeypatch.setattr(module, "execute", refuse)


def _tree(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a digest of its bytes ('' for a folder)."""
    return {str(p.relative_to(root)): "" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


# ------------------------------------------------------------------------------ the walk
@pytest.mark.parametrize(("argv", "expected"), CASES)
def test_a_mistake_is_one_line_with_status_2_and_leaves_nothing(argv, expected, places, tmp_path, monkeypatch,
                                                                 capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # default output folders (figures/, results/...) would land here
    names = {**places, "new": str(work / "new"), "tmp": str(work)}
    argv = [word.format(**names) for word in argv]
    expected = expected.format(**names)
    before_work, before_inputs = _tree(work), _tree(Path(places["inputs"]))

    status = main(argv)

    printed = capsys.readouterr()
    lines = printed.err.splitlines()
    assert status == 2, printed.err
    assert len(lines) == 1 and lines[0].strip(), f"not one line: {printed.err!r}"
    command = argv[0] if argv and argv[0] in command_names() else None
    assert lines[0].startswith(f"mfh-sim{' ' + command if command else ''}: error: "), lines[0]
    assert "Traceback" not in printed.err and "usage:" not in printed.err
    assert expected in lines[0], lines[0]
    assert printed.out == ""
    assert not (work / "new").exists()
    assert _tree(work) == before_work, "the mistake left files behind"
    assert _tree(Path(places["inputs"])) == before_inputs, "the mistake changed its input"


def test_a_read_only_folder_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    # Root writes into a chmod-555 folder, so the kernel's refusal is stood in for: the probe
    # write fails as it does on a read-only mount.
    import errno

    import mfh_sim.commands as commands

    def refuse(folder):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder))

    monkeypatch.setattr(commands, "_probe", refuse)
    locked = tmp_path / "locked"
    locked.mkdir()
    assert main([*SWEEP, "--out", str(locked / "run")]) == 2
    assert main(["reproduce", "--out", str(locked)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all("nothing can be written" in line and "Read-only" in line for line in lines), lines
    assert list(locked.iterdir()) == []


def test_every_knob_has_a_case_of_each_kind_of_mistake():
    ids = {param.id for param in CASES}
    for knob in KNOBS.values():
        assert f"sweep {knob.option} {BAD_FORM[knob.kind]}" in ids
        if knob.kind in OUT_OF_RANGE:
            assert f"sweep {knob.option} {OUT_OF_RANGE[knob.kind]}" in ids


# ------------------------------------------------------------------------------ not a mistake
def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """Only the user's mistakes are one line: an error inside the computation is not theirs."""
    import mfh_sim.simulation
    import mfh_sim.store

    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(mfh_sim.simulation, "sweep", broken)
    with pytest.raises(ValueError, match="internal inconsistency"):
        main([*SWEEP, "--out", str(tmp_path / "x")])
    monkeypatch.setattr(mfh_sim.simulation, "sweep", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main([*SWEEP, "--out", str(tmp_path / "x")])
    monkeypatch.setattr(mfh_sim.store, "load", broken)
    with pytest.raises(ValueError, match="internal inconsistency"):
        main(["show", str(Path(__file__).parent / "data" / "legacy_store")])


def test_the_console_command_prints_one_line_and_exits_2(tmp_path):
    """The same through the interpreter's exit status and stderr (no JAX is loaded for this one)."""
    completed = subprocess.run(
        [sys.executable, "-m", "mfh_sim.cli", "sweep", "--gamma", "x", "--out", str(tmp_path / "new")],
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.splitlines() == [
        "mfh-sim sweep: error: --gamma 'x' is not allowed: give a number, a comma-separated list or a range "
        "START:STOP:COUNT"]
    assert not (tmp_path / "new").exists()


def test_show_refuses_a_real_data_store_in_one_line(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    # A manifest as `mfh-sim real` writes it (points abbreviated: they are never rebuilt).
    from mfh_sim import store

    sweep = {"protocol": {"name": "real", "version": 1}, "package_version": store.package_version(),
             "settings": {}, "points": [{"task": "6v9"}], "grid": [{}], "seeds": [0, 1], "root_seed": 0}
    manifest = {"format": store.FORMAT, "format_version": store.FORMAT_VERSION,
                "fingerprint": store._sha256(store._canonical(sweep).encode()), **sweep}
    (runs / store.MANIFEST).write_text(json.dumps(manifest))
    assert main(["show", str(runs)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "protocol='real' cannot be reopened" in lines[0] and "--out" in lines[0], lines
