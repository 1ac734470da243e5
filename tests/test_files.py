"""Writing files: the CSV writer and reader, numbers that never print as -0.0, atomic writes."""

import math

import numpy as np
import pytest

from mfh_sim.files import atomic_write, csv_cell, number_text, read_csv, write_csv


def test_a_value_that_rounds_to_zero_prints_the_same_from_either_side():
    # A mean that is 0 up to rounding may come out -1e-17 on one CPU and +1e-17 on another: the
    # files must not differ (phase_gamma_alpha.csv once flipped a cell between machines).
    for tiny in (-1e-17, 1e-17, -0.0, 0.0, -4e-11):
        assert csv_cell(tiny) == "0.0"
        assert number_text(100 * tiny, "+.2f") == "+0.00" and number_text(100 * tiny, "6.2f") == "  0.00"
    assert csv_cell(-0.25) == "-0.25" and number_text(-0.25, "+.2f") == "-0.25"
    assert csv_cell(np.float32(0.5)) == "0.5" and csv_cell(math.nan) == "" and csv_cell(None) == ""


def test_csv_round_trip_quotes_what_needs_it(tmp_path):
    rows = [{"mode": "a,b", "note": 'say "x"', "value": 0.1234567890123, "n": 3, "missing": math.nan},
            {"mode": "c", "note": "", "value": -1e-18, "n": 4, "missing": None}]
    path = write_csv(tmp_path / "t.csv", rows)
    text = path.read_text()
    assert text.splitlines()[1] == '"a,b","say ""x""",0.123456789,3,'
    back = read_csv(path)
    assert back[0]["mode"] == "a,b" and back[0]["note"] == 'say "x"' and back[0]["n"] == 3
    assert back[1]["value"] == 0.0 and math.isnan(back[1]["missing"])
    with pytest.raises(ValueError, match="rows=\\[\\] is not allowed"):
        write_csv(tmp_path / "empty.csv", [])


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    atomic_write(target, "old")
    import os

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    atomic_write(target, b"new")
    assert target.read_text() == "new"
