"""AC-GAN (Odena et al. 2017) on the paper's MLPs: a class-conditioned G and a two-headed D."""

from __future__ import annotations

import torch
from torch import nn

from .gan import mlp_trunk
from .seeded import SeedEmbedding, SeedLinear


class ConditionalGenerator(nn.Module):
    """G(z, c): the paper's generator (64 -> 256 -> 256 -> 784) applied to z * embed(c).

    The class enters multiplicatively through a learned 64-d embedding, so every input unit
    carries both noise and class and G cannot ignore z. Concatenating [z, embed(c)] instead was
    measured here to collapse: with the paper's settings G soon produced one image per class
    that D's class head could read but the independent classifier could not (see the AC-GAN
    chapter). A learned embedding also gives a continuous path between two digits.
    """

    def __init__(self, z_dim: int = 64, hidden: int = 256, n_classes: int = 10, n_out: int = 784,
                 seeds: int = 1) -> None:
        super().__init__()
        self.z_dim, self.n_classes = z_dim, n_classes
        self.embed = SeedEmbedding(n_classes, z_dim, seeds)
        self.net = nn.Sequential(mlp_trunk(z_dim, hidden, seeds), SeedLinear(hidden, n_out, seeds), nn.Tanh())

    def forward_embedded(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.net(z * e)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(z, self.embed(labels))


class ACDiscriminator(nn.Module):
    """D(x) -> (real/fake logit, class logits): one shared trunk, two linear heads.

    The class head outputs logits; cross-entropy applies the (log-)softmax once.
    """

    def __init__(self, hidden: int = 256, n_classes: int = 10, n_in: int = 784, seeds: int = 1) -> None:
        super().__init__()
        self.trunk = mlp_trunk(n_in, hidden, seeds)
        self.source = SeedLinear(hidden, 1, seeds)
        self.classes = SeedLinear(hidden, n_classes, seeds)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.source(h).squeeze(-1), self.classes(h)
