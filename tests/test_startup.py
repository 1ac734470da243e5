"""The persistent compilation cache (mfh_sim/_cache.py): reused by a fresh process, off when asked
or when its directory is unwritable, and never a change in any number.  No timing here: that is
``benchmarks/startup.py``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A small simulate() in a fresh process; prints its numbers and JAX's cache events as JSON.
CHILD = """
import json
import mfh_sim, mfh_sim._cache
from jax import monitoring
events = {"hits": 0, "misses": 0}
def listen(event, **kwargs):
    if event == "/jax/compilation_cache/cache_hits":
        events["hits"] += 1
    elif event == "/jax/compilation_cache/cache_misses":
        events["misses"] += 1
monitoring.register_event_listener(listen)
r = mfh_sim.simulate(gamma=0.5, alpha=1/3, seeds=3, steps=20, n_train=20, n_test=50)
numbers = {name: getattr(r, name).tolist() for name in ("teacher_acc", "no_kd_acc", "kd_acc")}
numbers["theory"] = r.theory
print(json.dumps(dict(numbers=numbers, active_dir=mfh_sim._cache.active_dir, **events)))
"""


def _fresh_process(cache_dir: Path, no_cache: bool = False) -> dict:
    # A clean environment for the cache: this test process has set up its own cache, and a
    # child must not inherit it.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE", "_MFH_SIM", "MFH_SIM"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["JAX_PLATFORMS"] = "cpu"
    env["MFH_SIM_CACHE_DIR"] = str(cache_dir)
    if no_cache:
        env["MFH_SIM_NO_CACHE"] = "1"
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_a_second_process_reuses_the_cache_and_every_number_is_the_same(tmp_path):
    cache = tmp_path / "jax"
    cold = _fresh_process(cache)
    assert cold["active_dir"] == str(cache.resolve())
    written = _entries(cache)
    assert written, "the first process wrote nothing to the cache"
    assert cold["misses"] > 0

    warm = _fresh_process(cache)
    assert warm["hits"] > 0 and warm["misses"] == 0, warm   # every program came from disk
    assert _entries(cache) == written                        # and nothing new was compiled

    off = _fresh_process(tmp_path / "unused", no_cache=True)
    assert off["active_dir"] is None and off["hits"] == 0
    assert not (tmp_path / "unused").exists()

    # Bit for bit (JSON keeps every float's repr): compiled, loaded from disk, no cache at all.
    assert cold["numbers"] == warm["numbers"] == off["numbers"]


def test_an_unwritable_cache_directory_leaves_the_cache_off_and_runs(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # a path under a file cannot be created, even by root
    run = _fresh_process(blocker / "jax")
    assert run["active_dir"] is None and run["hits"] == 0
    assert len(run["numbers"]["kd_acc"]) == 3


def _load_cache_module():
    """mfh_sim/_cache.py on its own, without the package (whose __init__ imports jax)."""
    spec = importlib.util.spec_from_file_location("_mfh_sim_cache_alone", ROOT / "mfh_sim" / "_cache.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_setup_does_not_import_jax_and_hands_jax_the_settings(tmp_path):
    code = (
        "import importlib.util, json, os, sys\n"
        f"spec = importlib.util.spec_from_file_location('c', {str(ROOT / 'mfh_sim' / '_cache.py')!r})\n"
        "c = importlib.util.module_from_spec(spec); spec.loader.exec_module(c)\n"
        "d = c.enable_compilation_cache()\n"
        "before = 'jax' in sys.modules\n"
        "import jax\n"
        "print(json.dumps([d, before, jax.config.jax_compilation_cache_dir,\n"
        "                  jax.config.jax_persistent_cache_min_compile_time_secs]))\n"
    )
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE", "_MFH_SIM", "MFH_SIM"))}
    env["MFH_SIM_CACHE_DIR"] = str(tmp_path / "jax")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    directory, jax_was_imported, jax_dir, min_time = json.loads(done.stdout.strip().splitlines()[-1])
    assert directory == jax_dir == str((tmp_path / "jax").resolve())
    assert not jax_was_imported
    assert min_time == 0.0


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"MFH_SIM_CACHE_DIR": "/x/y"}, Path("/x/y")),
        ({"XDG_CACHE_HOME": "/xdg"}, Path("/xdg/mfh-sim/jax")),
        ({"HOME": "/home/u"}, Path("/home/u/.cache/mfh-sim/jax")),
    ],
)
def test_the_default_directory(monkeypatch, env, expected):
    for name in ("MFH_SIM_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _load_cache_module().default_cache_dir() == expected


def test_a_cache_the_user_chose_is_respected(monkeypatch, tmp_path):
    cache = _load_cache_module()
    monkeypatch.delenv("_MFH_SIM_JAX_CACHE_DIR", raising=False)
    monkeypatch.delenv("MFH_SIM_NO_CACHE", raising=False)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "theirs"))
    monkeypatch.setenv("MFH_SIM_CACHE_DIR", str(tmp_path / "ours"))
    assert cache.enable_compilation_cache() is None
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "theirs")
    assert not (tmp_path / "ours").exists()


def test_no_cache_wins_over_a_cache_inherited_from_an_mfh_sim_parent(monkeypatch, tmp_path):
    # A parent process that imported mfh_sim exported its cache to the environment; a child
    # run with MFH_SIM_NO_CACHE=1 must not pick it up through JAX_COMPILATION_CACHE_DIR.
    cache = _load_cache_module()
    inherited = str(tmp_path / "parents")
    monkeypatch.setenv("_MFH_SIM_JAX_CACHE_DIR", inherited)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", inherited)
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    monkeypatch.setenv("MFH_SIM_NO_CACHE", "1")
    assert cache.enable_compilation_cache() is None
    for name in ("_MFH_SIM_JAX_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR",
                 "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        assert name not in os.environ


def test_a_cache_inherited_from_an_mfh_sim_parent_is_followed_to_this_processs_directory(monkeypatch, tmp_path):
    cache = _load_cache_module()
    monkeypatch.delenv("MFH_SIM_NO_CACHE", raising=False)
    monkeypatch.setenv("_MFH_SIM_JAX_CACHE_DIR", str(tmp_path / "parents"))
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "parents"))
    monkeypatch.setenv("MFH_SIM_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setattr(cache, "_jax_imported", lambda: False)  # leave this process's jax alone
    assert cache.enable_compilation_cache() == str((tmp_path / "mine").resolve())
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str((tmp_path / "mine").resolve())
