"""Runs as tasks of a Dask LocalCluster against the same runs one after another (README, Dask).

    python -m benchmarks.cluster            # writes results/bench_cluster.json

Six smoke-sized GAN runs (3 values of beta1 x 2 seeds, each a task of one seed) trained:
(1) sequentially in this process with all cores' torch threads, (2) as tasks of a 2-worker
LocalCluster with one thread each (the default layout on 2 cores). Also the scheduler's
overhead per task: 200 trivial tasks, wall time per task. Each side trains into its own fresh
results folder, so nothing is reused. Timings vary by up to +-50% on this 2-core machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from mnistgen import executor, runs
from mnistgen.config import make_config
from mnistgen.runs import DATA_ROOT, REPO_DIR, atomic_write_json

RUNS = [(beta1, seed) for beta1 in (0.5, 0.7, 0.9) for seed in (0, 1)]
CONFIG = dict(n_train=4096, batch_size=128, epochs=4, device="cpu")


def one_run(results_root: str, data_root: str, beta1: float, seed: int) -> float:
    cfg = make_config("gan", beta1=beta1, seed=seed, **CONFIG)
    t0 = time.perf_counter()
    runs.get_run(cfg, "bench", results_root=results_root, data_root=data_root, progress=False, log=lambda s: None)
    return time.perf_counter() - t0


def main() -> dict:
    out: dict = {"runs": len(RUNS), "config": CONFIG, "torch_threads_sequential": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for beta1, seed in RUNS:
            one_run(f"{tmp}/seq", str(DATA_ROOT), beta1, seed)
        out["sequential_s"] = round(time.perf_counter() - t0, 2)
        t_start = time.perf_counter()
        with executor.cluster(jobs=2) as client:
            out["cluster_start_s"] = round(time.perf_counter() - t_start, 2)
            t0 = time.perf_counter()
            executor.run(client, {f"run beta1={b} seed={s}": (one_run, (f"{tmp}/dask", str(DATA_ROOT), b, s))
                                  for b, s in RUNS}, "6 runs", progress=False)
            out["local_cluster_2x1_s"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            executor.run(client, {f"noop {i}": (abs, (-i,)) for i in range(200)}, "overhead", progress=False)
            out["overhead_per_task_ms"] = round(1000 * (time.perf_counter() - t0) / 200, 2)
    out["speedup"] = round(out["sequential_s"] / out["local_cluster_2x1_s"], 2)
    print(json.dumps(out, indent=2))
    atomic_write_json(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_DIR / "results" / "bench_cluster.json", out)
    return out


if __name__ == "__main__":
    main()
