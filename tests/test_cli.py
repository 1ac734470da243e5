import subprocess
import sys

import pytest

from mfh_sim.cli import main


def test_reproduce_writes_the_figures_and_tables(tmp_path):
    assert main(["reproduce", "--out", str(tmp_path), "--seeds", "4", "--quiet", "--only", "fig2", "--only", "fig3"]) == 0
    for stem in ("fig2", "fig3", "fig2_venn", "fig3_venn"):
        for suffix in (".png", ".pdf"):
            path = tmp_path / f"{stem}{suffix}"
            assert path.stat().st_size > 1000
    lines = (tmp_path / "fig2.csv").read_text().splitlines()
    assert len(lines) == 7 and "kd_acc_mean" in lines[0]


def test_reproduce_table2_writes_csv_markdown_and_salience(tmp_path):
    assert main(["reproduce", "--out", str(tmp_path), "--seeds", "2", "--quiet", "--only", "table2"]) == 0
    assert len((tmp_path / "table2.csv").read_text().splitlines()) > 5
    assert "|" in (tmp_path / "table2.md").read_text()
    for suffix in (".png", ".pdf"):
        assert (tmp_path / f"table2_salience{suffix}").stat().st_size > 1000


def test_cli_reports_bad_input_without_a_traceback(capsys):
    assert main(["reproduce", "--only", "fig9", "--quiet"]) == 2
    assert "fig9" in capsys.readouterr().err


def test_console_entry_point_help():
    completed = subprocess.run([sys.executable, "-m", "mfh_sim.cli", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "reproduce" in completed.stdout


def test_reproduce_theory_and_phase(tmp_path):
    assert main(["reproduce", "--out", str(tmp_path), "--seeds", "3", "--quiet", "--only", "theory", "--only", "phase"]) == 0
    for stem in ("theory_fig2", "theory_fig2_gain", "theory_crossover", "phase_gamma_alpha"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000
    assert len((tmp_path / "phase_gamma_alpha.csv").read_text().splitlines()) == 31


def test_reproduce_is_byte_for_byte_repeatable(tmp_path):
    for name in ("one", "two"):
        assert main(["reproduce", "--out", str(tmp_path / name), "--seeds", "3", "--quiet", "--only", "fig2"]) == 0
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(files) == 5
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
