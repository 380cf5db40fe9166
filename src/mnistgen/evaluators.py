"""What is measured while a run trains, once per epoch (or every few), into its history.

Reported numbers come from the test set: a VAE's test ELBO, a classifier's test accuracy. What a
choice is made on comes from the validation split: the GANs' sample quality during training, from
which the sweep picks its setting (``evaluate.gan_sweep``), is judged against the last 10,000
training images, which no GAN-family model trains on (``config.GANConfig.validation``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import losses, metrics
from .config import TrainConfig
from .data import MNISTTensors, binarize, to_unit
from .state import TrainState
from .train import Evaluator, to_uint8

QUALITY_SEED = 4242  # the noise behind the samples judged during training (the same every epoch)


TEST_BINARIZATION_SEED = 12345  # one fixed binarisation of the test set, so epochs are comparable


def binarized_test_set(test: MNISTTensors, device: torch.device, n: int | None = None) -> torch.Tensor:
    """One fixed binarisation of ``n`` test images, a seeded random subset (``MNISTTensors.sample``):
    the same images, and the same pixels, for every model and every epoch."""
    g = torch.Generator().manual_seed(TEST_BINARIZATION_SEED)
    return binarize(to_unit(test.sample(n).images), g).to(device)


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

def quality_evaluator(cfg: Any, judge: nn.Module, valid: MNISTTensors, device: torch.device) -> Evaluator:
    """FID (against the validation images), Inception Score and the most frequent class's share (a
    collapse signal) of every seed's samples under the judge, every ``cfg.quality_every`` epochs
    and at the last epoch."""
    _, valid_features = metrics.classify(judge, valid.images)
    conditional = cfg.model == "acgan"

    @torch.no_grad()
    def evaluate(st: TrainState) -> list[dict[str, float]] | None:
        if st.epoch % cfg.quality_every and st.epoch != cfg.epochs:
            return None
        G, S, n = st.models["G"].eval(), st.n_seeds, cfg.quality_samples
        g = torch.Generator(device=device).manual_seed(QUALITY_SEED)
        z = torch.randn(n, cfg.z_dim, generator=g, device=device).expand(S, -1, -1)
        labels = torch.arange(n, device=device) % cfg.n_classes if conditional else None
        x = G(z, labels.expand(S, -1)) if conditional else G(z)
        return [metrics.sample_quality(judge, to_uint8(x[s]).reshape(n, 28, 28), valid_features,
                                       None if labels is None else labels.cpu()) for s in range(S)]
    return evaluate


def for_run(cfg: TrainConfig, train: MNISTTensors, test: MNISTTensors, device: torch.device,
            judge: nn.Module | None) -> Evaluator | None:
    """The per-epoch measurements of ``cfg``'s family (None: none)."""
    if cfg.model in ("vae", "iwae"):
        return lambda st: vae_test_metrics(st, test, device)
    if cfg.model == "classifier":
        return lambda st: classifier_test_metrics(st, test, device)
    if getattr(cfg, "quality_every", 0):
        if judge is None:
            raise ValueError(f"{cfg.model} with quality_every={cfg.quality_every} needs a judge "
                             "(a classifier run) to score its samples during training")
        if not cfg.validation:
            raise ValueError(f"{cfg.model} with quality_every={cfg.quality_every} needs a validation split "
                             "(validation > 0) to judge its samples on: choices are never made on the test set")
        return quality_evaluator(cfg, judge, train.split(cfg.validation)[1], device)
    return None
