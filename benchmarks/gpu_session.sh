#!/usr/bin/env bash
# Everything one lease of a GPU machine does, in one call (a fresh machine takes minutes to start):
#   run(command="bash benchmarks/gpu_session.sh", carry=[".gpu"])
# .gpu/mnist holds the four MNIST .gz files and .gpu/whl the wheels of Dask and the few of its
# dependencies the machine lacks (all git-ignored; load_mnist checks the MD5s after unpacking).
# The machine has torch and the scientific stack but not the notebook stack, so the package runs
# from src/ and pytest without nbval. Results land in $OUT (at most 8 files). Sections:
#   tests:   the CUDA tests (graphed = eager, bitwise resume, threads sharing the GPU)
#   threads: `train all` on the paper profile with every schedule cut to 1/20 of its epochs,
#            its groups one at a time (--jobs 1) and all at once (threads sharing the GPU)
#   bench:   eager vs graphed ms/step per model, and the paper profile's projected wall time
set -u
OUT=${OUT:-/tmp/gpu-out}
SECTIONS=${SECTIONS:-tests threads bench}
mkdir -p "$OUT" data/MNIST/raw
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH="/tmp/site:$PWD/src:$PWD" PYTHONUNBUFFERED=1 MNISTGEN_RESULTS=/tmp/mnistgen-results
for f in .gpu/mnist/*.gz; do gunzip -c "$f" > "data/MNIST/raw/$(basename "$f" .gz)"; done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, dask; print('torch', torch.__version__, torch.cuda.get_device_name(), 'dask', dask.__version__)" | tee -a "$OUT/gpu.txt"
if [[ $SECTIONS == *tests* ]]; then
  timeout "${TEST_S:-200}" python3 -m pytest -q -o addopts="" -p no:cacheprovider -ra tests/test_device_epoch.py 2>&1 \
    > "$OUT/pytest-full.txt"; tail -25 "$OUT/pytest-full.txt" | tee "$OUT/pytest.txt"
fi
if [[ $SECTIONS == *threads* ]]; then
  python3 - <<'PY'
import yaml
paper = yaml.safe_load(open("profiles/paper.yml"))
for model in ("gan", "acgan", "vae", "iwae"):
    paper[model]["epochs"] = max(1, paper[model]["epochs"] // 20)
open("profiles/paper20.yml", "w").write(yaml.safe_dump(paper))
print("paper20:", {m: paper[m].get("epochs") for m in ("gan", "acgan", "vae", "iwae")})
PY
  for jobs in 1 all; do
    args=(); [[ $jobs == 1 ]] && args=(--jobs 1)
    start=$(date +%s.%N)
    MNISTGEN_RESULTS=/tmp/results-jobs-$jobs timeout "${THREADS_S:-200}" python3 -m mnistgen train all --profile paper20 \
      "${args[@]}" > "/tmp/train-$jobs.log" 2>&1
    rc=$?
    echo "train all --profile paper20 --jobs $jobs: rc $rc, $(python3 -c "import time; print(round(time.time() - $start, 1))") s" \
      | tee -a "$OUT/threads.txt"
    tail -3 "/tmp/train-$jobs.log" | tee -a "$OUT/threads.txt"
  done
fi
if [[ $SECTIONS == *bench* ]]; then
  timeout "${BENCH_S:-300}" python3 -m benchmarks.steps --out "$OUT/steps.json" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/steps.txt"
fi
