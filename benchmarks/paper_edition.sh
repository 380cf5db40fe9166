#!/usr/bin/env bash
# The paper edition in one call of a lent GPU machine: train every run and metric of the profile,
# export the bundle, send it back.
#   run(command="bash benchmarks/paper_edition.sh", carry=[".gpu"], timeout_s=560)
# then, here: cat <files_at>/paper.tar.gz* > editions/paper.tar.gz (check its SHA-256 against
# paper-edition.json) && make book PROFILE=paper
#
# .gpu/mnist holds the four MNIST .gz files and .gpu/whl the wheels of Dask and the few of its
# dependencies the machine lacks (git-ignored; see benchmarks/gpu_session.sh). The machine has torch
# and the scientific stack but no notebook stack: the package runs from src/.
# `train all --time-limit` stops cleanly before LIMIT seconds (finished runs complete, the others
# checkpointed in results/, which stays on a warm machine): a call that runs out loses nothing and
# the same command resumes. The bundle is exported only when the edition is complete.
# Returned in $OUT: paper.tar.gz (when complete), paper-edition.json (wall times, device, sizes,
# the archive's SHA-256), train.log (the last lines), gpu.txt. The tool returns files of at most
# 16 MiB: a larger archive comes back in 15 MiB parts (paper.tar.gz.part-00, -01, ...), joined
# here with `cat paper.tar.gz.part-* > editions/paper.tar.gz` and checked against the SHA-256
# (the smoke bundle, with the same weights, is 14.4 MiB).
# On a CPU, for a dry run of this script: PROFILE=smoke LIMIT=600 bash benchmarks/paper_edition.sh
set -u
OUT=${OUT:-/tmp/paper-edition-out}
PROFILE=${PROFILE:-paper}
LIMIT=${LIMIT:-480}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" data/MNIST/raw
if [ -d .gpu/whl ]; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
fi
export PYTHONPATH="/tmp/site:$PWD/src:$PWD" PYTHONUNBUFFERED=1
if [ -d .gpu/mnist ]; then
  for f in .gpu/mnist/*.gz; do gunzip -c "$f" > "data/MNIST/raw/$(basename "$f" .gz)"; done
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no GPU"; } > "$OUT/gpu.txt"
$PYTHON -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" >> "$OUT/gpu.txt"
start=$(date +%s.%N)
$PYTHON -m mnistgen train all --profile "$PROFILE" --time-limit "$LIMIT" > /tmp/paper-train.log 2>&1
rc=$?
wall=$($PYTHON -c "import time; print(round(time.time() - $start, 1))")
tail -40 /tmp/paper-train.log > "$OUT/train.log"
bundle_rc=skipped
if [ $rc = 0 ]; then
  $PYTHON -m mnistgen bundle export --profile "$PROFILE" --out "$OUT/$PROFILE.tar.gz" >> "$OUT/train.log" 2>&1
  bundle_rc=$?
fi
$PYTHON - "$PROFILE" "$rc" "$wall" "$bundle_rc" "$OUT" <<'PY' | tee "$OUT/paper-edition.json"
import hashlib, json, os, sys
from pathlib import Path
profile, rc, wall, bundle_rc, out = sys.argv[1:]
root = Path(os.environ.get("MNISTGEN_RESULTS", "results")) / profile
log = root / "train-all.json"
archive = Path(out) / f"{profile}.tar.gz"
print(json.dumps({"profile": profile, "train_all_exit": int(rc), "call_wall_seconds": float(wall),
                  "train_all": json.loads(log.read_text()) if log.is_file() else None,
                  "bundle_exit": int(bundle_rc) if bundle_rc.isdigit() else bundle_rc,
                  "bundle_bytes": archive.stat().st_size if archive.is_file() else None,
                  "bundle_sha256": hashlib.sha256(archive.read_bytes()).hexdigest() if archive.is_file() else None},
                 indent=2))
PY
if [ -f "$OUT/$PROFILE.tar.gz" ] && [ "$(stat -c %s "$OUT/$PROFILE.tar.gz")" -gt $((15 * 1024 * 1024)) ]; then
  split -b 15M -d "$OUT/$PROFILE.tar.gz" "$OUT/$PROFILE.tar.gz.part-" && rm "$OUT/$PROFILE.tar.gz"
fi
