"""LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling: conv 6@5x5 (padded for 28x28),
pool, conv 16@5x5, pool, FC 120-84-classes."""

from __future__ import annotations

import torch
from torch import nn

from lab.models.registry import MODELS, Net


@MODELS.register("lenet5")
class LeNet5(Net):
    default_layer = "features.4"  # the rectified output of conv 16@5x5, before the pool

    def __init__(self, in_channels: int, num_classes: int, hw: tuple[int, int]) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        h, w = (hw[0] // 2 - 4) // 2, (hw[1] // 2 - 4) // 2
        if h < 1 or w < 1:
            raise ValueError(f"lenet5 needs inputs of at least 12x12, got {hw[0]}x{hw[1]}")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * h * w, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
