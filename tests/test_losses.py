"""Loss functions against hand-computed values and their derivatives."""

import math

import pytest
import torch
import torch.nn.functional as F

from mnistgen import losses


def test_d_loss_at_indifference_is_2_log_2():
    z = torch.zeros(4)
    assert losses.d_loss(z, z).item() == pytest.approx(2 * math.log(2))


def test_d_loss_hand_computed():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5])
    s = torch.sigmoid
    expected = -(torch.log(s(real[0])) + torch.log(s(real[1]))) / 2 - torch.log(1 - s(fake[0]))
    assert losses.d_loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-6)


def test_generator_losses_hand_computed():
    l = torch.tensor([1.5, -2.0])
    d = torch.sigmoid(l)
    assert losses.g_loss(l).item() == pytest.approx((-torch.log(d)).mean().item(), rel=1e-6)
    assert losses.g_loss(l, saturating=True).item() == pytest.approx(torch.log(1 - d).mean().item(), rel=1e-6)


def test_gradients_wrt_logit_are_D_and_1_minus_D():
    """The saturating loss's slope is D(G(z)) (vanishes as D -> 0); the non-saturating one's is 1 - D."""
    l = torch.tensor([-6.0, 0.0, 3.0], requires_grad=True)
    d = torch.sigmoid(l.detach())
    (g_sat,) = torch.autograd.grad(losses.g_loss(l, saturating=True) * 3, l)
    (g_ns,) = torch.autograd.grad(losses.g_loss(l) * 3, l)
    assert torch.allclose(g_sat, -d, atol=1e-6)
    assert torch.allclose(g_ns, -(1 - d), atol=1e-6)


def test_losses_are_finite_where_sigmoid_saturates():
    l = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(losses.d_loss(l, l)) and torch.isfinite(losses.g_loss(l))
    assert torch.isfinite(losses.g_loss(l, saturating=True))
    assert losses.g_loss(torch.tensor([-200.0])).item() == pytest.approx(200.0)


def test_acgan_losses_on_a_hand_made_batch():
    rs, fs = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 2.0])
    rc = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    fc = torch.tensor([[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    yr, yf = torch.tensor([0, 1]), torch.tensor([2, 0])

    def ce(logits, y):  # -log softmax, by hand
        return (-(logits[range(len(y)), y] - logits.exp().sum(1).log())).mean()

    expected_d = losses.d_loss(rs, fs) + ce(rc, yr) + ce(fc, yf)
    assert losses.acgan_d_loss(rs, rc, fs, fc, yr, yf).item() == pytest.approx(expected_d.item(), rel=1e-6)
    expected_g = -torch.log(torch.sigmoid(fs)).mean() + ce(fc, yf)
    assert losses.acgan_g_loss(fs, fc, yf).item() == pytest.approx(expected_g.item(), rel=1e-6)


def test_gaussian_kl_closed_form():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # 0.5 * (mu^2 + var - 1 - log var) per dimension: 0.5 * 1 + 0.5 * (4 - 1 - log 4)
    assert losses.gaussian_kl(mu, logvar).item() == pytest.approx(0.5 + 0.5 * (3 - math.log(4)))
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    assert losses.gaussian_kl(mu, logvar).item() == pytest.approx(torch.distributions.kl_divergence(q, p).sum().item())


def test_elbo_terms_hand_computed():
    x = torch.tensor([[1.0, 0.0, 1.0]])
    logits = torch.tensor([[0.0, 0.0, 2.0]])
    rec, kl = losses.elbo_terms(logits, x, torch.zeros(1, 2), torch.zeros(1, 2))
    expected = math.log(0.5) + math.log(0.5) + math.log(1 / (1 + math.exp(-2)))
    assert rec.item() == pytest.approx(expected, rel=1e-6)
    assert kl.item() == 0.0


def test_log_normal_matches_torch_distributions():
    z, mu, logvar = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    ref = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    assert torch.allclose(losses.log_normal(z, mu, logvar), ref, atol=1e-5)
    assert torch.allclose(losses.log_normal(z), torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1), atol=1e-6)
