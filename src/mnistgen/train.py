"""Training loops, one per model family, over a data set resident as one tensor on the device.

Why no DataLoader: MNIST is 47 MB, so the whole split lives on the training device; an epoch is
a random permutation and slicing, which removes per-image Python and PIL costs (the
"textbook" torchvision pipeline spends most of its time there, see ``benchmarks/``).

Loops do no file I/O: ``runs.py`` checkpoints through the ``on_epoch_end`` callback.
Randomness comes only from the two generators in :class:`TrainState` (the data order on CPU,
noise on the device), so saving their states with the weights makes a resumed run bitwise
identical to an uninterrupted one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import losses
from .config import ACGANConfig, ClassifierConfig, GANConfig, IWAEConfig, TrainConfig, VAEConfig
from .data import MNISTTensors, binarize, to_signed, to_unit
from .models import (VAE, ACDiscriminator, ConditionalGenerator, Discriminator, Generator, LeNet, SmallVGG,
                     is_seed_batched,
                     select_seed, stack_seeds)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the epoch and step."""


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

    Each seed's weights are initialised from ``torch.manual_seed(seed)`` alone and then stacked,
    so seed 3 starts from the same weights whether it trains alone or beside seeds 0-2.
    """
    seeds = [cfg.seed] if seeds is None else list(seeds)
    per_seed = []
    with _GLOBAL_RNG:  # tasks in threads (``train all`` on a GPU) take turns with the global RNG
        for seed in seeds:
            torch.manual_seed(seed)  # weight initialisation is the one draw from the global RNG
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
    data_rngs = [torch.Generator().manual_seed(seed) for seed in seeds]
    noise_rngs = [torch.Generator(device=device).manual_seed(seed + 1) for seed in seeds]
    return TrainState(seeds, models, optimizers, data_rngs, noise_rngs,
                      histories=[[] for _ in seeds], snapshots=[[] for _ in seeds])


def prepare(cfg: TrainConfig, data: MNISTTensors, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The training inputs as the model family wants them, resident on ``device``."""
    data = data.subset(cfg.n_train)
    x = to_signed(data.images) if isinstance(cfg, GANConfig) else to_unit(data.images)
    return x.to(device), data.labels.to(device)


def _permutations(n: int, rngs: list[torch.Generator], device: torch.device) -> torch.Tensor:
    """Each seed's own order of the ``n`` training images: (S, n) indices on ``device``."""
    return torch.stack([torch.randperm(n, generator=g) for g in rngs]).to(device)


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` (S, b) of ``x`` as (S, b, ...).

    index_select, not x[idx]: the same gather, ~6x faster on CPU for a 128 x 784 batch (measured).
    """
    return torch.index_select(x, 0, idx.reshape(-1)).view(*idx.shape, *x.shape[1:])


def _randn(rngs: list[torch.Generator], *shape: int, device: torch.device) -> torch.Tensor:
    """(S, *shape) standard normal draws, slice s from seed s's generator."""
    return torch.stack([torch.randn(*shape, generator=g, device=device) for g in rngs])


StepLog = dict[str, torch.Tensor]  # name -> (steps, S): every seed's value at every step
Draws = dict[str, torch.Tensor]    # the random inputs of b steps' worth of images: each (S, b, ...)

# Every family's training step is split in two (see ``Family``):
#   draw(st, cfg, b, device) -> Draws    every random number the step consumes, per seed from its
#                                        own generators, for b images (one batch, or a whole epoch)
#   step(st, cfg, x, y, idx, draws, g_step, log_steps) -> {name: (S,) value}
#                                        a deterministic update given the batch indices and draws.
# On CPU each step draws its own batch (the order of draws that fixed every cached result); on a
# GPU the whole epoch is drawn at once and each step reads its slice on the device, so a step is
# a pure function of device-resident buffers and can be captured as a CUDA graph (``graphs.py``).


def _gan_draw(st: TrainState, cfg: GANConfig, b: int, dev: torch.device) -> Draws:
    draws = {"z": _randn(st.noise_rngs, b, cfg.z_dim, device=dev)}
    if isinstance(cfg, ACGANConfig):
        draws["fake_labels"] = torch.stack([torch.randint(cfg.n_classes, (b,), generator=g, device=dev)
                                            for g in st.noise_rngs])
    return draws


def _gan_step(st: TrainState, cfg: GANConfig, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
              draws: Draws, g_step: bool, log_steps: bool) -> dict[str, torch.Tensor]:
    """One step of Algorithm 1 of Goodfellow et al. (2014) for every seed: D's update, and G's if ``g_step``.

    Two cost-free rewrites of the textbook step (see ``benchmarks/``):
    - D sees the real and the generated batch as one batch of 2b rows: one forward and one
      backward through D instead of two, and larger matrix products. D has no batch
      statistics (no batch norm), so the gradients equal the sum of the two separate passes.
    - G(z) is computed once: D's step sees it detached, G's step (same z, as in the
      pytorch/examples DCGAN loop) backpropagates through it after D's update.
    Per-seed losses are summed before ``backward``: each seed's weights get their own gradient.
    """
    G, D = st.models["G"], st.models["D"]
    opt_g, opt_d = st.optimizers["G"], st.optimizers["D"]
    conditional = isinstance(cfg, ACGANConfig)
    S, b = idx.shape
    real = _rows(x, idx)
    with torch.set_grad_enabled(g_step):
        fake = G(draws["z"], draws["fake_labels"]) if conditional else G(draws["z"])
    both = torch.cat([real, fake.detach()], dim=1)
    if conditional:
        fake_labels = draws["fake_labels"]
        src, cls = D(both)
        labels = torch.cat([_rows(y, idx), fake_labels], dim=1)
        loss_d = losses.acgan_d_loss(src[:, :b], cls[:, :b], src[:, b:], cls[:, b:], labels[:, :b], fake_labels)
    else:
        src = D(both)
        loss_d = losses.d_loss(src[:, :b], src[:, b:])
    opt_d.zero_grad(set_to_none=True)
    loss_d.sum().backward()
    opt_d.step()
    out = {}
    with torch.no_grad():
        out["d_loss"] = loss_d.detach()
        d_out = torch.sigmoid(src).view(S, 2, b).mean(-1)
        out["d_real"], out["d_fake"] = d_out[:, 0], d_out[:, 1]
        if conditional:
            acc = (cls.argmax(-1) == labels).float().view(S, 2, b).mean(-1)
            out["acc_real"], out["acc_fake"] = acc[:, 0], acc[:, 1]
    if g_step:
        if conditional:
            fs, fc = D(fake)
            loss_g = losses.acgan_g_loss(fs, fc, draws["fake_labels"], cfg.saturating)
        else:
            loss_g = losses.g_loss(D(fake), cfg.saturating)
        opt_g.zero_grad(set_to_none=True)
        loss_g.sum().backward()
        if log_steps:  # each seed's gradient norm over all of G's parameters
            sq = sum(p.grad.reshape(S, -1).pow(2).sum(1) for p in G.parameters() if p.grad is not None)
            out["g_grad_norm"] = sq.sqrt()
        opt_g.step()
        out["g_loss"] = loss_g.detach()
    return out


def _gan_log(cfg: GANConfig, log_steps: bool) -> dict[str, int]:
    """Log name -> every how many steps it has a value (G's values only on G steps)."""
    d_keys = ["d_loss", "d_real", "d_fake"] + (["acc_real", "acc_fake"] if isinstance(cfg, ACGANConfig) else [])
    g_keys = ["g_loss"] + (["g_grad_norm"] if log_steps else [])
    return {**dict.fromkeys(d_keys, 1), **dict.fromkeys(g_keys, cfg.k)}


def _vae_draw(st: TrainState, cfg: VAEConfig, b: int, dev: torch.device) -> Draws:
    # u < p is the dynamic binarisation (``data.binarize``): a fresh one every time an image is drawn
    return {"u": torch.stack([torch.rand(b, 784, generator=g, device=dev) for g in st.noise_rngs]),
            "eps": _randn(st.noise_rngs, b, cfg.z_dim, device=dev)}


def _vae_step(st: TrainState, cfg: VAEConfig, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
              draws: Draws, g_step: bool, log_steps: bool) -> dict[str, torch.Tensor]:
    vae, opt = st.models["vae"], st.optimizers["vae"]
    rows = _rows(x, idx)
    xb = (draws["u"] < rows).to(rows.dtype)
    logits, mu, logvar = vae(xb, draws["eps"])
    rec, kl = losses.elbo_terms(logits, xb, mu, logvar)
    loss = (kl - rec).mean(-1)  # negative ELBO per seed, nats per image
    opt.zero_grad(set_to_none=True)
    loss.sum().backward()
    opt.step()
    return {"loss": loss.detach(), "rec": rec.detach().mean(-1), "kl": kl.detach().mean(-1)}


def _iwae_draw(st: TrainState, cfg: IWAEConfig, b: int, dev: torch.device) -> Draws:
    return {"u": torch.stack([torch.rand(b, 784, generator=g, device=dev) for g in st.noise_rngs]),
            "eps": _randn(st.noise_rngs, b, cfg.k, cfg.z_dim, device=dev)}


def _iwae_step(st: TrainState, cfg: IWAEConfig, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
               draws: Draws, g_step: bool, log_steps: bool) -> dict[str, torch.Tensor]:
    """One step on the k-sample bound (Burda et al. 2015): k reparameterised z per image, their
    importance log-weights, and either log-mean-exp (IWAE) or the mean (k averaged ELBOs)."""
    vae, opt = st.models["vae"], st.optimizers["vae"]
    rows = _rows(x, idx)
    xb = (draws["u"] < rows).to(rows.dtype)                     # (S, b, 784)
    mu, logvar = vae.encode(xb)                                 # (S, b, d)
    eps = draws["eps"]                                          # (S, b, k, d)
    z = mu.unsqueeze(-2) + torch.exp(0.5 * logvar).unsqueeze(-2) * eps
    S, b, k, d = eps.shape
    logits = vae.decode(z.reshape(S, b * k, d)).view(S, b, k, -1)
    log_px = losses.bernoulli_log_likelihood(logits, xb.unsqueeze(-2))  # (S, b, k)
    log_w = losses.gaussian_log_weights(log_px, z, eps, logvar.unsqueeze(-2))
    loss = -losses.k_sample_bound(log_w, cfg.objective).mean(-1)  # per seed, nats per image
    opt.zero_grad(set_to_none=True)
    loss.sum().backward()
    opt.step()
    return {"loss": loss.detach()}


BURDA_EPOCHS = 3280  # sum of 3^i, i = 0..7


def burda_stage(epoch: int, epochs: int) -> int:
    """The learning-rate stage i (0..7) of epoch ``epoch`` (0-based) of ``epochs``.

    Burda et al. (2015) train stage i for 3^i epochs. A schedule of another length is the same
    schedule compressed: epoch e takes the stage of their epoch floor(e * 3280 / epochs), so
    ``epochs = 3280`` is theirs exactly and a short one keeps the stages' proportions.
    """
    theirs = epoch * BURDA_EPOCHS // epochs
    i = 0
    while (3 ** (i + 1) - 1) // 2 <= theirs:  # stage i starts at epoch (3^i - 1) / 2
        i += 1
    return i


def _set_burda_lr(st: TrainState, cfg: IWAEConfig) -> None:
    for group in st.optimizers["vae"].param_groups:
        group["lr"] = cfg.lr * 10 ** (-burda_stage(st.epoch, cfg.epochs) / 7)


def shift_offsets(n: int, max_shift: int, rng: torch.Generator) -> torch.Tensor:
    """(n, 2) random (dy, dx) in [-max_shift, max_shift]^2 as indices into the padded image."""
    return torch.randint(0, 2 * max_shift + 1, (2, n, 1), generator=rng)[:, :, 0].T


def shift_images(x: torch.Tensor, max_shift: int, offsets: torch.Tensor) -> torch.Tensor:
    """Each image (N, 784) moved by its own offset (``shift_offsets``), zero-filled."""
    if max_shift == 0:
        return x
    n, s = len(x), max_shift
    padded = F.pad(x.view(n, 28, 28), (s, s, s, s))
    dy, dx = offsets[:, :1], offsets[:, 1:]
    rows = (torch.arange(28, device=x.device) + dy).unsqueeze(-1).expand(n, 28, 28 + 2 * s)
    cols = (torch.arange(28, device=x.device) + dx).unsqueeze(1).expand(n, 28, 28)
    return padded.gather(1, rows).gather(2, cols).reshape(n, 784)


def random_shift(x: torch.Tensor, max_shift: int, rng: torch.Generator) -> torch.Tensor:
    """Each image (N, 784) moved by its own random (dy, dx) in [-max_shift, max_shift]^2, zero-filled."""
    if max_shift == 0:
        return x
    return shift_images(x, max_shift, shift_offsets(len(x), max_shift, rng).to(x.device))


def _classifier_draw(st: TrainState, cfg: ClassifierConfig, b: int, dev: torch.device) -> Draws:
    if cfg.shift == 0:
        return {}
    return {"shift": shift_offsets(b, cfg.shift, st.data_rngs[0]).to(dev)[None]}


def _classifier_step(st: TrainState, cfg: ClassifierConfig, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                     draws: Draws, g_step: bool, log_steps: bool) -> dict[str, torch.Tensor]:
    """Cross-entropy on a batch of randomly shifted training images (one seed)."""
    net, opt = st.models["net"], st.optimizers["net"]
    idx = idx[0]
    xb = torch.index_select(x, 0, idx)
    if cfg.shift:
        xb = shift_images(xb, cfg.shift, draws["shift"][0])
    yb = torch.index_select(y, 0, idx)
    logits = net(xb)
    loss = F.cross_entropy(logits, yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.detach()[None], "acc": (logits.detach().argmax(1) == yb).float().mean()[None]}


def _set_classifier_lr(st: TrainState, cfg: ClassifierConfig) -> None:
    """A step schedule: the learning rate halves after every third of the epochs."""
    for group in st.optimizers["net"].param_groups:
        group["lr"] = cfg.lr * 0.5 ** (3 * st.epoch // cfg.epochs)


@dataclass(frozen=True)
class Family:
    """How one model family trains: its draws, its step, the names (and spacing) of its step logs."""

    draw: Callable[[TrainState, Any, int, torch.device], Draws]
    step: Callable[..., dict[str, torch.Tensor]]
    log: Callable[[Any, bool], dict[str, int]]
    before_epoch: Callable[[TrainState, Any], None] | None = None


FAMILIES: dict[str, Family] = {
    "gan": Family(_gan_draw, _gan_step, _gan_log),
    "acgan": Family(_gan_draw, _gan_step, _gan_log),
    "vae": Family(_vae_draw, _vae_step, lambda cfg, log_steps: dict.fromkeys(("loss", "rec", "kl"), 1)),
    "iwae": Family(_iwae_draw, _iwae_step, lambda cfg, log_steps: {"loss": 1}, _set_burda_lr),
    "classifier": Family(_classifier_draw, _classifier_step, lambda cfg, log_steps: {"loss": 1, "acc": 1},
                         _set_classifier_lr),
}


def _g_step(cfg: TrainConfig, i: int) -> bool:
    """GANs take k D steps per G step (Goodfellow et al. 2014, Algorithm 1); other families have one kind."""
    return (i + 1) % getattr(cfg, "k", 1) == 0


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
        from .graphs import DeviceEpoch
        if st.device_epoch is None or not st.device_epoch.fits(st, cfg, x, log_steps):
            st.device_epoch = DeviceEpoch(st, cfg, x, log_steps, fam, graphs=st.cuda_graphs)
        return st.device_epoch.run(st, cfg, x, y)
    dev, S = x.device, st.n_seeds
    batches = _permutations(len(x), st.data_rngs, dev).split(cfg.batch_size, dim=1)
    every = fam.log(cfg, log_steps)
    out = {k: torch.empty(len(batches) // e, S, device=dev) for k, e in every.items()}
    for i, idx in enumerate(batches):
        draws = fam.draw(st, cfg, idx.shape[1], dev)
        for k, v in fam.step(st, cfg, x, y, idx, draws, _g_step(cfg, i), log_steps).items():
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


def train(cfg: TrainConfig, st: TrainState, data: MNISTTensors, *,
          evaluate: Evaluator | None = None, on_epoch_end: EpochCallback | None = None,
          log_steps: bool = False, progress: bool | None = None) -> TrainState:
    """Train every seed of ``st`` from epoch ``st.epoch`` to ``cfg.epochs``; return the final state.

    After each epoch, per seed: one history row (means of the per-step values, plus
    ``evaluate(st)`` if given, plus the epoch's wall time for the whole batch), a NaN/inf check,
    then ``on_epoch_end(st)``. A seed whose loss became non-finite leaves the batch (its last good
    checkpoint is the previous epoch; ``st.failed`` says why) and the others go on; the returned
    state holds the seeds that finished. If every seed fails, TrainingDiverged is raised.
    ``log_steps`` also keeps every step's values in ``row["steps"]``. ``progress=None`` shows a
    bar only on a terminal (a notebook rendered into the book stays clean).
    """
    device = st.device
    x, y = prepare(cfg, data, device)
    step_fn = EPOCHS[cfg.model]
    st.device_epoch = None  # buffers and graphs belong to one call's inputs
    for m in st.models.values():
        m.train()
    seeds = ", ".join(map(str, st.seeds))
    bar = tqdm(range(st.epoch, cfg.epochs), initial=st.epoch, total=cfg.epochs,
               desc=f"{cfg.model} seed{'s' if st.n_seeds > 1 else ''} {seeds}", unit="epoch",
               disable=None if progress is None else not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        steps = {k: v.cpu() for k, v in step_fn(st, cfg, x, y, log_steps).items()}
        bad = {}
        for s, seed in enumerate(st.seeds):
            if (where := _first_bad_step(steps, s)) is not None:
                k, step, n = where
                bad[s] = (f"{cfg.model} seed {seed}: non-finite {k} at epoch {epoch + 1}, step {step} of {n}; "
                          f"the last good checkpoint is epoch {st.epoch}")
        if bad:
            st.failed.update({st.seeds[s]: msg for s, msg in bad.items()})
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


TEST_BINARIZATION_SEED = 12345  # one fixed binarisation of the test set, so epochs are comparable


def binarized_test_set(test: MNISTTensors, device: torch.device, n: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(TEST_BINARIZATION_SEED)
    return binarize(to_unit(test.subset(n).images), g).to(device)


@torch.no_grad()
def vae_test_metrics(st: TrainState, test: MNISTTensors, device: torch.device,
                     batch_size: int = 2000) -> list[dict[str, float]]:
    """Every seed's test ELBO and its two terms (nats per image) on the fixed binarised test set.

    All seeds see the same binarisation and the same noise, so their values compare directly.
    """
    vae, S = st.models["vae"].eval(), st.n_seeds
    xb = binarized_test_set(test, device)
    g = torch.Generator(device=device).manual_seed(TEST_BINARIZATION_SEED)
    rec_sum = torch.zeros(S, dtype=torch.float64)
    kl_sum = torch.zeros(S, dtype=torch.float64)
    for chunk in xb.split(batch_size):
        eps = torch.randn(len(chunk), vae.z_dim, generator=g, device=device)
        xs = chunk.expand(S, -1, -1)
        logits, mu, logvar = vae(xs, eps.expand(S, -1, -1))
        rec, kl = losses.elbo_terms(logits, xs, mu, logvar)
        rec_sum += rec.sum(-1).double().cpu()
        kl_sum += kl.sum(-1).double().cpu()
    n = len(xb)
    return [{"test_elbo": float(r - k) / n, "test_rec": float(r) / n, "test_kl": float(k) / n}
            for r, k in zip(rec_sum, kl_sum)]


@torch.no_grad()
def classifier_test_metrics(st: TrainState, test: MNISTTensors, device: torch.device) -> list[dict[str, float]]:
    net = st.models["net"].eval()
    x, y = to_unit(test.images).to(device), test.labels.to(device)
    correct = sum(int((net(xc).argmax(1) == yc).sum()) for xc, yc in zip(x.split(2000), y.split(2000)))
    return [{"test_acc": correct / len(y)}]
