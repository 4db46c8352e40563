"""The small MNIST network of Wong, Rice & Kolter (2020), "Fast is better than free":
conv 16@4x4 stride 2, conv 32@4x4 stride 2, FC 100, FC classes."""

from __future__ import annotations

import torch
from torch import nn

from lab.models.registry import MODELS, Net


@MODELS.register("fastnet")
class FastNet(Net):
    default_layer = "features.3"  # the rectified output of conv 32@4x4 stride 2

    def __init__(self, in_channels: int, num_classes: int, hw: tuple[int, int]) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        h, w = hw[0] // 4, hw[1] // 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * h * w, 100), nn.ReLU(), nn.Linear(100, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
