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
#   MFH_ALLOW_CPU          1 to run without a GPU (only to check this script)
#   OUT                    directory for the JSON reports (default /tmp/mfh-sim-gpu)
# Prints one JSON report per sweep (training runs per second and per minute, compile time,
# max host RSS, peak device memory) and writes them to $OUT/gpu-*.json.
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
echo "== done"; date -u
