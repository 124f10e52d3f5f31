#!/bin/bash
# One device call: CUDA-path tests beside the full grid (MPS when it starts), then the GPU bench with the time left.
# Run from the repository root on the device; its logs of the 2026-11-25 H100 session are in reports/full/device/.
START=$(date +%s); left() { echo $(( START + $1 - $(date +%s) )); }
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD NORMLIB_DATA=$PWD/.gpudata/cifar10-jpeg.tar.xz NORMLIB_CACHE=/tmp/cache
export TORCHINDUCTOR_COMPILE_THREADS=1 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor
L=$OUT/logs; mkdir -p $L
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl > $L/pip.txt 2>&1 || { echo pip failed; cat $L/pip.txt; }
nvidia-smi > $L/nvidia-smi.txt 2>&1; lscpu > $L/lscpu.txt; python3 -m pip list 2>/dev/null | grep -iE "^(torch|triton|numpy|pandas|dask|distributed|papermill|ipykernel) " > $L/versions.txt
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mpslog; mkdir -p /tmp/mps /tmp/mpslog
JOBS=8
if nvidia-cuda-mps-control -d 2>> $L/mps.txt && timeout 60 python3 -c "import torch; torch.ones(1, device='cuda'); print('mps client ok')" >> $L/mps.txt 2>&1; then JOBS=${JOBS_MPS:-14}; else echo quit | nvidia-cuda-mps-control 2>/dev/null; unset CUDA_MPS_PIPE_DIRECTORY; echo "mps off" >> $L/mps.txt; fi
echo "jobs $JOBS" | tee -a $L/mps.txt
python3 -c "from normlib import data; d = data.load(); print(d.source, d.sha256, len(d.train_y), len(d.test_y))" > $L/data.txt 2>&1
cat $L/data.txt
nvidia-smi dmon -s u -d 5 > $L/dmon.txt 2>&1 &
timeout 240 python3 -m pytest -q -p no:cacheprovider -s tests/test_cuda.py > $L/test_cuda.txt 2>&1 &
TESTS=$!
timeout -s INT -k 30 $(left ${GRID_S:-545}) python3 -m normlib.sweep params/full.yaml --jobs $JOBS --no-report > $L/sweep.txt 2>&1
echo "sweep rc=$? at $(( $(date +%s) - START )) s"; tail -5 $L/sweep.txt
wait $TESTS; echo "tests rc=$?"; tail -3 $L/test_cuda.txt
if [ $(left 560) -gt 150 ]; then timeout -s INT $(( $(left 560) - 10 )) python3 -m bench.bench --compile auto --no-grid --batch-sizes 2 16 128 --train-images 4096 --out $OUT/bench > $L/bench.txt 2>&1; echo "bench rc=$?"; tail -30 $L/bench.txt; fi
kill %1 2>/dev/null
tar czf $OUT/full.tar.gz --exclude='*.ckpt.pt*' --exclude='.*.lock' reports/full
ls -la $OUT; echo "total $(( $(date +%s) - START )) s"
