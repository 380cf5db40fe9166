#!/usr/bin/env bash
# Everything one lease of a GPU machine does, in one call (a fresh machine takes minutes to start):
#   run(command="bash benchmarks/gpu_session.sh", carry=[".gpu"])
# .gpu/mnist holds the four MNIST .gz files (git-ignored; load_mnist checks their MD5s after
# unpacking). The machine has torch and the scientific stack but not the notebook stack, so the
# package runs from src/ and pytest without nbval. Results land in $OUT (at most 8 files).
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT" data/MNIST/raw
export PYTHONPATH="$PWD/src:$PWD" PYTHONUNBUFFERED=1 MNISTGEN_RESULTS=/tmp/mnistgen-results
for f in .gpu/mnist/*.gz; do gunzip -c "$f" > "data/MNIST/raw/$(basename "$f" .gz)"; done
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
timeout "${TEST_S:-240}" python3 -m pytest -q -o addopts="" -p no:cacheprovider -ra \
    tests/test_device_epoch.py 2>&1 | tail -40 | tee "$OUT/pytest.txt"
timeout "${BENCH_S:-330}" python3 -m benchmarks.steps --out "$OUT/steps.json" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/steps.txt"
