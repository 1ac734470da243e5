"""Start-up time of a fresh process: ``import mfh_sim``, a default ``simulate()``, ``mfh-sim --help``.

Each measurement is a new Python process, so nothing is shared but the persistent compilation
cache on disk (:mod:`mfh_sim._cache`), which lives in a temporary directory here
(``MFH_SIM_CACHE_DIR``), empty for the cold run:

1. **cold**: empty cache: every program is compiled, and written to the cache;
2. **warm**: the same process again (``--repeat`` times, the median): programs load from disk;
3. **no cache** (``MFH_SIM_NO_CACHE=1``): compiled every time, for comparison;
4. ``mfh-sim --help`` (``python -m mfh_sim.cli --help``);
5. **bare JAX**: a process that runs ``import jax`` and one tiny op (``jnp.ones(3)``), ``--repeat``
   times, each right after a warm run: the floor any JAX program pays.  The ratio warm / bare
   JAX (whole-process wall time, medians) is the start-up target's measure (issue: at most 1.5);
6. where the default call spends its time: ``-X importtime`` summed per top-level package over
   ``import mfh_sim`` *and* the ``simulate()`` call (the simulator's modules are imported on first
   use), and the call's phases in one warm process: imports, first call (and within it, from JAX's
   compile log, tracing, lowering and loading the compiled programs from the cache), second call
   (computing alone), the theory's solve alone; and the ratio's floor: bare JAX plus the
   computation plus loading its program, what no trimming of imports or tracing removes.

"Default simulate()" is the README's first call, ``mfh_sim.simulate(gamma=0.5, alpha=1/3)``
(100 seeds, with the theory; ``simulate()`` without a Venn diagram is an error).  Wall time
counts other load on the machine, so CPU time (user + system, the process and its threads) is
printed beside it: on a shared machine compare CPU times, and the cold/warm ratios.

Run:  python benchmarks/startup.py [--repeat 5] [--seeds 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The child: time its own phases (wall and CPU) and print them as one JSON line.
CHILD = """
import hashlib, json, resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
w0, c0 = time.perf_counter(), cpu()
import mfh_sim
w1, c1 = time.perf_counter(), cpu()
result = mfh_sim.simulate(gamma=0.5, alpha=1/3, seeds={seeds})
w2, c2 = time.perf_counter(), cpu()
# Every number of the result, bit for bit: the per-seed arrays and the theory's floats.
digest = hashlib.sha256()
for name in ("teacher_acc", "no_kd_acc", "kd_acc", "teacher_diverged", "no_kd_diverged", "kd_diverged"):
    digest.update(name.encode() + getattr(result, name).tobytes())
digest.update(repr(sorted((result.theory or {{}}).items())).encode())
print(json.dumps(dict(import_wall=w1 - w0, import_cpu=c1 - c0, simulate_wall=w2 - w1,
                      simulate_cpu=c2 - c1, kd_acc_mean=float(result.kd_acc.mean()),
                      digest=digest.hexdigest())))
"""


# The floor: a fresh process that imports jax and runs one tiny op.
BARE_JAX = "import jax, jax.numpy as jnp; jnp.ones(3).block_until_ready()"

# A warm process's phases: the simulator's imports, the first call (JAX's compile log split into
# tracing, lowering to MLIR and XLA compilation, here loading from the persistent cache, summed over
# every program), a second call (compute only, the theory remembered), and the theory alone (its
# memo cleared: one solve).
PHASES = """
import json, logging, time
w0 = time.perf_counter()
import jax, mfh_sim, mfh_sim.simulation
from mfh_sim.theory import api
w1 = time.perf_counter()
stages = dict(tracing=0.0, lowering=0.0, compiling=0.0)
class Stages(logging.Handler):
    def emit(self, record):
        words = record.getMessage().split()
        if words[:1] == ["Finished"] and words[-1] == "sec":
            stage = "tracing" if words[1] == "tracing" else "lowering" if "MLIR" in words else "compiling"
            stages[stage] += float(words[-2])
logger = logging.getLogger("jax")
logger.addHandler(Stages())
logger.propagate = False
jax.config.update("jax_log_compiles", True)
mfh_sim.simulate(gamma=0.5, alpha=1/3, seeds={seeds})
jax.config.update("jax_log_compiles", False)
w2 = time.perf_counter()
mfh_sim.simulate(gamma=0.5, alpha=1/3, seeds={seeds})
w3 = time.perf_counter()
api._CACHE.clear()
mfh_sim.simulation.theory_for(mfh_sim.make_config(gamma=0.5, alpha=1/3))
w4 = time.perf_counter()
print(json.dumps(dict(imports=w1 - w0, first_call=w2 - w1, second_call=w3 - w2, theory=w4 - w3,
                      **{{"first call's " + k: v for k, v in stages.items()}})))
"""


def _env(cache_dir: Path, no_cache: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE", "_MFH_SIM"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["MFH_SIM_CACHE_DIR"] = str(cache_dir)
    env.pop("MFH_SIM_NO_CACHE", None)
    if no_cache:
        env["MFH_SIM_NO_CACHE"] = "1"
    return env


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of a child process (from outside: interpreter start included)."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, done.stdout


def run_simulate(cache_dir: Path, seeds: int, no_cache: bool = False) -> dict[str, float]:
    wall, cpu, out = _run([sys.executable, "-c", CHILD.format(seeds=seeds)], _env(cache_dir, no_cache))
    phases = json.loads(out.strip().splitlines()[-1])
    return dict(process_wall=wall, process_cpu=cpu, **phases)


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """Medians of the timings; the digest must be the same in every run (else it is None)."""
    digests = {run["digest"] for run in runs}
    return {key: (statistics.median(run[key] for run in runs) if key != "digest"
                  else digests.pop() if len(digests) == 1 else None) for key in runs[0]}


def _cache_size(cache_dir: Path) -> tuple[int, int]:
    files = [p for p in cache_dir.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def import_costs(cache_dir: Path, seeds: int, top: int = 10) -> list[tuple[str, float]]:
    """Seconds of imports per top-level package (``-X importtime`` self times) in a process that
    runs the default ``simulate()`` (its imports happen on first use)."""
    env = _env(cache_dir)
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", CHILD.format(seeds=seeds)], env=env,
                          capture_output=True, text=True, check=True, cwd=ROOT)
    totals: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (field.strip() for field in line.split(":", 1)[1].split("|"))
        package = name.split(".")[0]
        totals[package] = totals.get(package, 0) + int(self_us)
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return [(package, us / 1e6) for package, us in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="warm and bare-JAX runs (medians shown)")
    parser.add_argument("--seeds", type=int, default=100, help="seeds of the simulate() call")
    args = parser.parse_args()

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mfh-sim-startup-") as tmp:
        cache_dir = Path(tmp) / "jax"
        cold = run_simulate(cache_dir, args.seeds)
        entries, size = _cache_size(cache_dir)
        # Warm and bare-JAX processes alternate, so that load from elsewhere on the machine falls
        # on both sides of the ratio alike.
        warm_runs, bare_runs = [], []
        for _ in range(args.repeat):
            warm_runs.append(run_simulate(cache_dir, args.seeds))
            bare_runs.append(_run([sys.executable, "-c", BARE_JAX], _env(cache_dir)))
        warm = _median(warm_runs)
        off = run_simulate(Path(tmp) / "unused", args.seeds, no_cache=True)
        help_runs = [_run([sys.executable, "-m", "mfh_sim.cli", "--help"], _env(cache_dir))
                     for _ in range(args.repeat)]
        help_wall = statistics.median(r[0] for r in help_runs)
        help_cpu = statistics.median(r[1] for r in help_runs)
        bare_wall = statistics.median(r[0] for r in bare_runs)
        bare_cpu = statistics.median(r[1] for r in bare_runs)
        costs = import_costs(cache_dir, args.seeds)
        phases = json.loads(_run([sys.executable, "-c", PHASES.format(seeds=args.seeds)],
                                 _env(cache_dir))[2].strip().splitlines()[-1])

    identical = cold["digest"] is not None and cold["digest"] == warm["digest"] == off["digest"]
    print(f"fresh processes, simulate(gamma=0.5, alpha=1/3, seeds={args.seeds}); "
          f"cache: {entries} entries, {size / 1e6:.1f} MB; load average at the start {load_start:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'seconds (wall / cpu)':28s} {'cold':>14s} {f'warm (x{args.repeat})':>14s} "
          f"{'no cache':>14s} {'cold/warm':>10s}")
    for label, key in (("import mfh_sim", "import"), ("simulate()", "simulate"),
                       ("whole process", "process")):
        cells = [f"{run[key + '_wall']:6.2f} / {run[key + '_cpu']:5.2f}" for run in (cold, warm, off)]
        ratio = cold[key + "_wall"] / warm[key + "_wall"]
        print(f"{label:28s} {cells[0]:>14s} {cells[1]:>14s} {cells[2]:>14s} {ratio:9.1f}x")
    print(f"{'mfh-sim --help':28s} {f'{help_wall:6.2f} / {help_cpu:5.2f}':>14s}")
    print(f"{'import jax + one op':28s} {f'{bare_wall:6.2f} / {bare_cpu:5.2f}':>14s}")
    print(f"start-up ratio, warm default simulate() / bare JAX (whole processes, medians of "
          f"{args.repeat}): {warm['process_wall'] / bare_wall:.2f}x wall, "
          f"{warm['process_cpu'] / bare_cpu:.2f}x CPU (target: <= 1.5x wall, on a quiet machine)")
    print("one warm process, seconds: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in phases.items()))
    # What no trimming of imports, tracing or lowering removes: JAX's own start, the computation and
    # loading the compiled program from the cache.
    floor = bare_wall + phases["second_call"] + phases["first call's compiling"]
    print(f"floor of the ratio (bare JAX + the computation + loading its program, nothing else): "
          f"{floor:.2f} s, {floor / bare_wall:.2f}x")
    print(f"numbers identical cold, warm and without cache: {identical} (every float of the result: "
          f"SHA-256 {cold['digest'][:16]}...; mean KD accuracy {cold['kd_acc_mean']!r})")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print("imports of the default simulate(), self time by package (-X importtime, wall): "
          + ", ".join(f"{package} {seconds:.2f}s" for package, seconds in costs))


if __name__ == "__main__":
    main()
