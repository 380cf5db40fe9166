"""The k-sample bounds of Burda et al. (2016) against a model whose likelihood is known, and the
schedule, model and metric that the VAE chapter's comparison with their Table 1 uses.

Oracle: a linear-Gaussian model, z ~ N(0, I), x | z ~ N(Wz + b, s2 I), has p(x) = N(b, WW^T + s2 I)
and a Gaussian posterior, diagonal when W's columns are orthogonal. With that posterior as q,
p(x, z) / q(z | x) = p(x) for every z: every bound equals log p(x), for every k and both
objectives, and so does its gradient with respect to the model's parameters.
"""

from __future__ import annotations

import math

import pytest
import torch

from mnistgen import losses, metrics, train
from mnistgen.config import ConfigError, make_config
from mnistgen.models import VAE

D, d = 6, 3


def linear_gaussian(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(D, d, generator=g, dtype=torch.float64))
    W = q * torch.tensor([0.5, 1.5, 3.0], dtype=torch.float64)  # orthogonal columns
    b = torch.randn(D, generator=g, dtype=torch.float64)
    return W, b, 0.3


def exact_log_px(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, s2: float) -> torch.Tensor:
    cov = W @ W.T + s2 * torch.eye(D, dtype=torch.float64)
    return torch.distributions.MultivariateNormal(b, cov).log_prob(x)


def exact_posterior(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, s2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, log-variance) of p(z | x): precision I + W^T W / s2, diagonal for orthogonal columns."""
    var = 1.0 / (1.0 + (W * W).sum(0) / s2)
    return var * ((x - b) @ W) / s2, var.log().expand(len(x), -1)


def bound(x, W, b, s2, mu, logvar, k, objective, g) -> torch.Tensor:
    eps = torch.randn(len(x), k, d, generator=g, dtype=torch.float64)
    z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps
    log_px_z = losses.log_normal(x[:, None, :], z @ W.T + b, math.log(s2))
    return losses.k_sample_bound(losses.gaussian_log_weights(log_px_z, z, eps, logvar[:, None, :]), objective)


def sample_x(n: int, W, b, s2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    return z @ W.T + b + math.sqrt(s2) * torch.randn(n, D, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("objective", ["iwae", "vae"])
@pytest.mark.parametrize("k", [1, 5, 50])
def test_with_the_exact_posterior_every_bound_is_log_px(objective, k):
    W, b, s2 = linear_gaussian()
    x = sample_x(200, W, b, s2)
    mu, logvar = exact_posterior(x, W, b, s2)
    got = bound(x, W, b, s2, mu, logvar, k, objective, torch.Generator().manual_seed(2))
    torch.testing.assert_close(got, exact_log_px(x, W, b, s2), rtol=0, atol=1e-9)


def test_with_a_worse_posterior_the_iwae_bound_rises_with_k_towards_log_px_and_the_average_does_not():
    W, b, s2 = linear_gaussian()
    x = sample_x(4000, W, b, s2)
    mu, logvar = exact_posterior(x, W, b, s2)
    mu, logvar = mu + 0.4, logvar + 0.8  # a shifted, too wide q
    g = torch.Generator().manual_seed(3)
    log_px = exact_log_px(x, W, b, s2).mean()
    iwae = {k: bound(x, W, b, s2, mu, logvar, k, "iwae", g) for k in (1, 5, 50)}
    means = {k: float(v.mean()) for k, v in iwae.items()}
    assert means[1] < means[5] < means[50] < float(log_px)
    assert float(log_px) - means[50] < 0.25 * (float(log_px) - means[1])  # most of the gap closed at k = 50
    # the mean of k ELBOs estimates the ELBO for every k: k = 50 agrees with k = 1 within its error
    avg = bound(x, W, b, s2, mu, logvar, 50, "vae", g)
    se = float(iwae[1].std() / math.sqrt(len(x)))
    assert abs(float(avg.mean()) - means[1]) < 4 * se


@pytest.mark.parametrize("objective", ["iwae", "vae"])
def test_the_gradient_of_the_bound_is_the_gradient_of_log_px_under_the_exact_posterior(objective):
    """The training signal, not only the value: with q the exact posterior of the current
    parameters, d(bound)/d(parameters) = d log p(x) / d(parameters) for any draws. The model is
    parametrised as W = Q diag(c) (Q fixed, orthonormal columns) so that the posterior stays
    diagonal, i.e. exactly representable by q, wherever the gradient looks."""
    W0, b0, s2 = linear_gaussian()
    Q, c0 = W0 / W0.norm(dim=0), W0.norm(dim=0)
    x = sample_x(50, W0, b0, s2)
    grads = {}
    for name in ("bound", "exact"):
        c, b = c0.clone().requires_grad_(), b0.clone().requires_grad_()
        W = Q * c
        if name == "bound":
            mu, logvar = exact_posterior(x, W, b, s2)
            value = bound(x, W, b, s2, mu, logvar, 5, objective, torch.Generator().manual_seed(4)).sum()
        else:
            value = exact_log_px(x, W, b, s2).sum()
        grads[name] = torch.autograd.grad(value, (c, b))
    for got, want in zip(grads["bound"], grads["exact"]):
        assert want.abs().max() > 1.0  # a real gradient, not zeros on both sides
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8)
    # and a q that is not the posterior gives another gradient: the test can fail
    c, b = c0.clone().requires_grad_(), b0.clone().requires_grad_()
    mu, logvar = exact_posterior(x, Q * c, b, s2)
    off = bound(x, Q * c, b, s2, mu + 0.3, logvar, 5, objective, torch.Generator().manual_seed(4)).sum()
    assert not torch.allclose(torch.autograd.grad(off, c)[0], grads["exact"][0], rtol=1e-3)


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="unknown objective 'elbo'"):
        losses.k_sample_bound(torch.zeros(2, 3), "elbo")
    with pytest.raises(ConfigError, match="objective"):
        make_config("iwae", objective="elbo")


def test_burdas_schedule_exactly_and_compressed():
    stages = [train.burda_stage(e, 3280) for e in range(3280)]
    assert [stages.count(i) for i in range(8)] == [3 ** i for i in range(8)]  # stage i lasts 3^i epochs
    assert stages == sorted(stages)
    for epochs in (8, 9, 20, 100, 328, 800, 1000, 3279):  # every stage runs, in order, once there are 8 epochs
        short = [train.burda_stage(e, epochs) for e in range(epochs)]
        lengths = [short.count(i) for i in range(8)]
        assert short == sorted(short) and min(lengths) >= 1 and sum(lengths) == epochs, (epochs, lengths)
        # each stage ends where its cumulative share of 3,280 epochs ends (rounded), or later by the
        # epochs the i stages before it needed to get one each; the long stages keep their proportions
        ends = train.burda_boundaries(epochs)
        for i, end in enumerate(ends):
            assert abs(end - epochs * (3 ** (i + 1) - 1) / 2 / 3280) <= 1.5 + i, (epochs, ends)
    assert [sum(1 for e in range(800) if train.burda_stage(e, 800) == i) for i in range(8)] == \
        [1, 1, 1, 7, 20, 59, 178, 533]
    # fewer epochs than stages: the first stages are the ones left out
    assert [train.burda_stage(e, 3) for e in range(3)] == [6, 7, 7]


def test_the_burda_model_and_the_kingma_welling_model_share_one_class():
    burda = VAE(50, 200, depth=2, activation="tanh")
    assert [tuple(p.shape) for p in burda.parameters()] == [
        (1, 784, 200), (1, 1, 200), (1, 200, 200), (1, 1, 200), (1, 200, 50), (1, 1, 50), (1, 200, 50), (1, 1, 50),
        (1, 50, 200), (1, 1, 200), (1, 200, 200), (1, 1, 200), (1, 200, 784), (1, 1, 784)]
    assert isinstance(burda.enc[1], torch.nn.Tanh)
    # the original model keeps its parameter names (its cached runs and checkpoints load unchanged)
    assert list(VAE().state_dict()) == ["enc.0.weight", "enc.0.bias", "enc_mu.weight", "enc_mu.bias",
                                        "enc_logvar.weight", "enc_logvar.bias", "dec.0.weight", "dec.0.bias",
                                        "dec.2.weight", "dec.2.bias"]
    cfg = make_config("iwae")
    st = train.init_state(cfg, torch.device("cpu"))
    assert st.optimizers["vae"].defaults["eps"] == 1e-4 and cfg.batch_size == 20 and cfg.epochs == 3280


def test_active_units_count_the_latent_dimensions_whose_posterior_mean_varies():
    vae = VAE(z_dim=5, hidden=16)
    with torch.no_grad():  # units 0 and 3 ignore the image: their posterior mean is a constant
        vae.enc_mu.weight[0, :, [0, 3]] = 0.0
        vae.enc_mu.weight[0, :, [1, 2, 4]] *= 10
    x = torch.rand(500, 784)
    assert metrics.active_units(vae, x) == 3
    assert metrics.active_units(vae, x, threshold=1e9) == 0


def test_a_profile_trains_the_families_it_names():
    from mnistgen import edition

    burda = edition.profile_groups("burda", make_config("evaluation", "burda"))
    assert sorted(burda) == ["iwae objective=iwae k=1", "iwae objective=iwae k=5", "iwae objective=iwae k=50",
                             "iwae objective=vae k=5", "iwae objective=vae k=50"]
    assert make_config("iwae", "burda").epochs == 3280 and make_config("iwae", "burda").batch_size == 20
    quick = edition.profile_groups("quick", make_config("evaluation", "quick"))
    assert {g["model"] for g in quick.values()} == {"classifier", "gan", "acgan", "vae", "iwae"}
