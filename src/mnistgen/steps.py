"""Each model family's training step, split into its random draws and a deterministic update.

Why no DataLoader: MNIST is 47 MB, so the whole split lives on the training device; an epoch is
a random permutation and slicing, which removes per-image Python and PIL costs (the
"textbook" torchvision pipeline spends most of its time there, see ``benchmarks/``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from . import losses
from .config import ACGANConfig, ClassifierConfig, GANConfig, IWAEConfig, TrainConfig, VAEConfig
from .data import MNISTTensors, to_signed, to_unit
from .schedules import set_burda_lr, set_classifier_lr
from .state import TrainState


def prepare(cfg: TrainConfig, data: MNISTTensors, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The training inputs as the model family wants them, resident on ``device``: the first
    ``cfg.n_train`` of the training images the run may see (all but the last ``cfg.validation``)."""
    data = data.split(cfg.validation)[0].subset(cfg.n_train) if cfg.validation else data.subset(cfg.n_train)
    x = to_signed(data.images) if isinstance(cfg, GANConfig) else to_unit(data.images)
    return x.to(device), data.labels.to(device)


def train_size(cfg: TrainConfig) -> int:
    """How many images a run of ``cfg`` trains on (``prepare``'s rows)."""
    available = 60_000 - cfg.validation
    return available if cfg.n_train is None else min(cfg.n_train, available)


def updates(cfg: TrainConfig) -> int:
    """Optimiser steps of a whole run of ``cfg`` (the last batch of an epoch may be smaller)."""
    return cfg.epochs * -(-train_size(cfg) // cfg.batch_size)


def permutations(n: int, rngs: list[torch.Generator], device: torch.device) -> torch.Tensor:
    """Each seed's own order of the ``n`` training images: (S, n) indices on ``device``."""
    return torch.stack([torch.randperm(n, generator=g) for g in rngs]).to(device)


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` (S, b) of ``x`` as (S, b, ...).

    index_select, not x[idx]: the same gather, ~6x faster on CPU for a 128 x 784 batch (measured).
    """
    return torch.index_select(x, 0, idx.reshape(-1)).view(*idx.shape, *x.shape[1:])


def _per_seed(draw: Callable[..., torch.Tensor], rngs: list[torch.Generator], *shape: int,
              device: torch.device) -> torch.Tensor:
    """(S, *shape) draws of ``draw`` (torch.rand or torch.randn), slice s from seed s's generator.

    Each seed's draw is written into its slice of one tensor: the same numbers as stacking the
    seeds' draws, without copying them (the VAE's binarisation noise is 2 MB a step).
    """
    out = torch.empty(len(rngs), *shape, device=device)
    for g, part in zip(rngs, out):
        draw(*shape, generator=g, out=part)
    return out


def _randn(rngs: list[torch.Generator], *shape: int, device: torch.device) -> torch.Tensor:
    """(S, *shape) standard normal draws, slice s from seed s's generator."""
    return _per_seed(torch.randn, rngs, *shape, device=device)


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
        # Only G's gradient: D's weight gradients on this batch would be computed and thrown away
        # (D's next step zeroes them), one of D's three products per layer for nothing.
        loss_g.sum().backward(inputs=list(G.parameters()))
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
    return {"u": _per_seed(torch.rand, st.noise_rngs, b, 784, device=dev),
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
    return {"u": _per_seed(torch.rand, st.noise_rngs, b, 784, device=dev),
            "eps": _randn(st.noise_rngs, b, cfg.k, cfg.z_dim, device=dev)}


def _iwae_step(st: TrainState, cfg: IWAEConfig, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
               draws: Draws, g_step: bool, log_steps: bool) -> dict[str, torch.Tensor]:
    """One step on the k-sample bound (Burda et al. 2016): k reparameterised z per image, their
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


OUTPUT_BIAS_CLAMP = 1e-3  # pixels always 0 (or 1) in the training set: a finite logit, about +-6.9


@torch.no_grad()
def _output_bias_from_data(st: TrainState, cfg: IWAEConfig, x: torch.Tensor) -> None:
    """The decoder's output bias := logit of the training images' mean intensities, as Burda et
    al.'s released code initialises it (nbip/IWAE found this is what brought its numbers on par):
    the untrained decoder then starts at the data's mean image rather than at grey."""
    p = x.mean(0).clamp(OUTPUT_BIAS_CLAMP, 1 - OUTPUT_BIAS_CLAMP)
    st.models["vae"].dec[-1].bias.copy_(torch.log(p / (1 - p)).expand_as(st.models["vae"].dec[-1].bias))


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



@dataclass(frozen=True)
class Family:
    """How one model family trains: its draws, its step, the names (and spacing) of its step logs."""

    draw: Callable[[TrainState, Any, int, torch.device], Draws]
    step: Callable[..., dict[str, torch.Tensor]]
    log: Callable[[Any, bool], dict[str, int]]
    before_epoch: Callable[[TrainState, Any], None] | None = None
    # once, before the first epoch: an initialisation that depends on the training data
    init_from_data: Callable[[TrainState, Any, torch.Tensor], None] | None = None


FAMILIES: dict[str, Family] = {
    "gan": Family(_gan_draw, _gan_step, _gan_log),
    "acgan": Family(_gan_draw, _gan_step, _gan_log),
    "vae": Family(_vae_draw, _vae_step, lambda cfg, log_steps: dict.fromkeys(("loss", "rec", "kl"), 1)),
    "iwae": Family(_iwae_draw, _iwae_step, lambda cfg, log_steps: {"loss": 1}, set_burda_lr, _output_bias_from_data),
    "classifier": Family(_classifier_draw, _classifier_step, lambda cfg, log_steps: {"loss": 1, "acc": 1},
                         set_classifier_lr),
}


def g_step(cfg: TrainConfig, i: int) -> bool:
    """GANs take k D steps per G step (Goodfellow et al. 2014, Algorithm 1); other families have one kind."""
    return (i + 1) % getattr(cfg, "k", 1) == 0
