"""The progress bar: bounded, complete lines in a log; right counts; silent when disabled."""

from __future__ import annotations

import io
import threading
import time

import pytest

from mfh_sim import progress
from mfh_sim.progress import ProgressBar


def _run(bar: ProgressBar, updates: int, per_update: int = 1, pause_s: float = 0.0) -> None:
    for _ in range(updates):
        bar.update(per_update)
        if pause_s:
            time.sleep(pause_s)
    bar.close()


def test_a_log_gets_few_complete_lines_not_carriage_return_spam(monkeypatch):
    # 4000 updates over about 0.4 s with a 0.1 s interval: at most a handful of lines (the old
    # bar wrote one "\r" redraw per 0.2 s, tqdm's default per 0.1 s: this is the log mode).
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.1)
    stream = io.StringIO()
    bar = ProgressBar(4000, label="runs", stream=stream)
    start = time.perf_counter()
    for _ in range(40):
        for _ in range(100):
            bar.update(1)
        time.sleep(0.01)
    bar.close()
    elapsed = time.perf_counter() - start
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert text.endswith("\n")
    # first line + one per interval + the final line
    assert 2 <= len(lines) <= elapsed / 0.1 + 3, lines
    assert all(line.startswith("runs:") for line in lines)
    assert "4000/4000" in lines[-1]
    assert bar.done == 4000


def test_the_default_interval_bounds_a_long_burst_to_two_lines():
    stream = io.StringIO()
    _run(ProgressBar(10_000, stream=stream), 10_000)  # well under LOG_INTERVAL_S
    lines = stream.getvalue().splitlines()
    assert len(lines) <= 2, lines
    assert "10000/10000" in lines[-1]


def test_counts_and_total_are_right_with_blocks_of_runs(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)  # a line per update
    stream = io.StringIO()
    bar = ProgressBar(12, label="Table 2 runs", stream=stream)
    for count in (4, 4, 4):
        bar.update(count)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split("|")[2].split()[0] for line in lines] == ["0/12", "4/12", "8/12", "12/12"]
    assert lines[-1].startswith("Table 2 runs: 100%")
    assert bar.done == bar.total == 12


def test_updates_from_threads_are_all_counted():
    stream = io.StringIO()
    bar = ProgressBar(8 * 500, stream=stream)
    threads = [threading.Thread(target=lambda: [bar.update(1) for _ in range(500)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bar.close()
    assert bar.done == 4000
    assert "4000/4000" in stream.getvalue().splitlines()[-1]


@pytest.mark.parametrize("total, enabled", [(5, False), (0, True)])
def test_disabled_or_empty_writes_nothing(total, enabled):
    stream = io.StringIO()
    bar = ProgressBar(total, enabled=enabled, stream=stream)
    _run(bar, 5)
    assert stream.getvalue() == ""
    assert bar.done == 5


def test_close_is_idempotent_and_a_context_manager():
    stream = io.StringIO()
    with ProgressBar(3, stream=stream) as bar:
        bar.update(3)
    bar.close()
    assert len(stream.getvalue().splitlines()) == 2  # the first draw and the final state


def test_a_terminal_gets_tqdms_in_place_bar(monkeypatch):
    monkeypatch.setattr(progress, "_is_tty", lambda stream: True)
    stream = io.StringIO()
    _run(ProgressBar(3, stream=stream), 3, pause_s=0.15)
    text = stream.getvalue()
    assert "\r" in text and "3/3" in text
