"""The paper's GAN: two MLPs with LeakyReLU(0.2) (Goodfellow et al. 2014 architecture family).

Every model holds ``seeds`` independent copies of its weights (``seeded.py``): inputs of shape
(seeds, batch, ...) train them together; a single-seed model also takes (batch, ...).
"""

from __future__ import annotations

import torch
from torch import nn

from .seeded import SeedLinear


def mlp_trunk(n_in: int, hidden: int, seeds: int = 1) -> nn.Sequential:
    """n_in -> hidden -> hidden, LeakyReLU(0.2) after each layer: the shape of both of the paper's nets."""
    # in place: the product's output is not needed by its backward, so no second buffer is allocated
    return nn.Sequential(SeedLinear(n_in, hidden, seeds), nn.LeakyReLU(0.2, inplace=True),
                         SeedLinear(hidden, hidden, seeds), nn.LeakyReLU(0.2, inplace=True))


class Generator(nn.Module):
    """G: z (64) -> 256 -> 256 -> 784, tanh output in [-1, 1]."""

    def __init__(self, z_dim: int = 64, hidden: int = 256, n_out: int = 784, seeds: int = 1) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(mlp_trunk(z_dim, hidden, seeds), SeedLinear(hidden, n_out, seeds), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """D: 784 -> 256 -> 256 -> 1.

    ``forward`` returns the logit: the losses use BCE-with-logits, which is exact where
    log(sigmoid(.)) would round to log(0). ``prob`` is the paper's sigmoid output D(x).
    """

    def __init__(self, hidden: int = 256, n_in: int = 784, seeds: int = 1) -> None:
        super().__init__()
        self.trunk = mlp_trunk(n_in, hidden, seeds)
        self.head = SeedLinear(hidden, 1, seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).squeeze(-1)

    def prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(x))
