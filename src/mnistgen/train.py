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

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import losses
from .config import ACGANConfig, ClassifierConfig, GANConfig, TrainConfig, VAEConfig
from .data import MNISTTensors, binarize, to_signed, to_unit
from .models import VAE, ACDiscriminator, ConditionalGenerator, Discriminator, Generator, LeNet


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
    """Everything a resumed run needs: weights, optimiser moments, RNG states, progress."""

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    data_rng: torch.Generator      # CPU: the order of the training images
    noise_rng: torch.Generator     # on the device: z, reparameterisation noise, binarisation
    epoch: int = 0                 # completed epochs
    history: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)  # GANs: uint8 fixed-noise samples per epoch

    @property
    def device(self) -> torch.device:
        return next(next(iter(self.models.values())).parameters()).device

    def state_dict(self) -> dict[str, Any]:
        return {"models": {k: m.state_dict() for k, m in self.models.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "data_rng": self.data_rng.get_state(), "noise_rng": self.noise_rng.get_state(),
                "epoch": self.epoch, "history": self.history, "snapshots": self.snapshots}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for k, m in self.models.items():
            m.load_state_dict(sd["models"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(sd["optimizers"][k])
        self.data_rng.set_state(sd["data_rng"])
        self.noise_rng.set_state(sd["noise_rng"])
        self.epoch, self.history = int(sd["epoch"]), list(sd["history"])
        self.snapshots = list(sd["snapshots"])


def build_models(cfg: TrainConfig) -> dict[str, nn.Module]:
    if isinstance(cfg, ACGANConfig):
        return {"G": ConditionalGenerator(cfg.z_dim, cfg.hidden, cfg.n_classes),
                "D": ACDiscriminator(cfg.hidden, cfg.n_classes)}
    if isinstance(cfg, GANConfig):
        return {"G": Generator(cfg.z_dim, cfg.hidden), "D": Discriminator(cfg.hidden)}
    if isinstance(cfg, VAEConfig):
        return {"vae": VAE(cfg.z_dim, cfg.hidden)}
    if isinstance(cfg, ClassifierConfig):
        return {"net": LeNet()}
    raise TypeError(f"no models for {type(cfg).__name__}")


def init_state(cfg: TrainConfig, device: torch.device) -> TrainState:
    """Fresh models (initialised from ``cfg.seed``), Adam optimisers, seeded generators."""
    torch.manual_seed(cfg.seed)  # weight initialisation is the one draw from the global RNG
    models = {k: m.to(device) for k, m in build_models(cfg).items()}
    betas = (cfg.beta1, cfg.beta2) if isinstance(cfg, GANConfig) else (0.9, 0.999)
    # fused=True: one kernel for the whole update instead of ~10 per parameter tensor (measured:
    # Adam was ~27% of a GAN step at batch 128 on 2 CPU cores; see benchmarks/throughput.py)
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=betas, fused=True) for k, m in models.items()}
    data_rng = torch.Generator().manual_seed(cfg.seed)
    noise_rng = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    return TrainState(models, optimizers, data_rng, noise_rng)


def prepare(cfg: TrainConfig, data: MNISTTensors, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The training inputs as the model family wants them, resident on ``device``."""
    data = data.subset(cfg.n_train)
    x = to_signed(data.images) if isinstance(cfg, GANConfig) else to_unit(data.images)
    return x.to(device), data.labels.to(device)


def _batches(n: int, batch_size: int, rng: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=rng).to(device)
    return list(perm.split(batch_size))


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    # index_select, not x[idx]: the same gather, ~6x faster on CPU for a 128 x 784 batch (measured)
    return torch.index_select(x, 0, idx)


StepLog = dict[str, torch.Tensor]


def _gan_epoch(st: TrainState, cfg: GANConfig, x: torch.Tensor, y: torch.Tensor, log_steps: bool) -> StepLog:
    """One epoch of Algorithm 1 of Goodfellow et al. (2014): k D steps per G step.

    Two cost-free rewrites of the textbook step (see ``benchmarks/``):
    - D sees the real and the generated batch as one batch of 2b rows: one forward and one
      backward through D instead of two, and larger matrix products. D has no batch
      statistics (no batch norm), so the gradients equal the sum of the two separate passes.
    - G(z) is computed once: D's step sees it detached, G's step (same z, as in the
      pytorch/examples DCGAN loop) backpropagates through it after D's update.
    """
    G, D = st.models["G"], st.models["D"]
    opt_g, opt_d = st.optimizers["G"], st.optimizers["D"]
    conditional = isinstance(cfg, ACGANConfig)
    batches = _batches(len(x), cfg.batch_size, st.data_rng, x.device)
    # Per-step values stay on the device and are read once per epoch: no host sync per step.
    d_keys = ["d_loss", "d_real", "d_fake"] + (["acc_real", "acc_fake"] if conditional else [])
    g_keys = ["g_loss"] + (["g_grad_norm"] if log_steps else [])
    out = {k: torch.empty(len(batches), device=x.device) for k in d_keys}
    out.update({k: torch.empty(len(batches) // cfg.k, device=x.device) for k in g_keys})
    for i, idx in enumerate(batches):
        real, b = _rows(x, idx), len(idx)
        z = torch.randn(b, cfg.z_dim, generator=st.noise_rng, device=x.device)
        g_step = (i + 1) % cfg.k == 0
        with torch.set_grad_enabled(g_step):
            if conditional:
                fake_labels = torch.randint(cfg.n_classes, (b,), generator=st.noise_rng, device=x.device)
                fake = G(z, fake_labels)
            else:
                fake = G(z)
        both = torch.cat([real, fake.detach()])
        if conditional:
            src, cls = D(both)
            labels = torch.cat([_rows(y, idx), fake_labels])
            loss_d = losses.acgan_d_loss(src[:b], cls[:b], src[b:], cls[b:], labels[:b], fake_labels)
        else:
            src = D(both)
            loss_d = losses.d_loss(src[:b], src[b:])
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with torch.no_grad():
            out["d_loss"][i] = loss_d
            out["d_real"][i], out["d_fake"][i] = torch.sigmoid(src).view(2, b).mean(1)
            if conditional:
                out["acc_real"][i], out["acc_fake"][i] = (cls.argmax(1) == labels).float().view(2, b).mean(1)
        if g_step:
            if conditional:
                fs, fc = D(fake)
                loss_g = losses.acgan_g_loss(fs, fc, fake_labels, cfg.saturating)
            else:
                loss_g = losses.g_loss(D(fake), cfg.saturating)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            if log_steps:
                grads = [p.grad for p in G.parameters() if p.grad is not None]
                out["g_grad_norm"][i // cfg.k] = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            opt_g.step()
            out["g_loss"][i // cfg.k] = loss_g.detach()
    return out


def _vae_epoch(st: TrainState, cfg: VAEConfig, x: torch.Tensor, y: torch.Tensor, log_steps: bool) -> StepLog:
    vae, opt = st.models["vae"], st.optimizers["vae"]
    batches = _batches(len(x), cfg.batch_size, st.data_rng, x.device)
    out = {k: torch.empty(len(batches), device=x.device) for k in ("loss", "rec", "kl")}
    for i, idx in enumerate(batches):
        xb = binarize(_rows(x, idx), st.noise_rng)  # a fresh binarisation every time an image is drawn
        eps = torch.randn(len(idx), cfg.z_dim, generator=st.noise_rng, device=x.device)
        logits, mu, logvar = vae(xb, eps)
        rec, kl = losses.elbo_terms(logits, xb, mu, logvar)
        loss = (kl - rec).mean()  # negative ELBO, nats per image
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        out["loss"][i], out["rec"][i], out["kl"][i] = loss.detach(), rec.detach().mean(), kl.detach().mean()
    return out


def _classifier_epoch(st: TrainState, cfg: ClassifierConfig, x: torch.Tensor, y: torch.Tensor,
                      log_steps: bool) -> StepLog:
    net, opt = st.models["net"], st.optimizers["net"]
    batches = _batches(len(x), cfg.batch_size, st.data_rng, x.device)
    out = {k: torch.empty(len(batches), device=x.device) for k in ("loss", "acc")}
    for i, idx in enumerate(batches):
        xb, yb = _rows(x, idx), _rows(y, idx)
        logits = net(xb)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        out["loss"][i] = loss.detach()
        out["acc"][i] = (logits.detach().argmax(1) == yb).float().mean()
    return out


EPOCHS: dict[str, Callable[..., StepLog]] = {"gan": _gan_epoch, "acgan": _gan_epoch,
                                             "vae": _vae_epoch, "classifier": _classifier_epoch}

SNAPSHOT_SEED, SNAPSHOT_N = 2024, 10


@torch.no_grad()
def fixed_noise(n: int, z_dim: int, device: torch.device, seed: int = SNAPSHOT_SEED) -> torch.Tensor:
    """Noise from its own generator: the same z for every epoch and every rerun, never touching training's RNG."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed)).to(device)


@torch.no_grad()
def snapshot(st: TrainState, cfg: GANConfig) -> torch.Tensor:
    """G's output on fixed noise (digits 0-9 for the AC-GAN) as uint8 (SNAPSHOT_N, 784), on CPU."""
    G = st.models["G"]
    z = fixed_noise(SNAPSHOT_N, cfg.z_dim, st.device)
    if isinstance(cfg, ACGANConfig):
        x = G(z, torch.arange(SNAPSHOT_N, device=st.device) % cfg.n_classes)
    else:
        x = G(z)
    return to_uint8(x)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 pixels on CPU."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


EpochCallback = Callable[[TrainState], None]


def train(cfg: TrainConfig, st: TrainState, data: MNISTTensors, *,
          evaluate: Callable[[TrainState], dict[str, float]] | None = None,
          on_epoch_end: EpochCallback | None = None, log_steps: bool = False,
          progress: bool | None = None) -> TrainState:
    """Train ``st`` from epoch ``st.epoch`` to ``cfg.epochs``.

    After each epoch: one history row (means of the per-step values, plus ``evaluate(st)`` if
    given, plus the epoch's wall time), a NaN/inf check, then ``on_epoch_end(st)``.
    ``log_steps`` also keeps every step's values in ``row["steps"]``. ``progress=None`` shows a
    bar only on a terminal (a notebook rendered into the book stays clean).
    """
    device = st.device
    x, y = prepare(cfg, data, device)
    step_fn = EPOCHS[cfg.model]
    for m in st.models.values():
        m.train()
    bar = tqdm(range(st.epoch, cfg.epochs), initial=st.epoch, total=cfg.epochs,
               desc=f"{cfg.model} seed {cfg.seed}", unit="epoch", disable=None if progress is None else not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        steps = {k: v.cpu() for k, v in step_fn(st, cfg, x, y, log_steps).items()}
        for k, v in steps.items():
            if not torch.isfinite(v).all():
                first = int((~torch.isfinite(v)).nonzero()[0])
                raise TrainingDiverged(f"{cfg.model}: non-finite {k} at epoch {epoch + 1}, step {first + 1} "
                                       f"of {len(v)}; the last good checkpoint is epoch {st.epoch}")
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update({k: float(v.mean()) for k, v in steps.items()})
        if log_steps:
            row["steps"] = {k: v.tolist() for k, v in steps.items()}
        if evaluate is not None:
            row.update(evaluate(st))
            for m in st.models.values():
                m.train()
        row["seconds"] = time.perf_counter() - t0
        if cfg.model in ("gan", "acgan"):
            st.snapshots.append(snapshot(st, cfg))
        st.epoch = epoch + 1
        st.history.append(row)
        bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k not in ("epoch", "steps", "seconds")})
        if on_epoch_end is not None:
            on_epoch_end(st)
    bar.close()
    return st


TEST_BINARIZATION_SEED = 12345  # one fixed binarisation of the test set, so epochs are comparable


def binarized_test_set(test: MNISTTensors, device: torch.device, n: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(TEST_BINARIZATION_SEED)
    return binarize(to_unit(test.subset(n).images), g).to(device)


@torch.no_grad()
def vae_test_metrics(st: TrainState, test: MNISTTensors, device: torch.device, batch_size: int = 2000) -> dict[str, float]:
    """Test ELBO and its two terms (nats per image) on the fixed binarised test set."""
    vae = st.models["vae"].eval()
    xb = binarized_test_set(test, device)
    g = torch.Generator(device=device).manual_seed(TEST_BINARIZATION_SEED)
    rec_sum = kl_sum = 0.0
    for chunk in xb.split(batch_size):
        eps = torch.randn(len(chunk), vae.z_dim, generator=g, device=device)
        logits, mu, logvar = vae(chunk, eps)
        rec, kl = losses.elbo_terms(logits, chunk, mu, logvar)
        rec_sum += float(rec.sum())
        kl_sum += float(kl.sum())
    n = len(xb)
    return {"test_elbo": (rec_sum - kl_sum) / n, "test_rec": rec_sum / n, "test_kl": kl_sum / n}


@torch.no_grad()
def classifier_test_metrics(st: TrainState, test: MNISTTensors, device: torch.device) -> dict[str, float]:
    net = st.models["net"].eval()
    x, y = to_unit(test.images).to(device), test.labels.to(device)
    correct = sum(int((net(xc).argmax(1) == yc).sum()) for xc, yc in zip(x.split(2000), y.split(2000)))
    return {"test_acc": correct / len(y)}
