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


def train_task_killing_its_worker(results_root: str, data_root: str, beta1: float, seeds: list[int],
                                  marker: str) -> tuple[dict, list[str]]:
    """``train_task``, whose worker process SIGKILLs itself once every seed's epoch 2 is saved (once:
    the marker file says it happened). A fixed kill point: the test cannot race the training."""
    save = runs.save_checkpoint

    def save_then_maybe_die(path, cfg, st, i=0):
        save(path, cfg, st, i)
        if st.epoch == 2 and i == st.n_seeds - 1 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup: as an OOM kill or a lost node

    runs.save_checkpoint = save_then_maybe_die
    try:
        return train_task(results_root, data_root, beta1, seeds)
    finally:
        runs.save_checkpoint = save


@pytest.mark.slow
def test_a_killed_worker_loses_no_work(tmp_path, data_root):
    """A smoke sweep on a LocalCluster of 2 workers on 127.0.0.1; one worker dies mid-run (its task
    kills it after epoch 2 of 6). Dask gives the task to a worker again, it resumes from the
    checkpoint, and the weights equal those of the same sweep run without interruption."""
    marker = tmp_path / "killed-once"
    tasks = {"beta1=0.5": (train_task_killing_its_worker, (str(tmp_path / "killed"), str(data_root), 0.5, [0, 1],
                                                           str(marker))),
             "beta1=0.9": (train_task, (str(tmp_path / "killed"), str(data_root), 0.9, [0, 1]))}
    with executor.cluster(jobs=2) as client:
        killed = executor.run(client, tasks, "killed", progress=False)
        clean = executor.run(client, {f"beta1={b}": (train_task, (str(tmp_path / "clean"), str(data_root), b, [0, 1]))
                                      for b in (0.5, 0.9)}, "clean", progress=False)
    assert marker.exists()  # the worker did die
    assert len(list((runs.results_dir("t", tmp_path / "killed") / "runs").iterdir())) == 4
    # the killed task ran again and resumed its two seeds from epoch 2, not from scratch
    assert [line.split(" from ")[1] for line in killed["beta1=0.5"][1] if "resuming" in line] == ["epoch 2 of 6"] * 2
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


def sleep_task(seconds: float) -> None:
    time.sleep(seconds)


def long_task(folder: str, shorts: int) -> tuple[str, bool]:
    """Blocks until every short task has finished (their marker files exist), then says so. Had the
    scheduler queued a short task behind this one on its worker, that task could not finish while
    this one waits: the wait ends at its cap with False (a cap, not a timing being judged)."""
    from distributed import get_worker

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(os.path.exists(os.path.join(folder, f"short-{i}")) for i in range(shorts)):
            return get_worker().address, True
        time.sleep(0.05)
    return get_worker().address, False


def short_task(folder: str, i: int) -> tuple[str, list[str]]:
    """Leaves its marker; returns its worker and the markers that existed when it started."""
    from distributed import get_worker

    before = sorted(os.listdir(folder))
    open(os.path.join(folder, f"short-{i}"), "w").close()
    return get_worker().address, before


@pytest.mark.slow
def test_tasks_start_on_whichever_worker_frees_first(tmp_path):
    """The book's schedule: a long chapter on one worker, the short ones one after another on the
    other. (Submitted all at once, the scheduler assigned the last short task behind the long one
    while the other worker idled: measured with the book's evaluation chapter.) Judged by what
    each task saw, not by clocks."""
    tasks = {"long": (long_task, (str(tmp_path), 3)), **{f"short {i}": (short_task, (str(tmp_path), i)) for i in range(3)}}
    with executor.cluster(jobs=2) as client:
        done = executor.run(client, tasks, "schedule", progress=False)
    long_worker, saw_every_short = done["long"]
    assert saw_every_short, "a short task waited behind the long one"
    assert all(done[f"short {i}"][0] != long_worker for i in range(3)), done
    # one after another on the free worker: each started after the previous one had finished
    assert [done[f"short {i}"][1] for i in range(3)] == [[], ["short-0"], ["short-0", "short-1"]], done


def test_a_dependency_outside_the_tasks_fails_that_task_by_name():
    with executor.cluster(jobs=1, threads=True) as client:
        with pytest.raises(executor.ClusterError, match=r"(?s)\['b'\].*b: its dependency 'nowhere' is not among the tasks"):
            executor.run(client, {"a": (sleep_task, (0.0,)), "b": (sleep_task, (0.0,))}, "deps",
                         progress=False, depends={"b": "nowhere"})


def test_the_runs_bar_counts_the_planned_runs_as_they_finish(tmp_path):
    """`make book`'s bar over runs: it counts a planned run once its manifest exists (what another
    process leaves on the shared folder), and nothing else."""
    import io

    from mnistgen import edition
    from mnistgen.progress import RunsBar

    planned = [rid for rs in edition.run_ids("smoke").values() for rid in rs]
    out = io.StringIO()
    with RunsBar("smoke", results_root=tmp_path, every=0.02, disable=False, file=out) as bar:
        assert bar.bar.total == len(planned) and bar.bar.n == 0
        for rid in planned[:3] + ["not-planned-seed0-0000000000"]:
            (tmp_path / "smoke" / "runs" / rid).mkdir(parents=True)
            (tmp_path / "smoke" / "runs" / rid / "manifest.json").write_text("{}")
        (tmp_path / "smoke" / "runs" / planned[3]).mkdir()  # training, no manifest yet
        deadline = time.monotonic() + 30
        while bar.bar.n < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bar.bar.n == 3
    assert f"3/{len(planned)}" in out.getvalue()


def test_one_chapters_bar_counts_its_own_runs_or_with_overrides_the_runs_that_finish(tmp_path):
    """Issue 43: `make run` printed nothing while it trained. One chapter's render gets the bar over
    the runs it reads; with overrides (runs not known in advance), the runs finishing while it is open."""
    import io

    from mnistgen.chapters import CHAPTERS
    from mnistgen.progress import RunsBar

    mine = CHAPTERS["vae"].planned_runs("smoke")
    assert mine and all(rid.startswith(("vae-", "iwae-")) for rid in mine)
    runs = tmp_path / "smoke" / "runs"
    (runs / "gan-seed0-old").mkdir(parents=True)
    (runs / "gan-seed0-old" / "manifest.json").write_text("{}")  # finished before: not counted
    out = io.StringIO()
    with RunsBar("smoke", results_root=tmp_path, every=0.02, disable=False, file=out, planned=[]) as bar:
        assert bar.bar.total is None and bar.bar.n == 0
        (runs / "gan-seed7-new").mkdir()
        (runs / "gan-seed7-new" / "manifest.json").write_text("{}")
        deadline = time.monotonic() + 30
        while bar.bar.n < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bar.bar.n == 1
