"""A console bar over an edition's runs while chapters train them in other processes.

The chapters train inside papermill's kernels on Dask workers, where no bar can reach the console;
what they leave on the shared results folder can: a run is finished once its ``manifest.json``
exists. A thread counts the manifests of the runs the edition plans (``edition.run_ids``) every
few seconds and moves a tqdm bar, whose rate gives the ETA.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .runs import RESULTS_ROOT, results_dir


class RunsBar:
    """``with RunsBar(profile) as bar:`` a bar over the profile's planned runs; ``bar.write(line)``
    prints above it. Off where the console is not a terminal (``disable=None``: a CI log stays clean)."""

    def __init__(self, profile: str, results_root: Path = RESULTS_ROOT, every: float = 3.0,
                 disable: bool | None = None, planned: list[str] | None = None, **tqdm_kw: Any):
        """``planned``: the run ids to count (default: every run of the profile's edition); with
        ``planned=[]`` (a chapter with overrides, whose runs are not known in advance) it counts the
        runs that finish while it is open, without a total."""
        from .edition import run_ids

        self.folder = results_dir(profile, results_root) / "runs"
        self.planned = [rid for rs in run_ids(profile).values() for rid in rs] if planned is None else planned
        self.before = set() if self.planned else self._finished()
        self.every = every
        self.bar = tqdm(total=len(self.planned) or None, desc=f"{profile}: runs trained", unit="run",
                        disable=disable, initial=self.done(), **tqdm_kw)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _finished(self) -> set[str]:
        return {p.parent.name for p in self.folder.glob("*/manifest.json")}

    def done(self) -> int:
        if not self.planned:
            return len(self._finished() - self.before)
        return sum((self.folder / rid / "manifest.json").is_file() for rid in self.planned)

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            self.bar.update(self.done() - self.bar.n)

    def write(self, line: str) -> None:
        if self.bar.disable:
            print(line, flush=True)
        else:
            self.bar.write(line)

    def __enter__(self) -> RunsBar:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.bar.update(self.done() - self.bar.n)
        self.bar.close()
