"""Objectives as pure functions of network outputs (no modules, no state), each unit-tested.

All GAN losses take *logits* and use BCE-with-logits: log D = -softplus(-l) and
log(1 - D) = -softplus(l) exactly, with no log(0) when D saturates.

Every loss averages over the *last* batch dimension only: inputs of shape (B,) give a scalar,
inputs of shape (S, B) (S seeds trained together, see ``models/seeded.py``) give one loss per
seed, shape (S,). Training sums the per-seed losses, so each seed gets its own gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean over the last dimension of BCE-with-logits against a constant target."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none").mean(-1)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the class cross-entropy: logits (B, C) or (S, B, C), labels (B,) or (S, B)."""
    if logits.dim() == 3:  # cross_entropy wants the classes in dimension 1: (S, C, B)
        return F.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(-1)
    return F.cross_entropy(logits, labels)


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator's half of eq. (1) of Goodfellow et al. (2014), negated to minimise:
    -E[log D(x)] - E[log(1 - D(G(z)))]."""
    return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)


def g_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """Generator loss.

    saturating=True: minimise E[log(1 - D(G(z)))], the generator's half of eq. (1). Early in
    training D rejects samples confidently, log(1 - D) is flat there and G's gradient vanishes.
    saturating=False (the paper's choice): minimise -E[log D(G(z))], same fixed point, strong
    gradients when D(G(z)) is small (Goodfellow et al. 2014, Sec. 3).
    """
    if saturating:
        return -_bce(fake_logits, 0.0)
    return _bce(fake_logits, 1.0)


def acgan_d_loss(real_src: torch.Tensor, real_cls: torch.Tensor, fake_src: torch.Tensor,
                 fake_cls: torch.Tensor, real_labels: torch.Tensor, fake_labels: torch.Tensor) -> torch.Tensor:
    """AC-GAN discriminator (Odena et al. 2017, eqs. 2-3): maximise L_S + L_C, i.e. minimise
    the source BCE plus the class cross-entropy on both real and generated images."""
    return d_loss(real_src, fake_src) + cross_entropy(real_cls, real_labels) + cross_entropy(fake_cls, fake_labels)


def acgan_g_loss(fake_src: torch.Tensor, fake_cls: torch.Tensor, fake_labels: torch.Tensor,
                 saturating: bool = False) -> torch.Tensor:
    """AC-GAN generator: maximise L_C - L_S, here with the non-saturating source term."""
    return g_loss(fake_src, saturating) + cross_entropy(fake_cls, fake_labels)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per example, in nats (Kingma & Welling 2013, App. B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) for binary x under Bernoulli(sigmoid(logits)), summed over pixels: nats per example.

    x log sigmoid(l) + (1 - x) log(1 - sigmoid(l)) = x l - softplus(l): the same value as
    BCE-with-logits in two passes instead of five, and ``x`` (B, D) broadcasts against logits
    (k, B, D) without being copied k times (the importance-sampled likelihood's inner loop).
    """
    return (logits * x).sum(dim=-1) - F.softplus(logits).sum(dim=-1)


def elbo_terms(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor,
               logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction log-likelihood, KL) per example; ELBO = rec - KL."""
    return bernoulli_log_likelihood(logits, x), gaussian_kl(mu, logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor | float = 0.0, logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    # a float logvar stays a Python number: a tensor made from it here would be a host-to-device
    # copy, which a CUDA graph cannot capture (the IWAE step calls this with the prior's 0)
    var = logvar.exp() if isinstance(logvar, torch.Tensor) else math.exp(logvar)
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / var).sum(dim=-1)


def gaussian_log_weights(log_px_given_z: torch.Tensor, z: torch.Tensor, eps: torch.Tensor,
                         logvar: torch.Tensor) -> torch.Tensor:
    """Importance log-weights log w = log p(x|z) + log p(z) - log q(z|x) for z = mu + sigma * eps
    drawn from q = N(mu, diag(exp(logvar))) and the prior p(z) = N(0, I).

    log q(z|x) comes from eps directly ((z - mu)^2 / sigma^2 = eps^2), which is exact and cheaper.
    ``logvar`` broadcasts against ``eps`` (e.g. (B, 1, d) against (B, k, d)).
    """
    log_q = -0.5 * (eps.pow(2).sum(-1) + logvar.sum(-1) + eps.shape[-1] * math.log(2 * math.pi))
    return log_px_given_z + log_normal(z) - log_q


def k_sample_bound(log_w: torch.Tensor, objective: str) -> torch.Tensor:
    """A lower bound on log p(x) from k importance log-weights (last dimension), per example.

    ``"iwae"``: log (1/k) sum_i w_i (Burda et al. 2016, eq. 8), tighter as k grows and equal to
    log p(x) when q is the exact posterior. ``"vae"``: (1/k) sum_i log w_i, the average of k
    single-sample ELBOs: the same expectation (the ELBO) for every k, with less variance.
    """
    if objective == "iwae":
        return torch.logsumexp(log_w, dim=-1) - math.log(log_w.shape[-1])
    if objective == "vae":
        return log_w.mean(dim=-1)
    raise ValueError(f"unknown objective {objective!r}; use 'iwae' or 'vae'")
