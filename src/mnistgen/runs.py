"""Run directories: train once, cache by configuration, resume after a crash, refuse bad checkpoints.

``results/<profile>/runs/<model>-<hash>/`` where the hash covers the configuration (all fields but
the device) and the source of the modules that shape training. Inside:

- ``checkpoint.pt``: weights, optimiser state, RNG states, epoch, history; rewritten atomically at
  the end of every epoch (temporary file, fsync, rename), loaded with ``weights_only=True``.
- ``manifest.json``: written last, only when training completed. Its presence is what makes a run
  reusable: a directory without it is resumed from its checkpoint, never rendered.
- ``history.json``: per-epoch values, for plots and outside tools.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import train as training
from .config import TrainConfig
from .data import MNISTTensors, load_mnist

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parents[1]
# Source files whose change changes what training produces (plots, metrics and the CLI do not).
TRAINING_SOURCES = ("data.py", "losses.py", "train.py", "models")
CHECKPOINT_FORMAT = 1
# Where runs and data live unless told otherwise; tests point these at temporary folders.
RESULTS_ROOT = Path(os.environ.get("MNISTGEN_RESULTS", REPO_DIR / "results"))
DATA_ROOT = Path(os.environ.get("MNISTGEN_DATA", REPO_DIR / "data"))


logger = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is corrupt, truncated, or belongs to another configuration or architecture."""


def code_version() -> str:
    h = hashlib.sha256()
    for name in TRAINING_SOURCES:
        p = PACKAGE_DIR / name
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.relative_to(PACKAGE_DIR).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def run_id(cfg: TrainConfig) -> str:
    key = json.dumps({"config": cfg.identity(), "code": code_version()}, sort_keys=True)
    return f"{cfg.model}-seed{cfg.seed}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    """Write through ``write(file)`` to a temporary file beside ``path``, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()))


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_DIR, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO_DIR, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"


def environment() -> dict[str, str]:
    import numpy
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__}


def save_checkpoint(path: Path, cfg: TrainConfig, st: training.TrainState) -> None:
    payload = {"format": CHECKPOINT_FORMAT, "identity": cfg.identity(), "code_version": code_version(),
               "state": st.state_dict()}
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: Path, cfg: TrainConfig, st: training.TrainState) -> None:
    """Restore ``st`` from ``path``, or raise CheckpointError saying why and what to do."""
    hint = f"delete {path.parent} or retrain (retrain=True, CLI --retrain) to start over"
    try:
        payload = torch.load(path, map_location=st.device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, bad pickle, not a checkpoint at all
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e}); {hint}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a mnistgen checkpoint of format {CHECKPOINT_FORMAT}; {hint}")
    if payload["identity"] != cfg.identity():
        diff = {k: (payload["identity"].get(k), v) for k, v in cfg.identity().items() if payload["identity"].get(k) != v}
        raise CheckpointError(f"checkpoint {path} was made with another configuration "
                              f"(saved vs requested: {diff}); {hint}")
    try:
        st.load_state_dict(payload["state"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} does not fit this architecture ({e}); {hint}") from None


@dataclass
class Run:
    """A trained (or resumed and finished) run: its directory, config, models and history."""

    path: Path
    cfg: TrainConfig
    state: training.TrainState
    manifest: dict[str, Any]
    cached: bool

    @property
    def models(self) -> dict[str, torch.nn.Module]:
        return self.state.models

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.state.history

    @property
    def device(self) -> torch.device:
        return next(next(iter(self.models.values())).parameters()).device

    def summary(self) -> str:
        m = self.manifest
        how = "reused cached run" if self.cached else "trained"
        return (f"{how} {self.path.name}: {m['epochs']} epochs in {m['wall_seconds']:.0f} s on {m['device']} "
                f"({m['device_name']}), code {m['git_commit']}")


def results_dir(profile: str, root: str | Path = RESULTS_ROOT) -> Path:
    return Path(root) / profile


def _epoch_evaluator(cfg: TrainConfig, test: MNISTTensors, device: torch.device):
    if cfg.model == "vae":
        return lambda st: training.vae_test_metrics(st, test, device)
    if cfg.model == "classifier":
        return lambda st: training.classifier_test_metrics(st, test, device)
    return None


@contextlib.contextmanager
def exclusive(lock_file: Path, what: str) -> Iterator[None]:
    """Hold an exclusive OS file lock: one process computes ``what``, the others wait for it.

    Chapters rendered in parallel (``render all --jobs 2``) ask for shared runs and metrics
    (the GAN is used by three chapters): the first takes the lock and trains, the rest block
    here and then find the finished result. The OS releases the lock if its holder dies.
    The wait is logged (INFO, shown by the CLI), not printed: a chapter's page does not
    depend on which process happened to get there first.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process to finish %s", what)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def get_run(cfg: TrainConfig, profile: str, *, results_root: str | Path = RESULTS_ROOT, data_root: str | Path = DATA_ROOT,
            retrain: bool = False, log_steps: bool = False, progress: bool | None = None,
            log: Callable[[str], None] = print) -> Run:
    """Return the finished run for ``cfg``: reuse a completed one, resume an unfinished one, or train.

    ``retrain=True`` discards an existing directory's checkpoint and manifest and trains anew.
    """
    device = training.resolve_device(cfg.device)  # fail before any work on a missing GPU
    path = results_dir(profile, results_root) / "runs" / run_id(cfg)
    with exclusive(path / ".lock", path.name):
        return _get_run_locked(cfg, profile, path, device, data_root, retrain, log_steps, progress, log)


def _get_run_locked(cfg: TrainConfig, profile: str, path: Path, device: torch.device, data_root: str | Path,
                    retrain: bool, log_steps: bool, progress: bool | None, log: Callable[[str], None]) -> Run:
    ckpt, manifest_path = path / "checkpoint.pt", path / "manifest.json"
    st = training.init_state(cfg, device)
    if retrain:
        for p in (manifest_path, ckpt):
            p.unlink(missing_ok=True)
    if manifest_path.is_file() and ckpt.is_file():
        load_checkpoint(ckpt, cfg, st)
        manifest = json.loads(manifest_path.read_text())
        if st.epoch == cfg.epochs and manifest.get("status") == "complete":
            for m in st.models.values():
                m.eval()
            return Run(path, cfg, st, manifest, cached=True)
    if ckpt.is_file():
        load_checkpoint(ckpt, cfg, st)
        log(f"resuming {path.name} from epoch {st.epoch} of {cfg.epochs}")
    manifest_path.unlink(missing_ok=True)  # an unfinished run has no manifest
    train_data = load_mnist(data_root, train=True)
    test_data = load_mnist(data_root, train=False)
    started = time.perf_counter()
    training.train(cfg, st, train_data, evaluate=_epoch_evaluator(cfg, test_data, device),
                   on_epoch_end=lambda s: save_checkpoint(ckpt, cfg, s), log_steps=log_steps, progress=progress)
    if not ckpt.is_file():  # epochs were all done already (resumed at the end): still leave a checkpoint
        save_checkpoint(ckpt, cfg, st)
    history = [{k: v for k, v in row.items() if k != "steps"} for row in st.history]
    atomic_write_json(path / "history.json", st.history)
    manifest = {
        "run_id": path.name, "status": "complete", "model": cfg.model, "profile": profile,
        "config": dataclasses.asdict(cfg), "seed": cfg.seed, "code_version": code_version(),
        "git_commit": git_commit(), "device": str(device), "device_name": device_name(device),
        "versions": environment(), "epochs": st.epoch,
        "wall_seconds": round(sum(r["seconds"] for r in history), 2),
        "session_seconds": round(time.perf_counter() - started, 2),
        "final": history[-1] if history else {},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(manifest_path, manifest)
    for m in st.models.values():
        m.eval()
    return Run(path, cfg, st, manifest, cached=False)
