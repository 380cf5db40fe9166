"""Run directories: train once, cache by configuration, resume after a crash, refuse bad checkpoints.

``results/<profile>/runs/<model>-seed<s>-<hash>/`` where the hash covers the configuration (all
fields but the device), the source of the modules that shape training and, for runs whose history
records sample quality, the classifier run that judges it. One directory per seed, whatever the
seeds it was trained beside: asking for seeds 0-4 after 0-2 trains only 3 and 4 (together).
Inside:

- ``checkpoint.pt``: weights, optimiser state, RNG states, epoch, history; rewritten atomically at
  the end of every epoch (temporary file, fsync, rename). The file is a short header (magic and
  the SHA-256 of the rest) followed by ``torch.save``'s bytes, read back with ``weights_only=True``
  only once the digest matches: a flipped byte anywhere is refused, not loaded as a changed
  weight (``read_checkpoint``).
- ``checkpoint.prev.pt``: the epoch before, kept while the run trains. Seeds of one batch are
  saved one after the other, so a kill between two saves leaves them one epoch apart; the seeds
  ahead then step back to this file and the batch resumes whole, bitwise as if never killed.
- ``manifest.json``: written last, only when training completed. Its presence is what makes a run
  reusable: a directory without it is resumed from its checkpoint, never rendered.
- ``history.json``: per-epoch values, for plots and outside tools.

Beside the run directories, ``results/<profile>/trained.jsonl`` gets one line per finished
training (run id, host, process, time): a run trained twice shows twice.

A run installed from a results bundle (``bundle.py``) has no ``checkpoint.pt`` but ``weights.pt``:
the same file format holding only the weights the report's figures use (often none) and the GAN
snapshots; its other models raise WeightsNotShipped when asked for. While a profile holds an
installed bundle (``results/<profile>/bundle.json``) nothing of that profile is trained: a run the
bundle lacks is an error that says so, not hours of CPU training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
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

from . import evaluators, machine
from . import train as training
from .codeversion import TRAINING_SOURCES, code_version  # noqa: F401 (re-exported: the version runs are keyed by)
from .config import ConfigError, TrainConfig
from .data import load_mnist
from .schemas import check_run_id

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parents[1]
CHECKPOINT_FORMAT = 3  # 3: 2 (one seed's state of a seed-batched training) behind a SHA-256 header
CHECKPOINT_MAGIC = b"MNISTGEN-CKPT-3\n"  # then 32 bytes of SHA-256 over everything after them
SHIPPED_WEIGHTS = "weights.pt"  # a bundle's run: the weights it ships (see the module docstring)
BUNDLE_FILE = "bundle.json"  # in results/<profile>/: the provenance of an installed bundle
# Where runs and data live unless told otherwise; tests point these at temporary folders.
RESULTS_ROOT = Path(os.environ.get("MNISTGEN_RESULTS", REPO_DIR / "results"))
DATA_ROOT = Path(os.environ.get("MNISTGEN_DATA", REPO_DIR / "data"))


logger = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is corrupt, truncated, or belongs to another configuration or architecture."""


class NotInBundle(RuntimeError):
    """A profile renders from an installed bundle, and a run it asked for is not in it."""


class WeightsNotShipped(LookupError):
    """A model of a run installed from a bundle that ships only other weights of it."""

    def __str__(self) -> str:  # LookupError would print the message's repr
        return str(self.args[0])


class ShippedModels(dict):
    """The models a bundle shipped for one run; asking for another names the run and the remedy."""

    def __init__(self, models: dict[str, torch.nn.Module], run: str, cfg: TrainConfig, profile: str):
        super().__init__(models)
        self.run, self.cfg, self.profile = run, cfg, profile

    def __missing__(self, key: str) -> torch.nn.Module:
        shipped = ", ".join(sorted(self)) or "none"
        raise WeightsNotShipped(
            f"run {self.run} was installed from a results bundle, which ships only the weights the report's "
            f"figures use (of this run: {shipped}), not its {key!r}; to compute with it, train the run here: "
            f"remove results/{self.profile}/{BUNDLE_FILE} and run `mnistgen train {self.cfg.model} "
            f"--profile {self.profile}` with this run's settings")


def run_id(cfg: TrainConfig, judge: str | None = None) -> str:
    ident: dict[str, Any] = {"config": cfg.identity(), "code": code_version()}
    if judge is not None:
        ident["judge"] = judge
    key = json.dumps(ident, sort_keys=True)
    return f"{cfg.model}-seed{cfg.seed}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def check_seeds(seeds: Any) -> list[int]:
    """The seeds to train, or ConfigError before any work: a non-empty list of distinct integers >= 0."""
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ConfigError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"seeds must be integers >= 0; {s!r} in {list(seeds)} is not")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {list(seeds)} repeat a seed; each seed is one run")
    return list(seeds)


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


def _previous(path: Path) -> Path:
    return path.with_name(path.stem + ".prev" + path.suffix)


def save_checkpoint(path: Path, cfg: TrainConfig, st: training.TrainState, i: int = 0) -> None:
    """Seed ``i`` of ``st`` (whose configuration is ``cfg`` with that seed) to ``path``, atomically.

    The checkpoint it replaces becomes ``checkpoint.prev.pt`` (see the module docstring).
    """
    payload = {"format": CHECKPOINT_FORMAT, "identity": cfg.identity(), "code_version": code_version(),
               "state": st.seed_state_dict(i)}
    if path.is_file():
        os.replace(path, _previous(path))  # a kill right here leaves the previous epoch, which loads
    write_checkpoint(path, payload)


def write_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as a checkpoint file (``checkpoint_bytes``), atomically."""
    blob = checkpoint_bytes(payload)
    atomic_write_bytes(path, lambda f: f.write(blob))


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """A checkpoint file's bytes: magic, SHA-256 of the rest, ``torch.save``'s bytes of ``payload``."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    body = buf.getvalue()
    return CHECKPOINT_MAGIC + hashlib.sha256(body).digest() + body


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The payload of a checkpoint file, or CheckpointError if any byte of it is not as written."""
    hint = f"delete {path.parent} or retrain (retrain=True, CLI --retrain) to start over"
    blob = path.read_bytes()
    head = len(CHECKPOINT_MAGIC)
    if not blob.startswith(CHECKPOINT_MAGIC):
        raise CheckpointError(f"{path} is not a mnistgen checkpoint of format {CHECKPOINT_FORMAT} "
                              f"(corrupt, truncated or from older code); {hint}")
    digest, body = blob[head:head + 32], blob[head + 32:]
    if len(digest) < 32 or hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: its SHA-256 does not match the "
                              f"content ({len(blob):,} bytes); {hint}")
    try:
        # on the CPU first: generator states must stay CPU tensors (set_state refuses CUDA ones);
        # load_state_dict then copies weights and optimiser moments to the models' device
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - intact bytes that are still no checkpoint (a pickle with code)
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e}); {hint}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a mnistgen checkpoint of format {CHECKPOINT_FORMAT}; {hint}")
    return payload


def load_checkpoint(path: Path, cfg: TrainConfig, st: training.TrainState) -> None:
    """Restore the single-seed ``st`` from ``path``, or raise CheckpointError saying why and what to do."""
    hint = f"delete {path.parent} or retrain (retrain=True, CLI --retrain) to start over"
    payload = read_checkpoint(path)
    if payload["identity"] != cfg.identity():
        diff = {k: (payload["identity"].get(k), v) for k, v in cfg.identity().items() if payload["identity"].get(k) != v}
        raise CheckpointError(f"checkpoint {path} was made with another configuration "
                              f"(saved vs requested: {diff}); {hint}")
    state = payload["state"]
    # A noise generator's state says where it ran (a CPU generator's is 5,056 bytes, a CUDA one's 16).
    # A finished run needs no random numbers: its weights load anywhere (a GPU box's results render
    # on a laptop). An unfinished one cannot continue its random streams on another kind of device.
    same_device = state["noise_rng"].numel() == st.noise_rngs[0].get_state().numel()
    if not same_device and int(state["epoch"]) < cfg.epochs:
        raise CheckpointError(f"checkpoint {path} is an unfinished run started on another kind of device "
                              f"(its random-number streams are not {st.device.type}'s); resume it where it "
                              f"started, or {hint}")
    try:
        st.load_seed_state_dicts([state], rngs=same_device)
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
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
    def snapshots(self) -> list[torch.Tensor]:
        return self.state.snapshot_list

    @property
    def device(self) -> torch.device:
        """Where the run's models are (a bundle's run without weights: the CPU)."""
        for m in self.models.values():
            return next(m.parameters()).device
        return torch.device("cpu")

    def summary(self) -> str:
        m = self.manifest
        how = "reused cached run" if self.cached else "trained"
        return (f"{how} {self.path.name}: {m['epochs']} epochs in {m['wall_seconds']:.0f} s on {m['device']} "
                f"({m['device_name']}), code {m['git_commit']}")


def results_dir(profile: str, root: str | Path = RESULTS_ROOT) -> Path:
    return Path(root) / profile


class RunBusy(RuntimeError):
    """Another process holds the lock of a requested run (raised only when asked not to wait)."""


@contextlib.contextmanager
def exclusive(lock_file: Path, what: str, wait: bool = True) -> Iterator[None]:
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
            if not wait:
                raise RunBusy(f"another process is working on {what}") from None
            logger.info("waiting for another process to finish %s", what)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def get_run(cfg: TrainConfig, profile: str, **kw: Any) -> Run:
    """The finished run of ``cfg`` (its one seed ``cfg.seed``): see :func:`get_runs`."""
    return get_runs(cfg, profile, [cfg.seed], **kw)[0]


def installed_bundle(profile: str, results_root: str | Path = RESULTS_ROOT) -> dict[str, Any] | None:
    """The provenance of the bundle installed for ``profile`` (``bundle.py``), or None."""
    p = results_dir(profile, results_root) / BUNDLE_FILE
    return json.loads(p.read_text()) if p.is_file() else None


def run_path(profile: str, rid: str, results_root: str | Path = RESULTS_ROOT,
             bundle: dict[str, Any] | None = None) -> Path:
    """The directory of run ``rid``: a bundle installed for other code maps this code's ids to its own."""
    rid = check_run_id((bundle or {}).get("aliases", {}).get(rid, rid), "run id (or its alias in bundle.json)")
    return results_dir(profile, results_root) / "runs" / rid


def get_runs(cfg: TrainConfig, profile: str, seeds: list[int] | None = None, *, judge: Run | None = None,
             results_root: str | Path = RESULTS_ROOT, data_root: str | Path = DATA_ROOT, retrain: bool = False,
             log_steps: bool = False, progress: bool | None = None, log: Callable[[str], None] = print,
             wait: bool = True, deadline: float | None = None) -> list[Run]:
    """One finished run per seed of ``cfg``: reuse completed ones, train the others together.

    Seeds without a finished run are trained as one batch (``train.TrainState``), resumed from
    their checkpoints where they have one (seeds at different epochs train as separate batches).
    ``judge``: the classifier run that scores GAN samples during training (``quality_every``).
    ``retrain=True`` discards existing checkpoints and manifests of these seeds and trains anew.
    If a seed diverges, the others still finish and are cached; then TrainingDiverged names it.
    ``wait=False``: raise RunBusy at once if another process holds one of these runs.
    ``deadline`` (a ``time.time()``): training stops before an epoch that would end after it,
    checkpointed, and TimeLimitReached says where (seeds that finished are cached).
    """
    seeds = check_seeds([cfg.seed] if seeds is None else seeds)
    return get_member_runs([dataclasses.replace(cfg, seed=s) for s in seeds], profile, judge=judge,
                           results_root=results_root, data_root=data_root, retrain=retrain, log_steps=log_steps,
                           progress=progress, log=log, wait=wait, deadline=deadline)


def get_member_runs(cfgs: list[TrainConfig], profile: str, *, judge: Run | None = None,
                    results_root: str | Path = RESULTS_ROOT, data_root: str | Path = DATA_ROOT,
                    retrain: bool = False, log_steps: bool = False, progress: bool | None = None,
                    log: Callable[[str], None] = print, wait: bool = True,
                    deadline: float | None = None) -> list[Run]:
    """One finished run per configuration of ``cfgs``, which may differ in ``state.MEMBER_FIELDS``
    only (seeds, and Adam's betas: the GAN sweep's beta1 values at one batch size): as
    :func:`get_runs`, with every run that is missing trained in one batch. A run's id and files are
    the same whichever runs shared its batch; its numbers agree to rounding (other batch widths
    round differently: the float64 oracle in tests/test_runs.py), so a run is trained once."""
    try:
        training.check_members(cfgs)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    cfg = cfgs[0]
    device = training.resolve_device(cfg.device)  # fail before any work on a missing GPU
    # the judge by its id under this code (a bundle from other code keeps it under its own name)
    judge_name = run_id(judge.cfg) if judge is not None and getattr(cfg, "quality_every", 0) else None
    bundle = installed_bundle(profile, results_root)
    if bundle is not None and retrain:
        raise NotInBundle(f"profile {profile!r} renders the results bundle installed in "
                          f"{results_dir(profile, results_root)} ({_bundle_origin(bundle)}), which nothing "
                          f"retrains; remove its {BUNDLE_FILE} to train here")
    ids = [run_id(c, judge_name) for c in cfgs]
    paths = [run_path(profile, rid, results_root, bundle) for rid in ids]
    if bundle is not None:  # refused before a lock file (and so a run folder) is made for it
        for c, p in zip(cfgs, paths):
            if not (p / "manifest.json").is_file():
                raise _not_in_bundle(p, c, profile, bundle)
    with contextlib.ExitStack() as locks:
        for p in sorted(paths):  # one order for every process: no two wait on each other
            locks.enter_context(exclusive(p / ".lock", p.name, wait))
        return _get_runs_locked(cfgs, profile, paths, device, data_root, retrain, log_steps, progress, log, judge,
                                bundle, deadline)


def _get_runs_locked(cfgs: list[TrainConfig], profile: str, paths: list[Path], device: torch.device,
                     data_root: str | Path, retrain: bool, log_steps: bool, progress: bool | None,
                     log: Callable[[str], None], judge: Run | None, bundle: dict[str, Any] | None,
                     deadline: float | None) -> list[Run]:
    runs: dict[TrainConfig, Run] = {}
    pending: list[training.TrainState] = []
    for c, path in zip(cfgs, paths):
        ckpt, manifest_path = path / "checkpoint.pt", path / "manifest.json"
        for stale in path.glob(".*.tmp"):  # a write killed part way (we hold the lock: nobody is writing)
            stale.unlink()
        if retrain:
            for p in (manifest_path, ckpt, _previous(ckpt)):
                p.unlink(missing_ok=True)
        if manifest_path.is_file() and not ckpt.is_file() and (path / SHIPPED_WEIGHTS).is_file():
            runs[c] = load_shipped(path, c, profile, device, aliased=bundle is not None
                                        and path.name in bundle.get("aliases", {}).values())
            continue
        st = training.init_state(c, device)
        if manifest_path.is_file() and ckpt.is_file():
            load_checkpoint(ckpt, c, st)
            manifest = json.loads(manifest_path.read_text())
            if st.epoch == c.epochs and manifest.get("status") == "complete":
                for m in st.models.values():
                    m.eval()
                runs[c] = Run(path, c, st, manifest, cached=True)
                continue
        if not ckpt.is_file() and _previous(ckpt).is_file():  # killed between the two renames of a save
            os.replace(_previous(ckpt), ckpt)
        if ckpt.is_file():
            load_checkpoint(ckpt, c, st)
        if bundle is not None:
            raise _not_in_bundle(path, c, profile, bundle)
        manifest_path.unlink(missing_ok=True)  # an unfinished run has no manifest
        pending.append(st)
    by_cfg = dict(zip(cfgs, paths))
    pending = _align_epochs(pending, by_cfg, device)
    for st in pending:
        if st.epoch:
            log(f"resuming {by_cfg[st.cfgs[0]].name} from epoch {st.epoch} of {cfgs[0].epochs}")
    failed: dict[TrainConfig, str] = {}
    stopped: dict[TrainConfig, int] = {}
    messages: list[str] = []
    if pending:
        train_data = load_mnist(data_root, train=True)
        test_data = load_mnist(data_root, train=False)
        evaluate = evaluators.for_run(cfgs[0], train_data, test_data, device,
                                      None if judge is None else judge.models["net"])
        for epoch in sorted({st.epoch for st in pending}):
            batch = training.TrainState.stack([st for st in pending if st.epoch == epoch])

            def save(b: training.TrainState) -> None:
                for i, c in enumerate(b.cfgs):
                    save_checkpoint(by_cfg[c] / "checkpoint.pt", c, b, i)

            started = time.perf_counter()
            trained_with = list(batch.cfgs)
            try:
                batch = training.train(batch.cfgs[0], batch, train_data, evaluate=evaluate,
                                       on_epoch_end=save, log_steps=log_steps, progress=progress, deadline=deadline)
            except training.TimeLimitReached as e:
                stopped.update(e.stopped)
                messages.append(str(e))
                continue
            except training.TrainingDiverged:
                failed.update(batch.failed)
                if len(cfgs) == 1:
                    raise
                continue
            failed.update(batch.failed)
            for i, c in enumerate(batch.cfgs):
                path = by_cfg[c]
                if not (path / "checkpoint.pt").is_file():  # resumed at the end: still leave a checkpoint
                    save_checkpoint(path / "checkpoint.pt", c, batch, i)
                st = batch.select([i])
                runs[c] = Run(path, c, st, _finish(path, c, st, profile, device, trained_with, started), cached=False)
    finished = [c for c in cfgs if c in runs]
    done = str([c.seed for c in finished]) if _same_betas(cfgs) else ", ".join(by_cfg[c].name for c in finished)
    if stopped:
        raise training.TimeLimitReached("; ".join(messages) + (f". Seeds {done} finished and are cached."
                                                              if runs else ""), stopped)
    if failed:
        raise training.TrainingDiverged("; ".join(failed[c] for c in cfgs if c in failed)
                                        + (f". Seeds {done} finished and are cached." if runs else ""))
    return [runs[c] for c in cfgs]


def _same_betas(cfgs: list[TrainConfig]) -> bool:
    return len({training.adam_betas(c) for c in cfgs}) == 1


def _not_in_bundle(path: Path, c: TrainConfig, profile: str, bundle: dict[str, Any]) -> NotInBundle:
    return NotInBundle(f"run {path.name} ({c.model}, seed {c.seed}) is not in the results bundle installed "
                       f"for profile {profile!r} ({_bundle_origin(bundle)}); this profile renders from "
                       f"the bundle and trains nothing here. To train it on this machine, remove "
                       f"{results_dir(profile, path.parents[2])}/{BUNDLE_FILE} (hours of CPU for the "
                       "paper profile)")


def _bundle_origin(bundle: dict[str, Any]) -> str:
    p = bundle.get("provenance", {})
    return f"trained on {p.get('device_name', '?')} at commit {p.get('git_commit', '?')}, {p.get('created', '?')}"


def shipped_bytes(payload: dict[str, Any], models: tuple[str, ...], snapshots: bool) -> bytes:
    """From a run's checkpoint payload, the bundle's ``weights.pt``: the weights of ``models`` (no
    optimiser states, random-number streams or history), its epoch and, if asked, its snapshots."""
    state = payload["state"]
    return checkpoint_bytes({"format": CHECKPOINT_FORMAT, "identity": payload["identity"],
                             "code_version": payload["code_version"], "shipped": sorted(models),
                             "state": {"models": {k: state["models"][k] for k in models}, "epoch": state["epoch"],
                                       "snapshots": state["snapshots"] if snapshots else []}})


def load_shipped(path: Path, cfg: TrainConfig, profile: str, device: torch.device, aliased: bool = False) -> Run:
    """A finished run installed from a bundle: manifest, history, the shipped weights (on ``device``).

    ``aliased``: the bundle was made by other code (installed on request), so its configuration
    may name fields differently; otherwise it must be ``cfg``'s."""
    weights = path / SHIPPED_WEIGHTS
    payload = read_checkpoint(weights)
    if not aliased and payload["identity"] != cfg.identity():
        raise CheckpointError(f"{weights} was made with another configuration than {path.name}'s; "
                              "import the bundle again (mnistgen bundle import)")
    state = payload["state"]
    st = training.init_state(cfg, device)
    models = {}
    for k, sd in state["models"].items():
        try:
            st.models[k].load_state_dict(sd)
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(f"{weights}: its {k!r} does not fit this architecture ({e}); import a bundle "
                                  "made by this code") from None
        models[k] = st.models[k].eval()
    st.models = ShippedModels(models, path.name, cfg, profile)
    st.optimizers = {}
    st.epoch = int(state["epoch"])
    st.histories = [json.loads((path / "history.json").read_text())]
    st.snapshots = [list(state["snapshots"])]
    return Run(path, cfg, st, json.loads((path / "manifest.json").read_text()), cached=True)


def _align_epochs(pending: list[training.TrainState], by_cfg: dict[TrainConfig, Path],
                  device: torch.device) -> list[training.TrainState]:
    """Seeds one epoch ahead of the others step back to their previous checkpoint.

    A batch saves its seeds one after another, so a kill between two saves leaves some seeds one
    epoch ahead. Trained on as two batches, each seed would be bitwise its own but computed by
    other kernels (a batch of 1 and of 2 instead of 3), so not bitwise the uninterrupted run;
    stepping back costs at most one epoch and resumes the batch as it was. (Seeds further apart
    were trained apart on purpose, e.g. asked for at different times: they stay as they are.)
    """
    if not pending:
        return pending
    low = min(st.epoch for st in pending)
    out = []
    for st in pending:
        c = st.cfgs[0]
        path = by_cfg[c]
        if st.epoch == low + 1:
            back = training.init_state(c, device)  # epoch 0 is a fresh start: the same draws again
            ckpt = path / "checkpoint.pt"
            if low > 0 and _previous(ckpt).is_file():
                load_checkpoint(_previous(ckpt), c, back)
            if back.epoch == low:  # the files step back too, so the next save keeps this epoch as prev
                if low > 0:
                    os.replace(_previous(ckpt), ckpt)
                else:
                    ckpt.unlink()
                st = back
        out.append(st)
    return out


def _finish(path: Path, cfg: TrainConfig, st: training.TrainState, profile: str, device: torch.device,
            trained_with: list[TrainConfig], started: float) -> dict[str, Any]:
    """Write a finished seed's history and, last, its manifest (what makes the run reusable)."""
    for m in st.models.values():
        m.eval()
    history = [{k: v for k, v in row.items() if k != "steps"} for row in st.history]
    atomic_write_json(path / "history.json", st.history)
    manifest = {
        "run_id": path.name, "status": "complete", "model": cfg.model, "profile": profile,
        "config": dataclasses.asdict(cfg), "seed": cfg.seed, "code_version": code_version(),
        "git_commit": git_commit(), "device": str(device), "device_name": device_name(device),
        "versions": environment(), "machine": machine.this_machine(device), "epochs": st.epoch,
        # the batch it trained in: its seeds, and the betas of each member where they differ
        "trained_with_seeds": [c.seed for c in trained_with],
        **({} if _same_betas(trained_with) else
           {"trained_with_betas": [list(training.adam_betas(c)) for c in trained_with]}),
        "wall_seconds": round(sum(r["seconds"] for r in history), 2),
        "session_seconds": round(time.perf_counter() - started, 2),
        "final": history[-1] if history else {},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(path / "manifest.json", manifest)
    _previous(path / "checkpoint.pt").unlink(missing_ok=True)  # a finished run needs only its last epoch
    # One line per training that finished, appended (O_APPEND: whole lines even from processes side
    # by side): which process on which host trained what, so "trained once" can be checked.
    line = json.dumps({"run_id": path.name, "host": platform.node(), "pid": os.getpid(),
                       "finished": manifest["finished"], "wall_seconds": manifest["wall_seconds"]})
    with open(path.parent.parent / "trained.jsonl", "a") as f:
        f.write(line + "\n")
    return manifest
