"""The sharded path: on 4 (forced) CPU devices, a sweep sharded with shard_map over a device mesh
gives exactly the single-device numbers, also when resumed from a directory written unsharded."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import mfh_sim
from mfh_sim import engine

ROOT = Path(__file__).resolve().parents[1]
# 3 points x 13 seeds = 39 runs; chunks of 4 runs per device (16 per call on 4 devices) leave a
# padded, unevenly filled last call.
SWEEP = dict(gamma=[0.0, 0.5, 1.0], alpha=0.0, seeds=13, steps=60, n_test=200, theory=False, chunk_size=4)
CHILD = textwrap.dedent(
    """
    import json, sys
    import jax
    import mfh_sim
    from mfh_sim import engine
    sweep = {sweep!r}
    out = dict(devices=[str(d) for d in jax.devices()])
    for label, devices in (("all", None), ("two", 2)):
        result = mfh_sim.sweep(devices=devices, **sweep)
        out[label] = {{k: result.arrays[k].tolist() for k in engine.METRIC_DTYPES}}
    engine.CPU_BLOCK_RUNS = 8
    resumed = mfh_sim.sweep(devices=None, out=sys.argv[1], **sweep)
    out["resumed"] = {{k: resumed.arrays[k].tolist() for k in engine.METRIC_DTYPES}}
    print(json.dumps(out))
    """
)


def test_sharded_results_equal_single_device_results(tmp_path):
    single = mfh_sim.sweep(devices=1, **SWEEP)
    # A results directory half written on one device, to be finished on four.
    partial = tmp_path / "run"
    mfh_sim.sweep(out=partial, **SWEEP)
    chunks = sorted((partial / "chunks").glob("*.npz"))
    assert chunks
    for file in chunks[len(chunks) // 2 :]:
        file.unlink()

    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    completed = subprocess.run([sys.executable, "-c", CHILD.format(sweep=SWEEP), str(partial)], env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    child = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(child["devices"]) == 4
    for label in ("all", "two", "resumed"):
        for name in engine.METRIC_DTYPES:
            np.testing.assert_array_equal(np.asarray(child[label][name]), single.arrays[name],
                                          err_msg=f"{label}: {name}")
