"""Network shapes, parameter counts, the AC-GAN's shared trunk, the reparameterisation gradient."""

import pytest
import torch

from mnistgen.models import VAE, ACDiscriminator, ConditionalGenerator, Discriminator, Generator, LeNet


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_paper_gan_shapes_and_sizes():
    G, D = Generator(), Discriminator()
    z = torch.randn(5, 64)
    x = G(z)
    assert x.shape == (5, 784) and x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (5,)
    p = D.prob(x)
    assert torch.all((p > 0) & (p < 1)) and torch.allclose(p, torch.sigmoid(D(x)))
    # 64*256+256 + 256*256+256 + 256*784+784 and 784*256+256 + 256*256+256 + 256+1
    assert (n_params(G), n_params(D)) == (283_920, 267_009)


def test_acgan_trunk_is_shared_by_both_heads():
    D = ACDiscriminator()
    src, cls = D(torch.randn(4, 784))
    assert src.shape == (4,) and cls.shape == (4, 10)
    trunk = list(D.trunk.parameters())
    for head_output in (src.sum(), cls.sum()):
        grads = torch.autograd.grad(head_output, trunk, retain_graph=True)
        assert all(g.abs().sum() > 0 for g in grads)  # each head's gradient reaches the one trunk
    # one set of trunk parameters: the only other parameters are the two heads'
    head = list(D.source.parameters()) + list(D.classes.parameters())
    assert n_params(D) == sum(p.numel() for p in trunk + head)


def test_conditioning_changes_the_generated_image():
    G = ConditionalGenerator()
    z = torch.randn(3, 64)
    a, b = G(z, torch.tensor([0, 0, 0])), G(z, torch.tensor([7, 7, 7]))
    assert a.shape == (3, 784)
    assert (a - b).abs().mean() > 1e-3
    assert torch.allclose(G(z, torch.tensor([0, 0, 0])), a)


def test_vae_shapes_and_reparameterisation_gradient():
    vae = VAE(z_dim=2)
    x = torch.rand(6, 784)
    eps = torch.randn(6, 2)
    logits, mu, logvar = vae(x, eps)
    assert logits.shape == (6, 784) and mu.shape == (6, 2) and logvar.shape == (6, 2)
    mu = torch.randn(3, 2, requires_grad=True)
    logvar = torch.randn(3, 2, requires_grad=True)
    z = VAE.reparameterize(mu, logvar, eps[:3])
    gm, gl = torch.autograd.grad(z.sum(), [mu, logvar])
    assert torch.allclose(gm, torch.ones_like(gm))  # dz/dmu = 1
    assert torch.allclose(gl, 0.5 * torch.exp(0.5 * logvar.detach()) * eps[:3])  # dz/dlogvar


def test_classifier_features_and_logits():
    net = LeNet()
    x = torch.rand(4, 784)
    assert net.features(x).shape == (4, 128) and net(x).shape == (4, 10)
    assert torch.allclose(net(x), net(x.reshape(4, 1, 28, 28)))


def test_a_seed_batched_model_is_its_single_seed_models_side_by_side(float64):
    from mnistgen.models import n_seeds, select_seed, stack_seeds

    singles = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        singles.append(ConditionalGenerator())
    G = stack_seeds(singles)
    assert n_seeds(G) == 3 and n_params(G) == 3 * n_params(singles[0])
    z, c = torch.randn(3, 5, 64), torch.randint(10, (3, 5))
    out = G(z, c)
    for s, one in enumerate(singles):
        # float64: baddbmm and addmm add 256 products in other orders, <= 256 u ~ 3e-14 of the terms
        torch.testing.assert_close(out[s], one(z[s], c[s]), rtol=1e-12, atol=1e-12)
        back = select_seed(G, s)
        assert all(torch.equal(a, b) for a, b in zip(back.parameters(), one.parameters()))
    with pytest.raises(ValueError, match="needs inputs with 3 dimensions, the first of size 3"):
        G.net(torch.randn(5, 64))  # one seed's batch given to a three-seed model


def test_a_single_seed_model_takes_any_leading_shape():
    vae = VAE(z_dim=3, hidden=16)
    z = torch.randn(4, 7, 3)  # k samples x batch x d, as the likelihood estimator calls it
    torch.testing.assert_close(vae.decode(z)[2], vae.decode(z[2]))
