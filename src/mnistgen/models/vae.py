"""VAE (Kingma & Welling 2013): Gaussian encoder, Bernoulli decoder, both one-hidden-layer MLPs."""

from __future__ import annotations

import torch
from torch import nn

from .seeded import SeedLinear


# ReLU in place: its input (a product's output) is needed by nothing else, so no second buffer.
# (tanh's backward reads its output, which an in-place tanh would keep too; left as it is.)
ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "tanh": nn.Tanh}


def _stack(n_in: int, hidden: int, depth: int, activation: str, seeds: int) -> list[nn.Module]:
    """``depth`` deterministic layers n_in -> hidden -> ... -> hidden, each followed by the activation."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [SeedLinear(n_in if i == 0 else hidden, hidden, seeds), ACTIVATIONS[activation]()]
    return layers


class VAE(nn.Module):
    """Kingma & Welling's model (one ReLU layer of 400 per side, the default) or, with
    ``depth=2, hidden=200, z_dim=50, activation="tanh"``, the one-stochastic-layer model of
    Burda et al. (2016)."""

    def __init__(self, z_dim: int = 20, hidden: int = 400, n_in: int = 784, seeds: int = 1,
                 depth: int = 1, activation: str = "relu") -> None:
        super().__init__()
        self.z_dim = z_dim
        self.enc = nn.Sequential(*_stack(n_in, hidden, depth, activation, seeds))
        self.enc_mu = SeedLinear(hidden, z_dim, seeds)
        self.enc_logvar = SeedLinear(hidden, z_dim, seeds)
        self.dec = nn.Sequential(*_stack(z_dim, hidden, depth, activation, seeds), SeedLinear(hidden, n_in, seeds))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) = N(mu, diag(exp(logvar)))."""
        h = self.enc(x)
        return self.enc_mu(h), self.enc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of the Bernoulli p(x|z) over the 784 pixels."""
        return self.dec(z)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps: differentiable in (mu, logvar) for a fixed eps ~ N(0, I)."""
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, eps)), mu, logvar
