#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one prepared run, sized to take about 5 minutes on
# one H100 or H200 (an estimate: it has not run on a GPU yet; each step has its own time
# limit).
#
#   bash benchmarks/gpu_checks.sh            # logs to $OUT (if set) or runs/gpu_checks
#   PYTHON=.venv/bin/python bash benchmarks/gpu_checks.sh
#
# Steps, most important first, each under its own time limit so that one that hangs or
# fails leaves the others' results (each step's log is written as it runs):
#   1. env        GPU, driver, torch and Python versions
#   2. tests      tests/test_cuda.py (the same math on the GPU as on the CPU, bf16 autocast,
#                 channels-last training, inference, a whole run) and the CUDA
#                 host-device-sync test of tests/test_loss.py
#   3. bench_loss the vectorised PPC loss against the loop-style reference on CUDA, at 16x16
#                 and 56x56 maps, and the loss under set_sync_debug_mode("error")
#   4. bench_step the training step of the official recipe (ResNet-38, SEAM, batch 8 of
#                 448 px, bf16, channels-last) without PPC, with f_proj only, with PPC:
#                 ms/step, images/s, peak memory, the loss's share of the step
#   5. run        the synthetic recipe (SEAM + PPC, seed 0) trained, inferred and scored
#                 on the GPU: wall time and mIoU beside the CPU runs stored in results/
# A summary of each step's exit status is printed at the end and written to summary.txt;
# the script exits 1 if any step failed or ran out of time. The run's mIoU comes from bf16
# autocast and the GPU's random streams: close to the CPU runs of results/, not equal.
# It needs a Python with torch (CUDA), torchvision, numpy, pandas, pillow, tqdm, pytest.
# The GPU machines' own python3 has them (torch 2.11.0, torchvision 0.26.0: the test suite
# passes with that pair on the CPU).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOGS=${OUT:-runs/gpu_checks}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! command -v "$PY" > /dev/null; then
    echo "gpu_checks: no Python at $PY; set PYTHON to a Python with torch" >&2
    exit 3
fi
if ! "$PY" -c "import torch" 2> /dev/null; then
    echo "gpu_checks: $PY cannot import torch; set PYTHON to a Python with a CUDA build" \
         "of torch (e.g. PYTHON=.venv/bin/python)" >&2
    exit 3
fi
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_checks: $PY sees no CUDA device (torch.cuda.is_available() is False);" \
         "run this on a machine with an NVIDIA GPU, or set PYTHON to a CUDA build of torch" >&2
    exit 3
fi
mkdir -p "$LOGS"

SUMMARY="$LOGS/summary.txt"
: > "$SUMMARY"
RUN_DIR=$(mktemp -d)  # the run's folder stays out of $OUT (only logs come back)
trap 'rm -rf "$RUN_DIR"' EXIT
failed=0
step() {  # step NAME SECONDS COMMAND...: run COMMAND with a time limit, log and record it
    local name=$1 limit=$2
    shift 2
    local started=$SECONDS
    echo "=== $name: $*"
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"
    local status=${PIPESTATUS[0]}
    local verdict="exit $status"
    [ "$status" = 124 ] || [ "$status" = 137 ] && verdict="stopped at its limit of $limit s"
    [ "$status" = 0 ] || failed=1
    echo "$name: $verdict, $((SECONDS - started)) s" | tee -a "$SUMMARY"
}

# limits: 530 s in all, inside one 600 s device call
step env 30 sh -c "nvidia-smi; $PY -c 'import platform, torch, torchvision; \
print(\"python\", platform.python_version(), \"torch\", torch.__version__, \
\"torchvision\", torchvision.__version__, \"cuda\", torch.version.cuda, \
\"device\", torch.cuda.get_device_name())'"
step tests 180 "$PY" -m pytest -q -o addopts= -p no:cacheprovider -rs \
    tests/test_cuda.py "tests/test_loss.py::test_loss_makes_no_sync_on_cuda"
step bench_loss 90 "$PY" benchmarks/bench_loss.py --device cuda --sizes 16,56 --repeats 20
step bench_step 120 "$PY" benchmarks/bench_train_step.py --device cuda --steps 10 --warmup 3
step run 110 "$PY" -m ppc run --quiet --device cuda --base seam --use_ppc true --seed 0 \
    --out_dir "$RUN_DIR/seam_ppc_cuda"
for file in summary.json metrics.jsonl; do
    [ -f "$RUN_DIR/seam_ppc_cuda/$file" ] && cp "$RUN_DIR/seam_ppc_cuda/$file" "$LOGS/run_$file"
done
echo "=== summary"
cat "$SUMMARY"
exit "$failed"
