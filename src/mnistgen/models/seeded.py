"""Layers that hold S independent copies of their weights, one per training seed.

A model built from these layers trains S seeds at once: every weight has a leading seed
dimension, and a forward pass over inputs of shape (S, B, ...) is one batched matrix product
per layer (``torch.baddbmm``) instead of S small ones. The seeds never mix: slice s of every
output depends only on slice s of the weights and inputs, and the losses are summed over
seeds, so each slice receives exactly its own gradient. Adam is elementwise, so one Adam over
the stacked weights is S independent Adams.

Measured on 2 CPU cores (GAN step, batch 128): per seed-step 7.2 ms at S = 1, 3 or 8 on one
thread (the unbatched nn.Linear loop: 7.6 ms) and 6.0 / 4.8 / 4.0 ms at S = 1 / 3 / 8 on two
threads (unbatched: 5.2 ms). ``torch.func.vmap`` over ``functional_call`` of nn.Linear
models was slower (8.8 ms per seed-step at S = 3, one thread), so the layers are explicit.

A model with S = 1 is an ordinary single-seed model on inputs of any shape (B, ...) or
(k, B, ...), which is how evaluation, plots and the likelihood estimator call one run's model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn


class SeedLinear(nn.Module):
    """``seeds`` independent affine maps: x (S, B, n_in) -> (S, B, n_out).

    With one seed it is an ordinary linear layer on inputs of any shape (..., n_in).
    """

    def __init__(self, n_in: int, n_out: int, seeds: int = 1) -> None:
        super().__init__()
        # nn.Linear's default initialisation: kaiming_uniform(a=sqrt(5)) is U(-1/sqrt(n_in), 1/sqrt(n_in)),
        # and the same bound for the bias.
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(seeds, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(seeds, 1, n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.shape[0] == 1:
            if x.dim() == 2:
                return torch.addmm(self.bias[0], x, self.weight[0])
            return torch.matmul(x, self.weight[0]) + self.bias[0]
        _require_seed_batch(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)


class SeedEmbedding(nn.Module):
    """``seeds`` independent lookup tables: labels (S, B) -> (S, B, dim); one seed: labels (...) -> (..., dim)."""

    def __init__(self, n: int, dim: int, seeds: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(seeds, n, dim))  # N(0, 1), as nn.Embedding

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        # A one-hot matrix product, not indexing: indexing's backward accumulates repeated labels
        # with atomic adds whose order varies between runs on a multi-threaded CPU, which broke
        # bitwise resume (measured); with n = 10 rows the product costs nothing. A comparison rather
        # than F.one_hot, which may check the labels' range on the host: a synchronisation that a
        # CUDA graph cannot capture.
        classes = torch.arange(self.weight.shape[1], device=labels.device)
        one_hot = (labels.unsqueeze(-1) == classes).to(self.weight.dtype)
        if self.weight.shape[0] == 1:
            return one_hot @ self.weight[0]
        _require_seed_batch(labels, self.weight, dims=2)
        return torch.bmm(one_hot, self.weight)


def _require_seed_batch(x: torch.Tensor, weight: torch.Tensor, dims: int = 3) -> None:
    if x.dim() != dims or x.shape[0] != weight.shape[0]:
        raise ValueError(f"a model holding {weight.shape[0]} seeds needs inputs with {dims} dimensions, the first "
                         f"of size {weight.shape[0]} (one slice per seed); got {tuple(x.shape)}. "
                         "Select one seed first (models.select_seed)")


def is_seed_batched(model: nn.Module) -> bool:
    return any(isinstance(m, (SeedLinear, SeedEmbedding)) for m in model.modules())


def n_seeds(model: nn.Module) -> int:
    """How many seeds ``model`` holds (1 for an ordinary module)."""
    if not is_seed_batched(model):
        return 1
    return next(p for p in model.parameters()).shape[0]


@torch.no_grad()
def stack_seeds(models: Sequence[nn.Module]) -> nn.Module:
    """One model holding the seeds of ``models`` (each a single-seed model of one architecture), in order."""
    if len(models) == 1:
        return models[0]
    out = copy.deepcopy(models[0])
    for name, p in out.named_parameters():
        p.data = torch.cat([m.get_parameter(name).detach() for m in models])
    return out


@torch.no_grad()
def select_seed(model: nn.Module, i: int) -> nn.Module:
    """A single-seed copy of slice ``i`` of a seed-batched model (the model itself if it holds one seed)."""
    if n_seeds(model) == 1:
        return model
    out = copy.deepcopy(model)
    for name, p in out.named_parameters():
        p.data = model.get_parameter(name).detach()[i:i + 1].clone()
    return out
