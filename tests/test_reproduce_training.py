"""``mfh-sim reproduce --optimizer erm --l2 L``: the paper's items trained by converged ridge ERM."""

from __future__ import annotations

import csv

import pytest

from mfh_sim import experiments
from mfh_sim.cli import main
from mfh_sim.commands.reproduce import ERM_ITEMS, PRODUCERS


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_reproduce_fig2_by_erm_matches_the_python_api_and_its_theory(tmp_path):
    assert main(["reproduce", "--out", str(tmp_path), "--seeds", "2", "--only", "fig2", "--optimizer", "erm",
                 "--l2", "0.02", "--quiet"]) == 0
    rows = _rows(tmp_path / "fig2.csv")
    direct = experiments.fig2(seeds=2, optimizer="erm", l2=0.02)
    gd = experiments.fig2(seeds=2)
    # The command writes what the Python API gives for the same knobs, theory columns included.
    assert rows == _rows(direct.to_csv(tmp_path / "direct.csv"))
    assert len(rows) == 6 and all(row["kd_acc_theory"] != "" for row in rows)
    # The flag reached the training: ERM at l2 = 0.02 is not the paper's GD, data and theory alike.
    assert any(abs(float(row["kd_acc_mean"]) - kd) > 1e-3 for row, kd in zip(rows, gd.kd_acc.mean(axis=1)))
    assert any(abs(float(row["kd_acc_theory"]) - th) > 1e-3 for row, th in zip(rows, gd.theory["kd_acc"]))


def test_reproduce_table2_by_erm_says_how_it_trained(tmp_path):
    assert main(["reproduce", "--out", str(tmp_path), "--seeds", "2", "--only", "table2", "--optimizer", "erm",
                 "--l2", "0.01", "--quiet"]) == 0
    text = (tmp_path / "table2.md").read_text()
    assert "converged ridge-logistic ERM, l2 = 0.01" in text and "full-batch GD" not in text


def test_every_paper_item_but_the_multiclass_family_takes_erm():
    assert set(ERM_ITEMS) == set(PRODUCERS) - {"hypotheses"}


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "erm"], "--optimizer erm without --l2: l2=0.0 is not allowed with optimizer='erm'"),
    (["--l2", "0.01"], "--optimizer sgd --l2 0.01: l2=0.01 is not allowed with optimizer='sgd'"),
    (["--optimizer", "erm", "--l2", "0"], "--optimizer erm --l2 0: l2=0.0 is not allowed with optimizer='erm'"),
    (["--optimizer", "erm", "--l2", "-1"], "--optimizer erm --l2 -1: l2=-1.0 is not allowed"),
    (["--optimizer", "erm", "--l2", "0.01", "--only", "hypotheses"],
     "--only hypotheses is not allowed with --optimizer erm"),
    (["--optimizer", "adam"], "argument --optimizer: invalid choice: 'adam'"),
], ids=["erm without l2", "l2 without erm", "l2 zero", "l2 negative", "erm hypotheses", "unknown optimizer"])
def test_reproduce_training_flags_refuse_bad_input_in_one_line(tmp_path, capsys, argv, message):
    assert main(["reproduce", "--out", str(tmp_path / "out"), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything was created
