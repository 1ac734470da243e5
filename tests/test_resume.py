"""Kill and resume: a sweep SIGKILLed mid-way and run again gives exactly the numbers of an
uninterrupted run, computing only what is missing; a chunk truncated by hand is recomputed."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import mfh_sim
from mfh_sim import engine, store
from mfh_sim.protocols.paper import METRIC_DTYPES

ROOT = Path(__file__).resolve().parents[1]
# 4 points x 60 seeds = 240 runs.  The 4 points share their no-KD student and run as one pack, a
# row of 4 runs per seed, in blocks of 8 rows (one chunk each, 32 runs): 8 chunk files, the last
# of 4 rows.  The child waits 0.2 s before writing each finished block, so the blocks take over
# 1.6 s and the kill lands mid-way, with a computed block not yet written, however fast the
# training; the numbers' identity
# does not depend on the step count, so the runs are short and the parent's two sweeps cheap.
SWEEP = dict(gamma=[0.25, 1 / 3, 2 / 3, 1.0], alpha=0.0, seeds=60, steps=50, n_test=200, theory=False,
             chunk_size=8, workers=1)
BLOCKS = 8
CHILD = textwrap.dedent(
    """
    import sys
    import time
    import mfh_sim
    from mfh_sim import engine, store
    from mfh_sim.protocols.paper import METRIC_DTYPES
    engine.CPU_BLOCK_RUNS = 8
    write = store.ResultStore.write
    def slow_write(self, block):
        time.sleep(0.2)
        return write(self, block)
    store.ResultStore.write = slow_write
    mfh_sim.sweep(out=sys.argv[1], **{sweep!r})
    """
)


def chunk_files(directory):
    return sorted((directory / store.BLOCKS).glob("*.npz"))


def test_killed_sweep_resumes_to_identical_results(tmp_path, monkeypatch):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(sweep=SWEEP), str(out)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / store.BLOCKS).is_dir() or len(chunk_files(out)) < 2:
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the child wrote no chunk in 120 s"
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    survivors = {f.name: f.stat().st_mtime_ns for f in chunk_files(out)}
    assert 2 <= len(survivors) < BLOCKS, "the kill must land mid-way"

    # Resume in this process: only the missing rows are computed.
    monkeypatch.setattr(engine, "CPU_BLOCK_RUNS", 8)
    computed = []
    original = engine.execute

    def counting_execute(*args, **kwargs):
        user_progress = kwargs.pop("progress")
        return original(*args, progress=lambda n: (computed.append(n), user_progress(n)), **kwargs)

    monkeypatch.setattr(engine, "execute", counting_execute)
    resumed = mfh_sim.sweep(out=out, **SWEEP)
    stored_before = sum(int(n.split("-")[2].split(".")[0]) - int(n.split("-")[1]) for n in survivors)
    assert sum(computed) == 240 - stored_before
    assert {f.name: f.stat().st_mtime_ns for f in chunk_files(out) if f.name in survivors} == survivors
    assert len(chunk_files(out)) == BLOCKS

    monkeypatch.setattr(engine, "execute", original)
    uninterrupted = mfh_sim.sweep(**SWEEP)
    for name in METRIC_DTYPES:
        np.testing.assert_array_equal(resumed.arrays[name], uninterrupted.arrays[name])
        np.testing.assert_array_equal(mfh_sim.load(out).arrays[name], uninterrupted.arrays[name])

    # A chunk truncated by hand is detected by its checksum and recomputed, never loaded.
    victim = chunk_files(out)[3]
    with open(victim, "r+b") as handle:
        handle.truncate(victim.stat().st_size // 2)
    computed.clear()
    monkeypatch.setattr(engine, "execute", counting_execute)
    with pytest.warns(RuntimeWarning, match="checksum mismatch"):
        repaired = mfh_sim.sweep(out=out, **SWEEP)
    assert sum(computed) == 32  # one block: 8 rows of the 4-point pack
    for name in METRIC_DTYPES:
        np.testing.assert_array_equal(repaired.arrays[name], uninterrupted.arrays[name])
