"""The ``mfh-sim`` command line: its commands write what they say, bad input gets one line, and
help loads neither JAX nor matplotlib."""

import json
import subprocess
import sys

import pytest

from mfh_sim.cli import command_names, main


def _reproduce(out, seeds, *names):
    only = [word for name in names for word in ("--only", name)]
    return main(["reproduce", "--out", str(out), "--seeds", str(seeds), "--quiet", *only])


@pytest.mark.slow
def test_reproduce_writes_fig2_and_fig3_the_same_bytes_on_a_rerun(tmp_path):
    for name in ("one", "two"):
        assert _reproduce(tmp_path / name, 3, "fig2", "fig3") == 0
    for stem in ("fig2", "fig3", "fig2_venn", "fig3_venn"):
        for suffix in (".png", ".pdf"):
            assert (tmp_path / "one" / f"{stem}{suffix}").stat().st_size > 1000
    lines = (tmp_path / "one" / "fig2.csv").read_text().splitlines()
    assert len(lines) == 7 and "kd_acc_mean" in lines[0]
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(files) == 10
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


@pytest.mark.slow
def test_reproduce_table2_writes_csv_markdown_and_salience(tmp_path):
    assert _reproduce(tmp_path, 2, "table2") == 0
    assert len((tmp_path / "table2.csv").read_text().splitlines()) > 5
    assert "|" in (tmp_path / "table2.md").read_text()
    for suffix in (".png", ".pdf"):
        assert (tmp_path / f"table2_salience{suffix}").stat().st_size > 1000


@pytest.mark.slow
def test_reproduce_theory_and_phase(tmp_path, monkeypatch):
    from mfh_sim.commands import reproduce

    # Three crossover sizes instead of 13: the files and the plumbing are under test, not the curve.
    monkeypatch.setattr(reproduce, "CROSSOVER_SIZES", 3)
    assert _reproduce(tmp_path, 3, "theory", "phase") == 0
    for stem in ("theory_fig2", "theory_fig2_gain", "theory_crossover", "phase_gamma_alpha"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000
    assert len((tmp_path / "phase_gamma_alpha.csv").read_text().splitlines()) == 31


def test_cli_reports_bad_input_without_a_traceback(capsys):
    assert main(["reproduce", "--only", "fig9", "--quiet"]) == 2
    assert "fig9" in capsys.readouterr().err


def test_sweep_refuses_an_unknown_choice_naming_the_allowed_ones(capsys, tmp_path):
    assert main(["sweep", "--gamma", "0.5", "--alpha", "0", "--kd-loss", "kl,klx", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "--kd-loss 'klx'" in error and "kl, mse, hint" in error


@pytest.mark.slow
def test_sweep_runs_a_knob_the_old_option_list_had_lost(tmp_path, capsys):
    """`mfh-sim sweep --n-classes 3` was refused before the options came from the config."""
    out = tmp_path / "three"
    assert main(["sweep", "--gamma", "0.5", "--alpha", "0", "--n-classes", "3", "--seeds", "2", "--steps", "2",
                 "--n-test", "20", "--out", str(out), "--no-progress", "--quiet", "--no-theory"]) == 0
    import mfh_sim

    result = mfh_sim.load(out)
    assert [config.n_classes for config in result.configs] == [3] and result.kd_acc.shape == (1, 2)


HEAVY = ("jax", "jaxlib", "flax", "optax", "matplotlib")


@pytest.mark.parametrize("words", [["--help"], ["sweep", "--help"], ["show", "--help"],
                                   ["reproduce", "--help"], ["hypotheses", "--help"]], ids=" ".join)
def test_help_imports_neither_jax_nor_matplotlib(words):
    """Help must be instant: a fresh interpreter runs it and reports the modules it loaded."""
    probe = (
        "import json, sys\n"
        "from mfh_sim.cli import main\n"
        "try:\n"
        f"    main({words!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "usage: mfh-sim" in completed.stdout
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_console_entry_point_help_and_version():
    completed = subprocess.run([sys.executable, "-m", "mfh_sim.cli", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "reproduce" in completed.stdout
    from mfh_sim import __version__

    for module in ("mfh_sim", "mfh_sim.cli"):
        completed = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True,
                                   timeout=120)
        assert completed.returncode == 0 and completed.stdout.strip() == f"mfh-sim {__version__}", completed


@pytest.mark.parametrize("command", command_names())
def test_every_command_has_a_plain_description(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]
    assert len(description) > 40 and "``" not in text and ":func:" not in text and ":mod:" not in text


def test_an_unknown_option_names_the_nearest_one(capsys):
    assert main(["sweep", "--gamma", "0.5", "--alpha", "0", "--learnign-rate", "0.1", "--out", "unused"]) == 2
    assert "did you mean --learning-rate?" in capsys.readouterr().err


def test_importing_the_package_face_does_not_load_jax():
    probe = ("import json, sys\nimport mfh_sim\nassert mfh_sim.__version__ and mfh_sim.SimConfig\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))\n")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
