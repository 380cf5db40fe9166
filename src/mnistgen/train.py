"""The training loop: epochs over every seed of a batch, NaN guard, history, snapshots, callbacks.

The loop does no file I/O: ``runs.py`` checkpoints through the ``on_epoch_end`` callback. The
pieces it runs live beside it: ``state`` (what a training holds), ``steps`` (each family's
draws and update), ``schedules`` (learning rates between epochs), ``graphs`` (the GPU path),
``evaluators`` (per-epoch metrics); the names other modules use are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm import tqdm

from .config import ACGANConfig, GANConfig, TrainConfig
from .data import MNISTTensors
from .graphs import DeviceEpoch
from .numerics import flush_subnormals
from .models import select_seed  # noqa: F401 - re-exported
from .schedules import BURDA_EPOCHS, burda_boundaries, burda_stage  # noqa: F401 - re-exported
from .state import (DeviceError, TrainState, adam_betas, build_models, check_members,  # noqa: F401 - re-exported
                    init_members, init_state, resolve_device)
from .steps import FAMILIES, Family, StepLog, g_step, permutations, prepare  # noqa: F401 - re-exported


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the epoch and step."""


class TimeLimitReached(RuntimeError):
    """Training stopped before an epoch that would not end before the deadline; every seed's
    last finished epoch is checkpointed (``on_epoch_end``), so the same call resumes it."""

    def __init__(self, message: str, stopped: dict[TrainConfig, int]):
        super().__init__(message)
        self.stopped = stopped  # member (its configuration) -> completed epochs


def run_epoch(st: TrainState, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor, log_steps: bool) -> StepLog:
    """One epoch over every seed of ``st``; per-step values stay on the device (read once per epoch).

    On CPU: step by step, each drawing its own random numbers. On a GPU: ``graphs.DeviceEpoch``
    (the whole epoch's draws at once, each step replayed as a captured CUDA graph unless
    ``st.cuda_graphs`` is False).
    """
    fam = FAMILIES[cfg.model]
    if fam.before_epoch is not None:
        fam.before_epoch(st, cfg)
    if x.device.type == "cuda":
        if st.device_epoch is None or not st.device_epoch.fits(st, cfg, x, log_steps):
            st.device_epoch = DeviceEpoch(st, cfg, x, log_steps, fam, graphs=st.cuda_graphs)
        return st.device_epoch.run(st, cfg, x, y)
    dev, S = x.device, st.n_seeds
    batches = permutations(len(x), st.data_rngs, dev).split(cfg.batch_size, dim=1)
    every = fam.log(cfg, log_steps)
    out = {k: torch.empty(len(batches) // e, S, device=dev) for k, e in every.items()}
    for i, idx in enumerate(batches):
        draws = fam.draw(st, cfg, idx.shape[1], dev)
        for k, v in fam.step(st, cfg, x, y, idx, draws, g_step(cfg, i), log_steps).items():
            out[k][i // every[k]] = v
    return out


EPOCHS: dict[str, Callable[..., StepLog]] = dict.fromkeys(FAMILIES, run_epoch)

SNAPSHOT_SEED, SNAPSHOT_N = 2024, 10


@torch.no_grad()
def fixed_noise(n: int, z_dim: int, device: torch.device, seed: int = SNAPSHOT_SEED) -> torch.Tensor:
    """Noise from its own generator: the same z for every epoch and every rerun, never touching training's RNG."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed)).to(device)


@torch.no_grad()
def snapshot(st: TrainState, cfg: GANConfig) -> list[torch.Tensor]:
    """Every seed's G on the same fixed noise (digits 0-9 for the AC-GAN): uint8 (SNAPSHOT_N, 784) each."""
    G, S = st.models["G"], st.n_seeds
    z = fixed_noise(SNAPSHOT_N, cfg.z_dim, st.device).expand(S, -1, -1)
    if isinstance(cfg, ACGANConfig):
        x = G(z, (torch.arange(SNAPSHOT_N, device=st.device) % cfg.n_classes).expand(S, -1))
    else:
        x = G(z)
    return [to_uint8(x[s]) for s in range(S)]


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 pixels on CPU."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


EpochCallback = Callable[[TrainState], None]
# evaluate(st) -> one dict of extra history values per seed of st (or None to skip this epoch)
Evaluator = Callable[[TrainState], "list[dict[str, float]] | None"]


def _first_bad_step(steps: StepLog, s: int) -> tuple[str, int, int] | None:
    for k, v in steps.items():
        col = v[:, s]
        if not torch.isfinite(col).all():
            return k, int((~torch.isfinite(col)).nonzero()[0]) + 1, len(col)
    return None


def _last_epoch_seconds(st: TrainState) -> float:
    """The wall time of the last epoch trained (a resumed run's from its history), else 0."""
    return float(st.histories[0][-1]["seconds"]) if st.histories and st.histories[0] else 0.0


def train(cfg: TrainConfig, st: TrainState, data: MNISTTensors, *,
          evaluate: Evaluator | None = None, on_epoch_end: EpochCallback | None = None,
          log_steps: bool = False, progress: bool | None = None, deadline: float | None = None) -> TrainState:
    """Train every seed of ``st`` from epoch ``st.epoch`` to ``cfg.epochs``; return the final state.

    After each epoch, per seed: one history row (means of the per-step values, plus
    ``evaluate(st)`` if given, plus the epoch's wall time for the whole batch), a NaN/inf check,
    then ``on_epoch_end(st)``. A seed whose loss became non-finite leaves the batch (its last good
    checkpoint is the previous epoch; ``st.failed`` says why) and the others go on; the returned
    state holds the seeds that finished. If every seed fails, TrainingDiverged is raised.
    ``log_steps`` also keeps every step's values in ``row["steps"]``. ``progress=None`` shows a
    bar only on a terminal (a notebook rendered into the book stays clean). ``deadline`` (a
    ``time.time()``): an epoch starts only if it ends before it, judged by the last epoch's wall
    time (a fresh run's first epoch starts if the deadline is still ahead); otherwise TimeLimitReached.
    """
    device = st.device
    flush_subnormals()  # trained models make subnormals; every CPU thread must flush them (numerics.py)
    x, y = prepare(cfg, data, device)
    if st.epoch == 0 and (init := FAMILIES[cfg.model].init_from_data) is not None:
        init(st, cfg, x)  # deterministic in the data: a run resumed from epoch 0 gets the same start
    step_fn = EPOCHS[cfg.model]
    st.device_epoch = None  # buffers and graphs belong to one call's inputs
    for m in st.models.values():
        m.train()
    seeds = ", ".join(st.describe(i).removeprefix("seed ") for i in range(st.n_seeds))
    bar = tqdm(range(st.epoch, cfg.epochs), initial=st.epoch, total=cfg.epochs,
               desc=f"{cfg.model} seed{'s' if st.n_seeds > 1 else ''} {seeds}", unit="epoch",
               disable=None if progress is None else not progress)
    for epoch in bar:
        if deadline is not None and time.time() + _last_epoch_seconds(st) > deadline:
            bar.close()
            raise TimeLimitReached(f"{cfg.model} seed(s) {seeds}: stopped at epoch {st.epoch} of {cfg.epochs} "
                                   "before the time limit (checkpointed; the same command resumes)",
                                   dict.fromkeys(st.cfgs, st.epoch))
        t0 = time.perf_counter()
        steps = {k: v.cpu() for k, v in step_fn(st, cfg, x, y, log_steps).items()}
        bad = {}
        for s in range(st.n_seeds):
            if (where := _first_bad_step(steps, s)) is not None:
                k, step, n = where
                bad[s] = (f"{cfg.model} {st.describe(s)}: non-finite {k} at epoch {epoch + 1}, step {step} of {n}; "
                          f"the last good checkpoint is epoch {st.epoch}")
        if bad:
            st.failed.update({st.cfgs[s]: msg for s, msg in bad.items()})
            if len(bad) == st.n_seeds:
                bar.close()
                raise TrainingDiverged("; ".join(st.failed.values()))
            keep = [s for s in range(st.n_seeds) if s not in bad]
            st = st.select(keep)  # the others' post-epoch weights are good: they go on without it
            steps = {k: v[:, keep] for k, v in steps.items()}
        rows: list[dict[str, Any]] = []
        for s in range(st.n_seeds):
            row: dict[str, Any] = {"epoch": epoch + 1}
            row.update({k: float(v[:, s].mean()) for k, v in steps.items()})
            if log_steps:
                row["steps"] = {k: v[:, s].tolist() for k, v in steps.items()}
            rows.append(row)
        if evaluate is not None:
            st.epoch = epoch + 1  # evaluators may ask which epoch they see
            extra = evaluate(st)
            for row, e in zip(rows, extra or [{}] * len(rows)):
                row.update(e)
            for m in st.models.values():
                m.train()
        seconds = time.perf_counter() - t0
        if cfg.model in ("gan", "acgan"):
            for shots, shot in zip(st.snapshots, snapshot(st, cfg)):
                shots.append(shot)
        st.epoch = epoch + 1
        for hist, row in zip(st.histories, rows):
            row["seconds"] = seconds
            hist.append(row)
        bar.set_postfix({k: f"{v:.3g}" for k, v in rows[0].items() if k not in ("epoch", "steps", "seconds")})
        if on_epoch_end is not None:
            on_epoch_end(st)
    bar.close()
    return st

