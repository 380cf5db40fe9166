"""Runs and chapters as tasks of a Dask cluster: local by default, a remote scheduler on request,
and a killed worker loses no work."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch

from mnistgen import executor, runs
from mnistgen.config import make_config

SWEEP = dict(n_train=512, batch_size=64, epochs=6, device="cpu")


def train_task(results_root: str, data_root: str, beta1: float, seeds: list[int]) -> tuple[dict, list[str]]:
    """A Dask task: one sweep setting's seeds, trained (or resumed, or reused) as one batch."""
    cfg = make_config("gan", beta1=beta1, **SWEEP)
    said: list[str] = []
    out = runs.get_runs(cfg, "t", seeds, results_root=results_root, data_root=data_root, progress=False,
                        log=said.append)
    return {r.cfg.seed: [p.detach().clone() for p in r.models["G"].parameters()] for r in out}, said


def _checkpoint_epoch(root, beta1: float, seed: int) -> int:
    path = runs.results_dir("t", root) / "runs" / runs.run_id(make_config("gan", beta1=beta1, seed=seed, **SWEEP))
    try:
        return int(torch.load(path / "checkpoint.pt", weights_only=True)["state"]["epoch"])
    except Exception:  # noqa: BLE001 - not written yet, or being replaced
        return 0


@pytest.mark.slow
def test_a_killed_worker_loses_no_work(tmp_path, data_root):
    """A smoke sweep on a LocalCluster of 2 workers on 127.0.0.1; one worker is SIGKILLed mid-run.
    Dask gives the task to a worker again, it resumes from the checkpoint, and the weights equal
    those of the same sweep run without interruption."""
    tasks = {f"beta1={b}": (train_task, (str(tmp_path / "killed"), str(data_root), b, [0, 1])) for b in (0.5, 0.9)}
    with executor.cluster(jobs=2) as client:
        futures = {k: client.submit(fn, *args, key=k, pure=False) for k, (fn, args) in tasks.items()}
        deadline = time.monotonic() + 120
        while _checkpoint_epoch(tmp_path / "killed", 0.5, 0) < 2:  # mid-run: 2 of 6 epochs saved
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.1)
        busy = [addr for addr, keys in client.processing().items() if "beta1=0.5" in keys]
        assert busy, client.processing()
        pid = client.run(os.getpid, workers=busy)[busy[0]]
        os.kill(pid, signal.SIGKILL)  # no cleanup: as an OOM kill or a lost node
        killed = {k: f.result(timeout=300) for k, f in futures.items()}
        clean = executor.run(client, {k: (fn, (str(tmp_path / "clean"), *args[1:])) for k, (fn, args) in tasks.items()},
                             "clean", progress=False)
    assert len(list((runs.results_dir("t", tmp_path / "killed") / "runs").iterdir())) == 4
    # the killed task ran again and resumed its two seeds from a checkpoint, not from scratch
    assert sum("resuming" in line for line in killed["beta1=0.5"][1]) == 2, killed["beta1=0.5"][1]
    for key in tasks:
        for seed in (0, 1):
            for a, b in zip(killed[key][0][seed], clean[key][0][seed]):
                assert torch.equal(a, b), f"{key} seed {seed}"


def test_an_unreachable_scheduler_is_named_plainly():
    with pytest.raises(executor.ClusterError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        with executor.cluster(scheduler="tcp://127.0.0.1:9"):
            pass


def test_a_failed_task_is_named_with_its_error():
    def boom(x):
        raise ValueError(f"bad input {x}")

    with executor.cluster(jobs=1) as client:
        with pytest.raises(executor.ClusterError, match=r"\['broken'\] failed:\n- broken: ValueError: bad input 3"):
            executor.run(client, {"fine": (abs, (-2,)), "broken": (boom, (3,))}, "t", progress=False)


def test_train_all_refuses_a_results_folder_it_cannot_write(tmp_path, monkeypatch):
    from mnistgen import cli

    (tmp_path / "results").write_text("a file where the results folder should be")
    monkeypatch.setenv("MNISTGEN_RESULTS", str(tmp_path / "results"))
    with pytest.raises(SystemExit, match="cannot be written"):
        cli.main(["train", "all", "--profile", "smoke"])


@pytest.mark.slow
def test_tasks_as_threads_of_one_worker_train_what_a_single_process_trains(tmp_path, data_root):
    """The GPU layout of ``train all`` (one worker, tasks as threads, each on its own CUDA stream
    where there is one), run here on CPU: two sweep settings trained side by side in threads end
    with the weights each gets trained alone in this process (initialisation takes turns with the
    global RNG; each run has its own generators)."""
    tasks = {f"beta1={b}": (train_task, (str(tmp_path / "threads"), str(data_root), b, [0, 1])) for b in (0.5, 0.9)}
    with executor.cluster(jobs=2, threads=True) as client:
        (worker,) = client.scheduler_info()["workers"].values()
        assert worker["nthreads"] == 2
        side_by_side = executor.run(client, tasks, "threads", progress=False)
    for key, (fn, args) in tasks.items():
        alone, _ = fn(str(tmp_path / "alone"), *args[1:])
        for seed in (0, 1):
            for a, b in zip(side_by_side[key][0][seed], alone[seed]):
                assert torch.equal(a, b), (key, seed)


def sleep_task(seconds: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


@pytest.mark.slow
def test_tasks_start_on_whichever_worker_frees_first():
    """The book's schedule: a long chapter on one worker, the short ones one after another on the
    other. (Submitted all at once, the scheduler assigned the last short task behind the long one
    while the other worker idled: measured with the book's evaluation chapter.)"""
    tasks = {"long": (sleep_task, (3.0,)), **{f"short {i}": (sleep_task, (0.5,)) for i in range(3)}}
    with executor.cluster(jobs=2) as client:
        done = executor.run(client, tasks, "schedule", progress=False)
    long_end = done["long"][1]
    assert all(done[f"short {i}"][1] < long_end for i in range(3)), done
    assert done["short 0"][1] <= done["short 1"][0] + 0.05  # one after another on the free worker


def test_a_dependency_outside_the_tasks_fails_that_task_by_name():
    with executor.cluster(jobs=1, threads=True) as client:
        with pytest.raises(executor.ClusterError, match=r"(?s)\['b'\].*b: its dependency 'nowhere' is not among the tasks"):
            executor.run(client, {"a": (sleep_task, (0.0,)), "b": (sleep_task, (0.0,))}, "deps",
                         progress=False, depends={"b": "nowhere"})
