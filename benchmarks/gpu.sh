#!/usr/bin/env bash
# Throughput and peak device memory of a big sweep of the paper's Fig. 2 protocol on a GPU.
#
# Runs unattended, offline, from the repository root of a checkout, with whatever JAX (with its
# CUDA plugin) the machine already has: nothing is downloaded or installed (PYTHONPATH=.).
#
#   bash benchmarks/gpu.sh                              # >= 100,000 training runs, then 1,000,000
#                                                       # if the first part projects under 3 minutes
#   MFH_GPU_TRAINING_RUNS=3000 MFH_ALLOW_CPU=1 bash benchmarks/gpu.sh   # logic check on a CPU
#
# Environment:
#   MFH_GPU_TRAINING_RUNS  training runs of the measured sweep (default 100002: 3031 seeds x 11
#                          gammas x 3 trainings)
#   MFH_GPU_BIG_RUNS       training runs of the optional second sweep (default 1000000; 0 skips it)
#   MFH_GPU_CHUNK_SIZE     runs per compiled call (default: sized to the device's memory)
#   MFH_GPU_TORCH          1 (default) runs the batched PyTorch peer if torch with CUDA is there
#   MFH_GPU_TORCH_SEEDS    seeds per overlap of the peer's comparison (default 2000)
#   MFH_ALLOW_CPU          1 to run without a GPU (only to check this script)
#   OUT                    directory for the JSON reports (default /tmp/mfh-sim-gpu)
# Prints one JSON report per sweep (training runs per second and per minute, compile time,
# max host RSS, peak device memory) and writes them to $OUT/gpu-*.json; then the device's f32 GEMM
# rate with the sweep's effective rate as a fraction of it and against the target of ten million
# training runs a minute (gpu-rates.log), the fused Pallas kernel against the XLA path on Fig. 2's
# shapes (gpu-kernel.log, about a minute), and the batched PyTorch peer on the same device
# (gpu-torch.log).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-python3}"
RUNS="${MFH_GPU_TRAINING_RUNS:-100002}"
BIG="${MFH_GPU_BIG_RUNS:-1000000}"
OUT_DIR="${OUT:-/tmp/mfh-sim-gpu}"
mkdir -p "$OUT_DIR"
CHUNK_ARGS=()
if [[ -n "${MFH_GPU_CHUNK_SIZE:-}" ]]; then CHUNK_ARGS=(--chunk-size "$MFH_GPU_CHUNK_SIZE"); fi

echo "== machine"; date -u; uptime || true
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
"$PYTHON" - <<'PY' || exit 1
import os, sys
import jax
print("python", sys.version.split()[0], "jax", jax.__version__, "backend", jax.default_backend(), jax.devices())
if jax.default_backend() == "cpu" and os.environ.get("MFH_ALLOW_CPU") != "1":
    sys.exit("no GPU backend in this JAX (set MFH_ALLOW_CPU=1 to check the script on a CPU)")
PY

echo "== sweep of about $RUNS training runs (Fig. 2 protocol, 11 gammas, 1000 steps)"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
if ! timeout 420 "$PYTHON" benchmarks/throughput.py sweep --training-runs "$RUNS" --out "$SCRATCH/first" \
        "${CHUNK_ARGS[@]}" 2>&1 | tee "$OUT_DIR/gpu-first.json.log"; then
    # Unattended: if the memory-derived chunk did not fit (or anything else failed), retry once
    # with a small fixed chunk, resuming what the first attempt stored.
    echo "== first attempt failed; retrying with --chunk-size 2048"
    CHUNK_ARGS=(--chunk-size 2048)
    timeout 420 "$PYTHON" benchmarks/throughput.py sweep --training-runs "$RUNS" --out "$SCRATCH/first" \
        "${CHUNK_ARGS[@]}" 2>&1 | tee "$OUT_DIR/gpu-first.json.log"
fi
sed -n '/^{/,/^}/p' "$OUT_DIR/gpu-first.json.log" > "$OUT_DIR/gpu-first.json"

if [[ "$BIG" -gt 0 ]]; then
    # Only if the measured rate projects the big sweep to finish within 3 minutes.
    PER_MIN="$("$PYTHON" -c "import json; print(json.load(open('$OUT_DIR/gpu-first.json'))['training_runs_per_min'])" 2>/dev/null)"
    PER_MIN="${PER_MIN:-0}"
    if [[ "$PER_MIN" -ge $(( BIG / 3 )) ]]; then
        echo "== sweep of about $BIG training runs"
        timeout 300 "$PYTHON" benchmarks/throughput.py sweep --training-runs "$BIG" "${CHUNK_ARGS[@]}" 2>&1 \
            | tee "$OUT_DIR/gpu-big.json.log"
        sed -n '/^{/,/^}/p' "$OUT_DIR/gpu-big.json.log" > "$OUT_DIR/gpu-big.json"
    else
        echo "== skipping the $BIG-run sweep: $PER_MIN training runs/min projects it over 3 minutes"
    fi
fi
# The machine's own f32 GEMM rate on this device and the sweep's effective rate against it (the
# undeduplicated protocol's FLOPs, 33.3 MFLOP a training run: benchmarks/speed.py), and the
# target of ten million training runs a minute on one H100.
echo "== f32 GEMM rate and the sweep's effective rate"
timeout 60 "$PYTHON" - "$OUT_DIR/gpu-first.json" <<'PY' 2>&1 | tee "$OUT_DIR/gpu-rates.log"
import json, sys
sys.path.insert(0, "benchmarks")
import jax
from speed import FLOPS_PER_SIMULATION, TRAININGS_PER_SIMULATION, gemm_rate
size = 2048 if jax.default_backend() == "cpu" else 8192
gemm = gemm_rate(size=size)
per_run = FLOPS_PER_SIMULATION / TRAININGS_PER_SIMULATION
print(f"f32 GEMM {size} x {size} on {jax.devices()[0]}: {gemm:.0f} GFLOP/s; at that rate "
      f"{60 * gemm * 1e9 / per_run / 1e6:.1f} million training runs/min would be the compute roofline")
try:
    per_min = json.load(open(sys.argv[1]))["training_runs_per_min"]
except (OSError, KeyError, ValueError) as error:
    sys.exit(f"no sweep report to compare ({error})")
effective = per_min / 60 * per_run / 1e9
print(f"sweep: {per_min / 1e6:.2f} million training runs/min = {effective:.0f} GFLOP/s effective, "
      f"{effective / gemm:.1%} of the GEMM rate; target 10 million/min: {per_min / 1e7:.0%} of it")
PY

echo "== fused Pallas kernel (mfh_sim.kernels) against the XLA path, Fig. 2 shapes"
timeout 150 "$PYTHON" benchmarks/kernel.py 2>&1 | tee "$OUT_DIR/gpu-kernel.log"

# The whole protocol with the kernel (sweep(kernel='pallas')) against the default, same sweep.
echo "== Fig. 2 sweep, kernel='xla' and kernel='pallas'"
timeout 150 "$PYTHON" - <<'PY' 2>&1 | tee "$OUT_DIR/gpu-kernel-sweep.log"
import os, time
import numpy as np
import mfh_sim
from mfh_sim.experiments.paper import fig2_point
seeds = int(os.environ.get("MFH_GPU_KERNEL_SEEDS", "5000"))
points = [fig2_point(o) for o in range(11)]
results = {}
for kernel in ("xla", "pallas"):
    try:
        mfh_sim.sweep(points=points, seeds=16, theory=False, kernel=kernel)  # compile
        start = time.perf_counter()
        results[kernel] = mfh_sim.sweep(points=points, seeds=seeds, theory=False, kernel=kernel)
        seconds = time.perf_counter() - start
    except Exception as error:
        print(f"kernel={kernel}: failed, {type(error).__name__}: {str(error)[:300]}")
        continue
    print(f"kernel={kernel}: {seconds:.2f} s, {60 * 33 * seeds / seconds / 1e6:.2f} million training runs/min")
if len(results) == 2:
    for name in ("teacher_acc", "no_kd_acc", "kd_acc"):
        diff = np.abs(getattr(results["pallas"], name) - getattr(results["xla"], name))
        print(f"{name}: runs equal {np.mean(diff == 0):.1%}, largest difference {diff.max():.4f}")
PY

# The batched PyTorch peer on the same device, eager and compiled, if this machine's torch has CUDA
# (nothing is installed here); its accuracies are checked against mfh_sim's within seed noise.
if [[ "${MFH_GPU_TORCH:-1}" == "1" ]]; then
    echo "== batched PyTorch peer (11 overlaps x ${MFH_GPU_TORCH_SEEDS:-2000} seeds)"
    timeout 150 "$PYTHON" - <<'PY' 2>&1 | tee "$OUT_DIR/gpu-torch.log"
import os, sys, time
sys.path.insert(0, "benchmarks")
try:
    import torch
except ImportError:
    sys.exit("no torch on this machine: peer skipped")
import numpy as np
import mfh_sim
from mfh_sim.experiments.paper import fig2_point
import torch_baseline
device = "cuda" if torch.cuda.is_available() else "cpu"
if device == "cpu" and os.environ.get("MFH_ALLOW_CPU") != "1":
    sys.exit(f"torch {torch.__version__} has no CUDA here: peer skipped")
seeds = int(os.environ.get("MFH_GPU_TORCH_SEEDS", "2000"))
overlaps = tuple(range(11))
start = time.perf_counter()
ours = mfh_sim.sweep(points=[fig2_point(o) for o in overlaps], seeds=seeds, theory=False)
print(f"mfh_sim sweep, first call: {time.perf_counter() - start:.1f} s")
start = time.perf_counter()
ours = mfh_sim.sweep(points=[fig2_point(o) for o in overlaps], seeds=seeds, theory=False)
ours_s = time.perf_counter() - start
runs = 3 * len(overlaps) * seeds
print(f"mfh_sim sweep, compiled: {ours_s:.2f} s, {60 * runs / ours_s / 1e6:.2f} million training runs/min")
reference = np.stack([ours.teacher_acc, ours.no_kd_acc, ours.kd_acc], axis=-1)
for share, compiled in ((False, False), (False, True), (True, False), (True, True)):
    try:
        peer = torch_baseline.run_batched(overlaps, seeds, chunk=seeds, compiled=compiled, device=device,
                                          workers=1 if device == "cuda" else 2, share=share)
    except Exception as error:  # e.g. torch.compile without a working triton on this machine
        print(f"torch batched{' shared' if share else ''} on {device}, {'compiled' if compiled else 'eager'}: failed, "
              f"{type(error).__name__}: {str(error)[:300]}")
        continue
    agree, worst, _ = torch_baseline.compare_accuracies(reference, peer["accuracies"])
    print(f"torch {torch.__version__} batched{' shared' if share else ''} on {device}, "
          f"{'compiled' if compiled else 'eager'}: "
          f"{peer['wall_time_s']:.2f} s, {60 * peer['runs_per_s'] / 1e6:.2f} million training runs/min; "
          f"mfh_sim is {peer['wall_time_s'] / ours_s:.1f}x faster; accuracies agree within seed "
          f"noise: {agree} (largest |z| {worst:.1f})")
PY
fi
echo "== done"; date -u
