"""Where parallel work runs: a Dask cluster, on this machine unless told otherwise.

Every parallel piece of work goes through here, one mechanism for all: chapters rendered side
by side (``render all --jobs N``, ``make book``) and groups of runs (``train all``, the sweep).

- By default a ``LocalCluster`` on 127.0.0.1: ``jobs`` worker processes, each running one task
  at a time with cores/jobs torch threads. On 2 cores that is two single-threaded workers, the
  fastest layout measured for these small models (README, "How long it takes").
- ``scheduler`` (CLI ``--scheduler``, or the environment variable ``MNISTGEN_SCHEDULER``) sends
  the same tasks to an existing Dask cluster instead, e.g. one started by dask-jobqueue on Slurm.
  Its workers need this package's environment, MNIST (``MNISTGEN_DATA``) and a results folder
  they all share (``MNISTGEN_RESULTS``).
- Tasks are keyed by what they produce (a chapter, a group of run ids): the same key submitted
  twice runs once. Across clients, the run's file lock does the same (``runs.exclusive``).
- A worker that dies loses no work: the scheduler gives its task to another worker, and the task
  resumes its runs from their last completed epoch (``runs.get_runs``), ending with the same
  weights as an uninterrupted run (tested by killing a worker with SIGKILL).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)
SCHEDULER_ENV = "MNISTGEN_SCHEDULER"


class ClusterError(RuntimeError):
    """The cluster cannot be reached or a task failed; the message says which and why."""


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


@contextlib.contextmanager
def cluster(jobs: int = 2, scheduler: str | None = None, threads: bool = False) -> Iterator[Any]:
    """A Dask client: to ``scheduler`` (or $MNISTGEN_SCHEDULER) if given, else to a new LocalCluster.

    ``threads=True``: one worker process running ``jobs`` tasks as threads, for trainings that
    share one GPU. Processes would each hold their own CUDA context, and the GPU time-slices
    between contexts; threads of one process put their work on separate streams of one context,
    which the GPU runs side by side (the models are far too small to fill it alone)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as e:
        raise ClusterError(f"dask distributed is not installed ({e}); install the project's environment "
                           "with `make venv`") from None
    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if address:
        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"cannot reach the Dask scheduler at {address!r} ({type(e).__name__}: {e}); "
                               "start it first, or leave --scheduler out to work on this machine") from None
        with client:
            logger.info("Dask scheduler %s, dashboard %s", address, client.dashboard_link)
            yield client
        return
    if threads:
        with LocalCluster(n_workers=1, threads_per_worker=jobs, processes=False,  # in-process: no network
                          dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as local, \
                Client(local) as client:
            logger.info("Dask LocalCluster: one worker, %d task threads, dashboard %s", jobs, client.dashboard_link)
            yield client
        return
    threads = str(threads_per_job(jobs))
    # Worker processes read the thread count when they import torch: set it in their environment.
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also switches off glibc's
    # dynamic mmap threshold: every tensor over 128 KiB is then a fresh mmap. Measured: a GAN step
    # 9.4 ms without it, 16.9 ms with it (one thread); book epochs 13 s -> 20 s. None unsets it.
    import dask

    no_trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
               # one task per worker at a time, the rest held by the scheduler: a chapter starts on
               # whichever worker frees first (the default, 1.1, queued a second task on a busy
               # worker while the other one idled: measured, the book took 943 s instead of 835 s)
               "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(no_trim), \
            LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0", env=env, silence_logs=logging.ERROR) as local, \
            Client(local) as client:
        logger.info("Dask LocalCluster: %d workers x %s torch threads, dashboard %s", jobs, threads,
                    client.dashboard_link)
        yield client


def run(client: Any, tasks: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]], desc: str,
        progress: bool = True, depends: dict[str, str] | None = None,
        announce: Callable[[str, str, float], None] | None = None) -> dict[str, Any]:
    """Run ``tasks`` (key -> (function, args)) on ``client``; return key -> result.

    Tasks start in the order given, as many at a time as the cluster has worker threads: the next
    one is submitted when one finishes, so it goes to whichever worker is free. (Submitted all at
    once, tasks this few are not queued by the scheduler but assigned at once by its estimates:
    measured, the book's evaluation chapter was put behind the VAE chapter on one worker while the
    other worker idled, 983 s instead of 835 s.) ``depends[key] = other`` (``other`` earlier in
    the order) starts ``key`` only after ``other`` has finished, and passes it ``other``'s result
    (``_after``). One progress bar with an ETA
    counts finished tasks. Every failure is collected; then ClusterError names them.
    ``announce(key, "started" | "done" | "failed", seconds since it started)`` hears of each task.
    """
    from dask.distributed import as_completed
    from tqdm import tqdm

    depends = depends or {}
    pending = list(tasks.items())
    slots = max(1, sum(client.nthreads().values()))
    futures: dict[str, Any] = {}
    keys: dict[str, str] = {}
    in_flight = as_completed()

    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    started: dict[str, float] = {}

    def submit_next() -> bool:
        """Submit the first pending task whose dependency has finished; False if there is none."""
        for i, (key, (fn, args)) in enumerate(pending):
            dep = depends.get(key)
            if dep is None or dep in results or dep in failed:
                del pending[i]
                after = [futures[dep]] if dep is not None else []  # a failed one fails this one too
                futures[key] = client.submit(_after, fn, args, after, key=key, pure=False)
                keys[futures[key].key] = key
                in_flight.add(futures[key])
                started[key] = time.perf_counter()
                if announce is not None:
                    announce(key, "started", 0.0)
                return True
        return False

    while len(futures) < slots and submit_next():
        pass
    bar = tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress)
    for fut in in_flight:
        key = keys[fut.key]
        try:
            results[key] = fut.result()
        except Exception as e:  # noqa: BLE001 - reported below, with every other failure
            failed[key] = f"{type(e).__name__}: {e}"
        if announce is not None:
            announce(key, "failed" if key in failed else "done", time.perf_counter() - started[key])
        bar.update()
        bar.set_postfix_str(key[-40:])
        while len(futures) - len(results) - len(failed) < slots and submit_next():
            pass
    bar.close()
    for key, _ in pending:  # waited on a key that is not among the tasks
        failed[key] = f"its dependency {depends.get(key)!r} is not among the tasks"
    if failed:
        raise ClusterError("task(s) " + str(sorted(failed)) + " failed:\n" +
                           "\n".join(f"- {k}: {v}" for k, v in sorted(failed.items())))
    return results


def _after(fn: Callable[..., Any], args: tuple[Any, ...], _dependencies: list[Any]) -> Any:
    """Call ``fn(*args)`` once the tasks in ``_dependencies`` (Dask resolves them first) are done;
    a task with a dependency gets its result as ``fn(*args, after=[result])`` (``train all``
    hands a trained judge to the workers that need it this way).

    On a worker of another cluster MALLOC_TRIM_THRESHOLD_ may be set (see ``cluster``): it is
    removed here so that processes the task starts (papermill's kernels) run at full speed."""
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return fn(*args, after=_dependencies) if _dependencies else fn(*args)
