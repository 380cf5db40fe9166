"""The evaluation yardstick: a LeNet-like CNN (LeCun et al. 1998), trained by the project."""

from __future__ import annotations

import torch
from torch import nn


class _Yardstick(nn.Module):
    """A classifier whose ``features`` (the 128-d penultimate layer) serve FID; subclasses set ``conv`` and ``head``."""

    conv: nn.Sequential
    head: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: images in [0, 1], shape (N, 784) or (N, 1, 28, 28)."""
        return self.conv(x.reshape(-1, 1, 28, 28).contiguous(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class LeNet(_Yardstick):
    """Two conv blocks and two dense layers; ``features`` is the 128-d penultimate layer used for FID."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        # Pool before ReLU: max(relu(x)) = relu(max(x)), so the function is LeNet's, with the ReLU
        # on a quarter of the values. With channels-last (NHWC) tensors, which oneDNN's CPU
        # convolutions and pooling prefer, a training step is ~1.6x faster (measured, batch 128).
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(16, 32, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, n_classes)
        self.to(memory_format=torch.channels_last)



class SmallVGG(_Yardstick):
    """The second yardstick, of another family than LeNet: stacks of 3x3 convolutions with batch
    norm (Simonyan & Zisserman 2015; Ioffe & Szegedy 2015), 16-16 and 32-32 channels, a 128-unit
    dense layer (``features``, used for FID) and ten outputs. ~5M multiply-adds per image."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.conv = nn.Sequential(
            *block(1, 16), *block(16, 16), nn.MaxPool2d(2),
            *block(16, 32), *block(32, 32), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
        )
        self.head = nn.Linear(128, n_classes)
        self.to(memory_format=torch.channels_last)

