"""Sample-quality and likelihood estimators, each tested against a case with a known answer.

- Frechet distance between Gaussians fitted to classifier features (FID, Heusel et al. 2017),
  here in the feature space of the project's MNIST classifier ("FID-MNIST").
- Inception Score (Salimans et al. 2016) with the same classifier, mean ± sd over 10 splits.
- Gaussian Parzen-window log-likelihood, the protocol of Goodfellow et al. (2014): sigma chosen
  on a validation split, mean log-likelihood of test images, standard error over test images.
- Importance-sampled log-likelihood of a VAE (the IWAE bound of Burda et al. 2016).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch

from .losses import bernoulli_log_likelihood, gaussian_log_weights


# --- Classifier outputs -------------------------------------------------------------------

@torch.no_grad()
def classify(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """(class probabilities, penultimate features) of uint8 images (N, 28, 28), on CPU."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    probs, feats = [], []
    for chunk in images.split(batch_size):
        f = net.features(chunk.reshape(len(chunk), -1).float().div(255.0).to(device))
        feats.append(f.float().cpu())
        probs.append(torch.softmax(net.head(f), dim=1).float().cpu())
    net.train(was_training)
    return torch.cat(probs), torch.cat(feats)


def sample_quality(net: torch.nn.Module, images: torch.Tensor, reference_features: torch.Tensor,
                   labels: torch.Tensor | None = None) -> dict[str, float]:
    """FID against the reference images' features (during training: the validation split), the
    Inception Score (mean over 10 splits), and the share of the samples in the most frequent
    predicted class (0.1 for balanced digits, 1.0 for a generator collapsed onto one), all under
    the classifier ``net``; with ``labels`` (requested digits) also the class accuracy."""
    probs, feats = classify(net, images)
    pred = probs.argmax(1)
    out = {"fid": fid_from_features(feats, reference_features), "inception_score": inception_score_splits(probs)[0],
           "top_class_share": float(torch.bincount(pred, minlength=probs.shape[1]).max()) / len(pred)}
    if labels is not None:
        out["class_accuracy"] = float((pred == labels).float().mean())
    return out


# --- Frechet distance ---------------------------------------------------------------------

def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^{1/2}), with scipy's matrix square root."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov1 @ cov2)
    if caught or not np.isfinite(covmean).all():
        # singular product (e.g. dead feature units): offset the diagonals, as the reference FID code does
        eps = 1e-6 * np.eye(len(cov1))
        covmean = scipy.linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def fid_from_features(f1: torch.Tensor | np.ndarray, f2: torch.Tensor | np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))


# --- Inception Score ----------------------------------------------------------------------

def inception_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))) from class probabilities (N, C); 1 (uniform/identical) to C."""
    p = probs.double().clamp_min(1e-12)
    py = p.mean(dim=0, keepdim=True)
    return float(torch.exp((p * (p.log() - py.log())).sum(dim=1).mean()))


def inception_score_splits(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """The Inception Score as the literature reports it (Salimans et al. 2016): computed on each of
    ``splits`` consecutive parts of the samples, then their mean and standard deviation."""
    scores = np.array([inception_score(part) for part in probs.tensor_split(splits)])
    return float(scores.mean()), float(scores.std(ddof=1))


# --- Parzen window ------------------------------------------------------------------------

def _parzen_many(samples: torch.Tensor, x: torch.Tensor, sigmas: list[float], batch_size: int = 1000) -> torch.Tensor:
    """log p(x) for every row of ``x`` and every sigma: float64 (len(sigmas), len(x)).

    The squared distances do not depend on sigma, so each chunk's distance matrix is computed
    once and reused for every sigma of the search. Per row, the log-sum-exp is taken relative
    to the nearest sample: exp(-(d2 - d2_min) / (2 sigma^2)) has its largest term exactly 1, so
    float32 has the range, and exponents are clamped at -80 because terms below e^-80 cannot
    change a sum that is at least 1 (and float32 ``exp`` is ~20x slower where it underflows).
    Against float64 log-sum-exp on 500 MNIST test images and 10,000 centres (tests/test_metrics.py):
    at most 1.2e-3 nats per image at sigma = 0.2, within the bound the float32 arithmetic gives.
    """
    n, d = samples.shape
    s = samples.float()
    s_sq = (s * s).sum(1)
    out = []
    for xb in x.float().split(batch_size):
        d2 = torch.addmm(s_sq[None], xb, s.T, alpha=-2).add_((xb * xb).sum(1, keepdim=True)).clamp_min_(0)
        d2_min = d2.amin(1, keepdim=True)
        d2 -= d2_min
        buf = torch.empty_like(d2)
        rows = []
        for v in sigmas:
            scale = -1.0 / (2 * v * v)
            torch.mul(d2, scale, out=buf).clamp_min_(-80.0).exp_()
            rows.append(buf.sum(1).double().log() + d2_min[:, 0].double() * scale)
        out.append(torch.stack(rows))
    sig = torch.tensor(sigmas, dtype=torch.float64, device=samples.device)
    const = -math.log(n) - 0.5 * d * torch.log(2 * math.pi * sig**2)
    return torch.cat(out, dim=1) + const[:, None]


def parzen_log_likelihood(samples: torch.Tensor, x: torch.Tensor, sigma: float, batch_size: int = 1000) -> torch.Tensor:
    """log p(x) per row of ``x`` under an isotropic Gaussian mixture centred on ``samples`` (N, D).

    log p(x) = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log N - D/2 log(2 pi sigma^2).
    """
    return _parzen_many(samples, x, [sigma], batch_size)[0]


def parzen_select_sigma(samples: torch.Tensor, valid: torch.Tensor,
                        sigmas: np.ndarray | list[float] | None = None) -> tuple[float, dict[float, float]]:
    """The sigma maximising mean validation log-likelihood, searched on a log grid as in
    Goodfellow et al.'s code (then refined once around the best)."""
    grid = [float(v) for v in (np.logspace(-1.3, 0, 12) if sigmas is None else sigmas)]
    scores = dict(zip(grid, _parzen_many(samples, valid, grid).mean(1).tolist()))
    best = max(scores, key=scores.get)
    if sigmas is None:
        fine = [float(v) for v in np.linspace(best * 0.8, best * 1.2, 5)]
        scores.update(zip(fine, _parzen_many(samples, valid, fine).mean(1).tolist()))
        best = max(scores, key=scores.get)
    return best, scores


def parzen_estimate(samples: torch.Tensor, valid: torch.Tensor, test: torch.Tensor,
                    device: torch.device | str | None = None) -> dict[str, float]:
    """Goodfellow et al. (2014) protocol: pixels in [0, 1], sigma by validation, mean and SE on test.

    ``device``: where the distance matrices are computed (a GPU does 10,000 x 10,000 in
    milliseconds); the default is where ``samples`` are."""
    if device is not None:
        samples, valid, test = samples.to(device), valid.to(device), test.to(device)
    sigma, _ = parzen_select_sigma(samples, valid)
    ll = parzen_log_likelihood(samples, test, sigma).cpu()
    return {"parzen_ll": float(ll.mean()), "parzen_se": float(ll.std() / math.sqrt(len(ll))), "parzen_sigma": sigma}


# --- Importance-sampled likelihood of a VAE -----------------------------------------------

LogLikelihood = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def importance_log_likelihood(log_px_given_z: LogLikelihood, x: torch.Tensor, mu: torch.Tensor,
                              logvar: torch.Tensor, k: int, generator: torch.Generator | None = None,
                              chunk: int = 1000) -> torch.Tensor:
    """log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q = N(mu, exp(logvar)), p(z) = N(0, I).

    This is the IWAE bound of Burda et al. (2016, eq. 7), per row of ``x``. The k samples are
    drawn ``chunk`` at a time and combined with a running log-sum-exp, so memory does not grow
    with k. k = 1 is a sample of the ELBO; the bound tightens in expectation as k grows and
    reaches log p(x) as k -> infinity. ``log_px_given_z(z, x)`` maps z (m, B, d) to (m, B).
    """
    std = torch.exp(0.5 * logvar)
    total = torch.full((len(x),), -math.inf, dtype=torch.float64, device=x.device)
    done = 0
    while done < k:
        m = min(chunk, k - done)
        eps = torch.randn(m, *mu.shape, generator=generator, device=x.device, dtype=mu.dtype)
        z = mu[None] + std[None] * eps
        log_w = gaussian_log_weights(log_px_given_z(z, x), z, eps, logvar)
        total = torch.logaddexp(total, torch.logsumexp(log_w.double(), dim=0))
        done += m
    return total - math.log(k)


@torch.no_grad()
def vae_log_likelihood(vae: torch.nn.Module, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                       chunk: int = 1000) -> torch.Tensor:
    """Importance-sampled log p(x) (nats) of binary images ``x`` under a Bernoulli-decoder VAE."""
    mu, logvar = vae.encode(x)

    def log_px_given_z(z: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        logits = vae.decode(z)
        return bernoulli_log_likelihood(logits, xb)

    return importance_log_likelihood(log_px_given_z, x, mu, logvar, k, generator, chunk)


@torch.no_grad()
def active_units(vae: torch.nn.Module, x: torch.Tensor, threshold: float = 1e-2, batch_size: int = 2000) -> int:
    """Latent units in use, as Burda et al. (2015, Sec. 5.2) count them: unit j is active when
    Cov_x(E_q(z|x)[z_j]), the variance over the images ``x`` of its posterior mean, exceeds 10^-2."""
    mu = torch.cat([vae.encode(chunk)[0].double() for chunk in x.split(batch_size)])
    return int((mu.var(dim=0) > threshold).sum())
