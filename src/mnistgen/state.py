"""What a training holds for S seeds at once: models, optimisers, per-seed random streams, progress.

Randomness comes only from the generators in :class:`TrainState` (one for the data order on the
CPU, one for noise on the device, per seed) and from the weight initialisation, each from its own
stream (``stream_seed``), so saving the generators' states with the weights makes a resumed run
bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import ACGANConfig, ClassifierConfig, GANConfig, IWAEConfig, TrainConfig, VAEConfig
from .models import (VAE, ACDiscriminator, ConditionalGenerator, Discriminator, Generator, LeNet, SmallVGG,
                     is_seed_batched, select_seed, stack_seeds)

STREAMS = ("init", "data", "noise")  # what each of a seed's random streams is for


def stream_seed(seed: int, purpose: str) -> int:
    """The 64-bit seed of one (training seed, purpose) stream.

    numpy's SeedSequence hashes the pair, so the streams are independent and no two overlap:
    seeding the data order with s and the noise with s + 1 (as this code once did) gave seed s's
    noise the very stream of seed s + 1's data order.
    """
    words = np.random.SeedSequence([seed, STREAMS.index(purpose)]).generate_state(2, np.uint32)
    return int(words[0]) << 32 | int(words[1])


class DeviceError(RuntimeError):
    """The requested device is not available."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was requested but torch sees no CUDA GPU here "
                          f"(torch {torch.__version__}); use device='cpu' or 'auto'")
    if name not in ("cpu", "cuda"):
        raise DeviceError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'")
    return torch.device(name)


@dataclass
class TrainState:
    """Everything a resumed run needs, for S seeds trained together.

    ``models`` hold every seed's weights along a leading seed dimension (``models/seeded.py``;
    the classifier holds one seed). Each seed has its own generators, so its data order and
    noise do not depend on which other seeds share the batch. ``seed_state_dict(i)`` is one
    seed's checkpoint; a state with one seed is an ordinary single run.
    """

    seeds: list[int]
    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    data_rngs: list[torch.Generator]    # CPU: the order of the training images, one per seed
    noise_rngs: list[torch.Generator]   # on the device: z, reparameterisation noise, binarisation
    epoch: int = 0                      # completed epochs (the same for every seed of a batch)
    histories: list[list[dict[str, Any]]] = field(default_factory=list)
    snapshots: list[list[torch.Tensor]] = field(default_factory=list)  # GANs: uint8 fixed-noise samples per epoch
    failed: dict[int, str] = field(default_factory=dict)  # seed -> why it stopped (left the batch)
    # On a GPU: whether steps run as captured CUDA graphs (False: the same steps, eagerly), and
    # the buffers and graphs of the current models (``graphs.DeviceEpoch``; never saved).
    cuda_graphs: bool = True
    device_epoch: Any = field(default=None, repr=False, compare=False)

    @property
    def device(self) -> torch.device:
        return next(next(iter(self.models.values())).parameters()).device

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def _one(self, what: str) -> int:
        if self.n_seeds != 1:
            raise ValueError(f"this state holds seeds {self.seeds}; ask for one seed's {what} by index")
        return 0

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.histories[self._one("history")]

    @property
    def snapshot_list(self) -> list[torch.Tensor]:
        return self.snapshots[self._one("snapshots")]

    def seed_state_dict(self, i: int) -> dict[str, Any]:
        """Seed ``i``'s weights, optimiser moments, RNG states and progress (copies, not views)."""
        return {"models": {k: _slice_tensors(m.state_dict(), i, is_seed_batched(m)) for k, m in self.models.items()},
                "optimizers": {k: _slice_optimizer(o.state_dict(), i, is_seed_batched(self.models[k]))
                               for k, o in self.optimizers.items()},
                "data_rng": self.data_rngs[i].get_state(), "noise_rng": self.noise_rngs[i].get_state(),
                "epoch": self.epoch, "history": self.histories[i], "snapshots": self.snapshots[i]}

    def load_seed_state_dicts(self, sds: list[dict[str, Any]], rngs: bool = True) -> None:
        """Load one state dict per seed, in the order of ``self.seeds`` (``rngs=False``: all but the
        generators' states, for a finished run written on another kind of device)."""
        if len(sds) != self.n_seeds or len({int(sd["epoch"]) for sd in sds}) != 1:
            raise ValueError("one state per seed, all at the same epoch, is needed to train them together")
        for k, m in self.models.items():
            batched = is_seed_batched(m)
            m.load_state_dict(_cat_tensors([sd["models"][k] for sd in sds], batched))
            self.optimizers[k].load_state_dict(_cat_optimizer([sd["optimizers"][k] for sd in sds], batched))
        for rng, sd in zip(self.data_rngs, sds):
            rng.set_state(sd["data_rng"])
        for rng, sd in zip(self.noise_rngs, sds if rngs else []):
            rng.set_state(sd["noise_rng"])
        self.epoch = int(sds[0]["epoch"])
        self.histories = [list(sd["history"]) for sd in sds]
        self.snapshots = [list(sd["snapshots"]) for sd in sds]

    def select(self, keep: list[int]) -> TrainState:
        """A state holding only the seeds at positions ``keep`` (e.g. those that did not diverge)."""
        models = {k: stack_seeds([select_seed(m, i) for i in keep]) for k, m in self.models.items()}
        optimizers = {k: type(o)(models[k].parameters(), **o.defaults) for k, o in self.optimizers.items()}
        out = TrainState([self.seeds[i] for i in keep], models, optimizers,
                         [self.data_rngs[i] for i in keep], [self.noise_rngs[i] for i in keep], self.epoch,
                         failed=dict(self.failed), cuda_graphs=self.cuda_graphs)
        out.load_seed_state_dicts([self.seed_state_dict(i) for i in keep])
        return out

    @staticmethod
    def stack(states: list[TrainState]) -> TrainState:
        """Single-seed states of one configuration (e.g. resumed from their checkpoints) as one batch."""
        if len(states) == 1:
            return states[0]
        first = states[0]
        models = {k: stack_seeds([st.models[k] for st in states]) for k in first.models}
        optimizers = {k: type(o)(models[k].parameters(), **o.defaults) for k, o in first.optimizers.items()}
        out = TrainState([s for st in states for s in st.seeds], models, optimizers,
                         [g for st in states for g in st.data_rngs], [g for st in states for g in st.noise_rngs],
                         cuda_graphs=first.cuda_graphs)
        out.load_seed_state_dicts([st.seed_state_dict(0) for st in states])
        return out


def _slice_tensors(sd: dict[str, torch.Tensor], i: int, batched: bool) -> dict[str, torch.Tensor]:
    # clone: a saved view would carry the storage of every seed into one seed's checkpoint
    return {k: (v[i:i + 1] if batched else v).clone() for k, v in sd.items()}


def _cat_tensors(sds: list[dict[str, torch.Tensor]], batched: bool) -> dict[str, torch.Tensor]:
    return {k: torch.cat([sd[k] for sd in sds]) if batched else sds[0][k] for k in sds[0]}


def _slice_optimizer(sd: dict[str, Any], i: int, batched: bool) -> dict[str, Any]:
    """Adam's per-parameter moments have the parameter's shape; its step count is shared."""
    state = {p: {k: (v[i:i + 1] if batched and v.dim() > 0 else v).clone() for k, v in s.items()}
             for p, s in sd["state"].items()}
    return {"state": state, "param_groups": sd["param_groups"]}


def _cat_optimizer(sds: list[dict[str, Any]], batched: bool) -> dict[str, Any]:
    state = {}
    for p, first in sds[0]["state"].items():
        state[p] = {k: torch.cat([sd["state"][p][k] for sd in sds]) if batched and v.dim() > 0 else v
                    for k, v in first.items()}
    return {"state": state, "param_groups": sds[0]["param_groups"]}


def build_models(cfg: TrainConfig) -> dict[str, nn.Module]:
    if isinstance(cfg, ACGANConfig):
        return {"G": ConditionalGenerator(cfg.z_dim, cfg.hidden, cfg.n_classes),
                "D": ACDiscriminator(cfg.hidden, cfg.n_classes)}
    if isinstance(cfg, GANConfig):
        return {"G": Generator(cfg.z_dim, cfg.hidden), "D": Discriminator(cfg.hidden)}
    if isinstance(cfg, IWAEConfig):
        return {"vae": VAE(cfg.z_dim, cfg.hidden, depth=cfg.depth, activation=cfg.activation)}
    if isinstance(cfg, VAEConfig):
        return {"vae": VAE(cfg.z_dim, cfg.hidden)}
    if isinstance(cfg, ClassifierConfig):
        return {"net": LeNet() if cfg.arch == "lenet" else SmallVGG()}
    raise TypeError(f"no models for {type(cfg).__name__}")


_GLOBAL_RNG = threading.Lock()


def init_state(cfg: TrainConfig, device: torch.device, seeds: list[int] | None = None) -> TrainState:
    """Fresh models, Adam optimisers and generators for ``seeds`` (default: ``[cfg.seed]``).

    Each seed's weights are initialised from its own stream alone (``stream_seed``) and then
    stacked, so seed 3 starts from the same weights whether it trains alone or beside seeds 0-2.
    """
    seeds = [cfg.seed] if seeds is None else list(seeds)
    per_seed = []
    with _GLOBAL_RNG:  # tasks in threads (``train all`` on a GPU) take turns with the global RNG
        for seed in seeds:
            torch.manual_seed(stream_seed(seed, "init"))  # weight initialisation: the one draw from the global RNG
            per_seed.append(build_models(cfg))
    models = {k: stack_seeds([m[k] for m in per_seed]).to(device) for k in per_seed[0]}
    if len(seeds) > 1 and not all(is_seed_batched(m) for m in models.values()):
        raise ValueError(f"{cfg.model} trains one seed at a time; got seeds {seeds}")
    betas = (cfg.beta1, cfg.beta2) if isinstance(cfg, GANConfig) else (0.9, 0.999)
    # fused=True: one kernel for the whole update instead of ~10 per parameter tensor (measured:
    # Adam was ~27% of a GAN step at batch 128 on 2 CPU cores; see benchmarks/throughput.py).
    # Adam is elementwise, so over stacked weights it is one independent Adam per seed.
    # capturable on a GPU: the step count stays on the device, so the update can be a CUDA graph.
    eps = cfg.adam_eps if isinstance(cfg, IWAEConfig) else 1e-8  # Burda et al. use 1e-4
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=betas, eps=eps, fused=True,
                                      capturable=device.type == "cuda") for k, m in models.items()}
    data_rngs = [torch.Generator().manual_seed(stream_seed(seed, "data")) for seed in seeds]
    noise_rngs = [torch.Generator(device=device).manual_seed(stream_seed(seed, "noise")) for seed in seeds]
    return TrainState(seeds, models, optimizers, data_rngs, noise_rngs,
                      histories=[[] for _ in seeds], snapshots=[[] for _ in seeds])

