"""The sharded path: on 4 (forced) CPU devices, a sweep sharded with shard_map over a device mesh
gives exactly the single-device numbers, also when resumed from a directory written unsharded."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import mfh_sim
from mfh_sim.protocols.paper import METRIC_DTYPES

ROOT = Path(__file__).resolve().parents[1]
# 3 points x 13 seeds = 39 runs; chunks of 4 runs per device (16 per call on 4 devices) leave a
# padded, unevenly filled last call.
SWEEP = dict(gamma=[0.25, 0.5, 1.0], alpha=0.0, seeds=13, steps=60, n_test=200, theory=False, chunk_size=4)
CHILD = textwrap.dedent(
    """
    import json, sys
    import jax
    import mfh_sim
    from mfh_sim import engine
    from mfh_sim.protocols.paper import METRIC_DTYPES
    sweep = {sweep!r}
    out = dict(devices=[str(d) for d in jax.devices()])
    for label, devices in (("all", None), ("two", 2)):
        result = mfh_sim.sweep(devices=devices, **sweep)
        out[label] = {{k: result.arrays[k].tolist() for k in METRIC_DTYPES}}
    engine.CPU_BLOCK_RUNS = 8
    resumed = mfh_sim.sweep(devices=None, out=sys.argv[1], **sweep)
    out["resumed"] = {{k: resumed.arrays[k].tolist() for k in METRIC_DTYPES}}
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def single():
    """The sweep on one device: the reference of both tests, computed once."""
    return mfh_sim.sweep(devices=1, **SWEEP)


def test_sharded_results_equal_single_device_results(tmp_path, single):
    # A results directory half written on one device, to be finished on four.
    partial = tmp_path / "run"
    mfh_sim.sweep(out=partial, **SWEEP)
    chunks = sorted((partial / "blocks").glob("*.npz"))
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
        for name in METRIC_DTYPES:
            np.testing.assert_array_equal(np.asarray(child[label][name]), single.arrays[name],
                                          err_msg=f"{label}: {name}")


HOST = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
    import mfh_sim
    from mfh_sim import engine
    from mfh_sim.protocols.paper import METRIC_DTYPES
    result = mfh_sim.sweep(out=sys.argv[3], **{sweep!r})
    print(json.dumps(dict(devices=len(jax.devices()), local=len(jax.local_devices()),
                          arrays={{k: result.arrays[k].tolist() for k in METRIC_DTYPES}})))
    """
)


def test_two_processes_with_jax_distributed_equal_one_device(tmp_path, single):
    # Two "hosts" (processes on this machine), two CPU devices each: one global mesh of 4 devices.
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        address = f"localhost:{probe.getsockname()[1]}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = tmp_path / "run"
    hosts = [subprocess.Popen([sys.executable, "-c", HOST.format(sweep=SWEEP), address, str(i), str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [host.communicate(timeout=300) for host in hosts]
    for host, (stdout, stderr) in zip(hosts, outputs):
        assert host.returncode == 0, stderr
        report = json.loads(stdout.strip().splitlines()[-1])
        assert (report["devices"], report["local"]) == (4, 2)
        for name in METRIC_DTYPES:
            np.testing.assert_array_equal(np.asarray(report["arrays"][name]), single.arrays[name])
    # One writer (process 0): the directory holds this sweep, complete.

    for name in METRIC_DTYPES:
        np.testing.assert_array_equal(mfh_sim.load(out).arrays[name], single.arrays[name])
