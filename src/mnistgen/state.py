"""What a training holds for S members at once: models, optimisers, per-seed random streams, progress.

A member is one run: a configuration with its seed. Members of one batch share everything but
what ``MEMBER_FIELDS`` names (the seed, and Adam's betas: ``optim.MemberAdam``), so they run the
same steps on the same shapes; the GAN sweep's two beta1 values at one batch size train as one
batch of 2 x 5 members, which makes every matrix product twice as wide.

Randomness comes only from the generators in :class:`TrainState` (one for the data order on the
CPU, one for noise on the device, per seed) and from the weight initialisation, each from its own
stream (``stream_seed``), so saving the generators' states with the weights makes a resumed run
bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import ACGANConfig, ClassifierConfig, GANConfig, IWAEConfig, TrainConfig, VAEConfig
from .models import (VAE, ACDiscriminator, ConditionalGenerator, Discriminator, Generator, LeNet, SmallVGG,
                     is_seed_batched, select_seed, stack_seeds)
from .optim import MemberAdam

STREAMS = ("init", "data", "noise")  # what each of a seed's random streams is for
# What may differ between the members of one training batch: everything else (shapes, schedule,
# losses) is shared, so one step serves them all.
MEMBER_FIELDS = ("seed", "beta1", "beta2")


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
    """Everything a resumed run needs, for S members (runs) trained together.

    ``cfgs`` holds each member's configuration (its seed; for GANs its betas). ``models`` hold
    every member's weights along a leading dimension (``models/seeded.py``; the classifier holds
    one). Each member has its own generators, seeded by its seed alone, so its data order and
    noise do not depend on which others share the batch. ``seed_state_dict(i)`` is member i's
    checkpoint; a state with one member is an ordinary single run.
    """

    cfgs: list[TrainConfig]
    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    data_rngs: list[torch.Generator]    # CPU: the order of the training images, one per seed
    noise_rngs: list[torch.Generator]   # on the device: z, reparameterisation noise, binarisation
    epoch: int = 0                      # completed epochs (the same for every seed of a batch)
    histories: list[list[dict[str, Any]]] = field(default_factory=list)
    snapshots: list[list[torch.Tensor]] = field(default_factory=list)  # GANs: uint8 fixed-noise samples per epoch
    failed: dict[TrainConfig, str] = field(default_factory=dict)  # member -> why it stopped (left the batch)
    # On a GPU: whether steps run as captured CUDA graphs (False: the same steps, eagerly), and
    # the buffers and graphs of the current models (``graphs.DeviceEpoch``; never saved).
    cuda_graphs: bool = True
    device_epoch: Any = field(default=None, repr=False, compare=False)

    @property
    def device(self) -> torch.device:
        return next(next(iter(self.models.values())).parameters()).device

    @property
    def seeds(self) -> list[int]:
        return [c.seed for c in self.cfgs]

    @property
    def n_seeds(self) -> int:
        """How many members the batch holds (each a seed of its configuration)."""
        return len(self.cfgs)

    def describe(self, i: int) -> str:
        """Member ``i`` in words: its seed, and its betas where the batch's members differ in them."""
        c = self.cfgs[i]
        mixed = [f for f in MEMBER_FIELDS[1:] if len({getattr(m, f, None) for m in self.cfgs}) > 1]
        return f"seed {c.seed}" + "".join(f" {f}={getattr(c, f)}" for f in mixed)

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
        """A state holding only the members at positions ``keep`` (e.g. those that did not diverge)."""
        cfgs = [self.cfgs[i] for i in keep]
        models = {k: stack_seeds([select_seed(m, i) for i in keep]) for k, m in self.models.items()}
        optimizers = make_optimizers(cfgs, models)
        out = TrainState(cfgs, models, optimizers,
                         [self.data_rngs[i] for i in keep], [self.noise_rngs[i] for i in keep], self.epoch,
                         failed=dict(self.failed), cuda_graphs=self.cuda_graphs)
        out.load_seed_state_dicts([self.seed_state_dict(i) for i in keep])
        return out

    @staticmethod
    def stack(states: list[TrainState]) -> TrainState:
        """Single-member states (e.g. resumed from their checkpoints) as one batch."""
        if len(states) == 1:
            return states[0]
        first = states[0]
        cfgs = [c for st in states for c in st.cfgs]
        check_members(cfgs)
        models = {k: stack_seeds([st.models[k] for st in states]) for k in first.models}
        optimizers = make_optimizers(cfgs, models)
        out = TrainState(cfgs, models, optimizers,
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


def check_members(cfgs: list[TrainConfig]) -> None:
    """ValueError unless ``cfgs`` can train as one batch: distinct runs that differ only in ``MEMBER_FIELDS``."""
    if not cfgs:
        raise ValueError("a training batch needs at least one member")
    shared = [{k: v for k, v in c.identity().items() if k not in MEMBER_FIELDS} for c in cfgs]
    for c, s in zip(cfgs[1:], shared[1:]):
        if s != shared[0]:
            diff = sorted(k for k in s if s[k] != shared[0].get(k))
            raise ValueError(f"members of one training batch may differ only in {', '.join(MEMBER_FIELDS)}; "
                             f"{c.model} seed {c.seed} differs from the first member in {', '.join(diff)}")
    if len(set(cfgs)) != len(cfgs):
        raise ValueError("a training batch holds each run once; two members have the same configuration and seed")


def adam_betas(cfg: TrainConfig) -> tuple[float, float]:
    return (cfg.beta1, cfg.beta2) if isinstance(cfg, GANConfig) else (0.9, 0.999)


def make_optimizers(cfgs: list[TrainConfig], models: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
    """One Adam per model over all members' stacked weights, each member with its own betas.

    Fused: one kernel for the whole update instead of ~10 per parameter tensor (measured: Adam
    was ~27% of a GAN step at batch 128 on 2 CPU cores; see benchmarks/throughput.py). Adam is
    elementwise, so over stacked weights it is one independent Adam per member; its step count
    stays on the parameters' device, so on a GPU the update can be captured in a CUDA graph.
    """
    cfg = cfgs[0]
    eps = cfg.adam_eps if isinstance(cfg, IWAEConfig) else 1e-8  # Burda et al. use 1e-4
    return {k: MemberAdam(m.parameters(), [adam_betas(c) for c in cfgs], lr=cfg.lr, eps=eps,
                          batched=is_seed_batched(m)) for k, m in models.items()}


def init_state(cfg: TrainConfig, device: torch.device, seeds: list[int] | None = None) -> TrainState:
    """Fresh models, Adam optimisers and generators for ``seeds`` of ``cfg`` (default: ``[cfg.seed]``)."""
    seeds = [cfg.seed] if seeds is None else list(seeds)
    return init_members([dataclasses.replace(cfg, seed=s) for s in seeds], device)


def init_members(cfgs: list[TrainConfig], device: torch.device) -> TrainState:
    """Fresh models, optimisers and generators for the runs ``cfgs`` (``check_members``), as one batch.

    Each member's weights are initialised from its seed's own stream alone (``stream_seed``) and
    then stacked, so seed 3 starts from the same weights whether it trains alone or beside seeds
    0-2, and whatever its betas.
    """
    check_members(cfgs)
    per_member = []
    with _GLOBAL_RNG:  # tasks in threads (``train all`` on a GPU) take turns with the global RNG
        for c in cfgs:
            torch.manual_seed(stream_seed(c.seed, "init"))  # weight initialisation: the one draw from the global RNG
            per_member.append(build_models(c))
    models = {k: stack_seeds([m[k] for m in per_member]).to(device) for k in per_member[0]}
    if len(cfgs) > 1 and not all(is_seed_batched(m) for m in models.values()):
        raise ValueError(f"{cfgs[0].model} trains one seed at a time; got seeds {[c.seed for c in cfgs]}")
    optimizers = make_optimizers(cfgs, models)
    data_rngs = [torch.Generator().manual_seed(stream_seed(c.seed, "data")) for c in cfgs]
    noise_rngs = [torch.Generator(device=device).manual_seed(stream_seed(c.seed, "noise")) for c in cfgs]
    return TrainState(list(cfgs), models, optimizers, data_rngs, noise_rngs,
                      histories=[[] for _ in cfgs], snapshots=[[] for _ in cfgs])

