#!/bin/bash
# The one device command: install what the device lacks, benchmark the stacked engine, resume a grid in stacks
# (normlib.stackrun), execute every run's notebook and render the report (normlib.sweep, which trains nothing when
# every record is complete), and pack records, report and logs into one tarball under $OUT. Sized for one command of
# at most 9 minutes: BUDGET_S (default 530) bounds it all, the grid gets what the benchmark and the notebooks leave.
#
# usage, from the repository root on the device:
#   NORMLIB_COMMIT=<the commit that was copied> bash bench/device.sh [GRID]     (GRID default params/full_stacked.yaml)
# Carried there (git-ignored, named in the device tool's `carry`):
#   .whl/      wheels of the notebook and cluster stack the device's Python lacks, made here by
#              bash ../shared/tools/gpu-wheels.sh .whl dask distributed partd locket tblib zict nbconvert mistune \
#                   bleach tinycss2 pandocfilters jupyterlab_pygments defusedxml webencodings beautifulsoup4 soupsieve
#   .gpudata/  the CIFAR-10 copy (cifar10-jpeg.tar.xz), unless NORMLIB_DATA names another
# On a CPU (the end-to-end test): OUT=/tmp/out BUDGET_S=300 bash bench/device.sh params/smoke_stacked.yaml
# Records name the code that ran twice over: NORMLIB_COMMIT (as given) and code_sha256 (a hash of the files).
set -u
START=$(date +%s)
left() { echo $(( START + ${BUDGET_S:-530} - $(date +%s) )); }
GRID=${1:-params/full_stacked.yaml}
NAME=$(basename "$GRID" .yaml)
OUT=${OUT:-build/device}  # what comes back: the grid's tarball, and the checkpoints' of an unfinished grid
RESULTS=${RESULTS:-reports}  # the records' root: reports/<grid>/ as a sweep writes it
WORK=$(mktemp -d)  # logs and benchmark, packed into the tarball beside the grid's folder
L=$WORK/logs
mkdir -p "$L" "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD NORMLIB_CACHE=${NORMLIB_CACHE:-/tmp/normlib-cache}
[ -z "${NORMLIB_DATA:-}" ] && [ -e .gpudata/cifar10-jpeg.tar.xz ] && export NORMLIB_DATA=$PWD/.gpudata/cifar10-jpeg.tar.xz
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    > "$L/pip.txt" 2>&1 || { echo "pip failed:"; tail -5 "$L/pip.txt"; }
fi
CUDA=$(python3 -c "import torch; print(int(torch.cuda.is_available()))")
JOBS=${JOBS:-$([ "$CUDA" = 1 ] && echo 14 || echo 1)}  # stacks at once: all 14 cells of the full grid on a GPU
{ nvidia-smi || true; python3 -c "from normlib import provenance; print(provenance.environment())"; } > "$L/device.txt" 2>&1
echo "grid $GRID, cuda $CUDA, jobs $JOBS, commit ${NORMLIB_COMMIT:-unset}"
if [ "$CUDA" = 1 ]; then  # decode the data into the cache once, before processes that read it start side by side
  python3 -c "from normlib import data; d = data.load(); print(d.source, d.sha256, len(d.train_y), len(d.test_y))" \
    > "$L/data.txt" 2>&1; tail -1 "$L/data.txt"
fi

if [ "${BENCH_S:-60}" -gt 0 ]; then  # 1. the step's speed, K = 1 and 5, beside the original's pipeline
  if [ "$CUDA" = 1 ]; then BENCH_ARGS=""; else BENCH_ARGS="--synthetic --train-images 256 --steps 3 --batch-sizes 2 8 --runs 1 2"; fi
  timeout -s INT "${BENCH_S:-60}" python3 -m bench.stack_bench $BENCH_ARGS --out "$WORK/bench" > "$L/bench.txt" 2>&1
  echo "bench rc=$? at $(( $(date +%s) - START )) s"; tail -4 "$L/bench.txt"
fi

if [ "$CUDA" = 1 ]; then  # MPS: the stacks' processes share the GPU at once instead of taking turns
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mpslog
  mkdir -p /tmp/mps /tmp/mpslog
  if nvidia-cuda-mps-control -d >> "$L/mps.txt" 2>&1 && timeout 60 python3 -c "import torch; torch.ones(1, device='cuda')" \
    >> "$L/mps.txt" 2>&1; then echo "mps on"; else
    echo quit | nvidia-cuda-mps-control > /dev/null 2>&1; unset CUDA_MPS_PIPE_DIRECTORY; echo "mps off (see logs/mps.txt)"; fi
fi

NOTEBOOKS_S=${NOTEBOOKS_S:-100}  # 3. kept for the notebooks and the report
timeout -s INT -k 30 $(( $(left) - NOTEBOOKS_S )) python3 -m normlib.stackrun "$GRID" --out "$RESULTS" --jobs "$JOBS" \
  > "$L/stackrun.txt" 2>&1  # 2. the grid, in stacks, longest first; resumes from checkpoints
echo "stackrun rc=$? at $(( $(date +%s) - START )) s"; tail -3 "$L/stackrun.txt"

timeout -s INT -k 20 $(( $(left) - 15 )) python3 -m normlib.sweep "$GRID" --out "$RESULTS" --jobs "${NB_JOBS:-8}" \
  --lock-wait 5 > "$L/sweep.txt" 2>&1
echo "sweep rc=$? at $(( $(date +%s) - START )) s"; tail -3 "$L/sweep.txt"

[ -n "${CUDA_MPS_PIPE_DIRECTORY:-}" ] && { echo quit | nvidia-cuda-mps-control > /dev/null 2>&1; }
tar czf "$OUT/$NAME.tar.gz" --exclude='*.ckpt.pt*' --exclude='.*.lock' -C "$RESULTS" "$NAME" -C "$WORK" logs \
  $([ -d "$WORK/bench" ] && echo bench)
CKPTS=$(cd "$RESULTS" && find "$NAME" -name '*.ckpt.pt' | head -200)
if [ -n "$CKPTS" ]; then  # an unfinished grid: its checkpoints, for the next window, if they fit what comes back
  (cd "$RESULTS" && tar cf - $CKPTS) | gzip -1 > "$OUT/checkpoints.tar.gz"
  [ "$(stat -c %s "$OUT/checkpoints.tar.gz")" -gt 16000000 ] && { echo "checkpoints too large to come back"; rm "$OUT/checkpoints.tar.gz"; }
fi
ls -la "$OUT"; echo "total $(( $(date +%s) - START )) s"
