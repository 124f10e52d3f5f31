#!/bin/bash
# The one device command: install what the device lacks, benchmark the stacked engine, then run a queue of grids, one
# after the other, with the one command that runs grids (python -m normlib.sweep: a stacked grid's cells train as
# stacks, each run gets its record and executed notebook, each finished grid its report), and pack records, reports
# and logs into one tarball under $OUT. Sized for one command of at most 9 minutes: BUDGET_S (default 530) bounds it
# all, the grids get what the benchmark leaves; a grid left unfinished gets its report of the runs done so far
# (RENDER_S, default 30 s kept for each) and resumes from its checkpoints at the next call.
#
# usage, from the repository root on the device:
#   NORMLIB_COMMIT=<the commit that was copied> bash bench/device.sh [GRID ...]
#   (default queue: params/full_stacked.yaml, then params/full_depth_stacked.yaml)
# Carried there (git-ignored, named in the device tool's `carry`):
#   .whl/      wheels of the notebook and cluster stack the device's Python lacks, made here by
#              bash ../shared/tools/gpu-wheels.sh .whl dask distributed partd locket tblib zict nbconvert mistune \
#                   bleach tinycss2 pandocfilters jupyterlab_pygments defusedxml webencodings beautifulsoup4 soupsieve
#   .gpudata/  the CIFAR-10 copy (cifar10-jpeg.tar.xz), unless NORMLIB_DATA names another
# What comes back: $OUT/device.tar.gz (each grid's folder with records, notebooks and report.html; logs/; bench/),
# and $OUT/checkpoints.tar.gz when a grid is unfinished and its checkpoints fit. docs/device.md says what to do next.
# On a CPU (the end-to-end test): OUT=/tmp/out BUDGET_S=300 bash bench/device.sh params/smoke_stacked.yaml
# Records name the code that ran twice over: NORMLIB_COMMIT (as given) and code_sha256 (a hash of the files).
set -u
START=$(date +%s)
left() { echo $(( START + ${BUDGET_S:-530} - $(date +%s) )); }
[ $# -gt 0 ] || set -- ${QUEUE:-params/full_stacked.yaml params/full_depth_stacked.yaml}  # the grids, in order
NAMES=$(for g in "$@"; do basename "$g" .yaml; done)
OUT=${OUT:-build/device}  # what comes back: device.tar.gz, and checkpoints.tar.gz for an unfinished grid
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
echo "grids $*, cuda $CUDA, jobs $JOBS, commit ${NORMLIB_COMMIT:-unset}"
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

RENDER_S=${RENDER_S:-30}  # kept for each grid's report when its sweep is stopped before the end
N=$#
for GRID in "$@"; do  # 2. each grid in turn: its stacks longest first, each run from its checkpoint, then its report
  NAME=$(basename "$GRID" .yaml); N=$(( N - 1 )); S=$(( $(left) - RENDER_S * (N + 1) ))
  [ "$S" -gt 10 ] || { echo "$NAME: no time left to train"; continue; }
  timeout -s INT -k 30 "$S" python3 -m normlib.sweep "$GRID" --out "$RESULTS" --jobs "$JOBS" \
    > "$L/sweep-$NAME.txt" 2>&1
  RC=$?; echo "$NAME: sweep rc=$RC at $(( $(date +%s) - START )) s"; tail -3 "$L/sweep-$NAME.txt"
  if [ "$RC" != 0 ] && [ -d "$RESULTS/$NAME/runs" ] && [ "$(( $(left) - RENDER_S * N ))" -gt 5 ]; then
    timeout -s INT -k 10 "$(( $(left) - RENDER_S * N ))" python3 -m normlib.sweep "$GRID" --out "$RESULTS" \
      --report-only > "$L/report-$NAME.txt" 2>&1  # the runs done so far
    echo "$NAME: report rc=$? at $(( $(date +%s) - START )) s"
  fi
done

[ -n "${CUDA_MPS_PIPE_DIRECTORY:-}" ] && { echo quit | nvidia-cuda-mps-control > /dev/null 2>&1; }
GRIDS=$(cd "$RESULTS" && for n in $NAMES; do [ -d "$n" ] && echo "$n"; done)
tar czf "$OUT/device.tar.gz" --exclude='*.ckpt.pt*' --exclude='.*.lock' -C "$RESULTS" $GRIDS -C "$WORK" logs \
  $([ -d "$WORK/bench" ] && echo bench)
CKPTS=$([ -n "$GRIDS" ] && cd "$RESULTS" && find $GRIDS -name '*.ckpt.pt' | head -400)
if [ -n "$CKPTS" ]; then  # unfinished grids: their checkpoints, for the next window, if they fit what comes back
  (cd "$RESULTS" && tar cf - $CKPTS) | gzip -1 > "$OUT/checkpoints.tar.gz"
  [ "$(stat -c %s "$OUT/checkpoints.tar.gz")" -gt 16000000 ] && { echo "checkpoints too large to come back"; rm "$OUT/checkpoints.tar.gz"; }
fi
ls -la "$OUT"; echo "total $(( $(date +%s) - START )) s"
