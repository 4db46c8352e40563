"""``plug_tiny``: two 3x3 convs (8, 16 channels), each followed by a 2x2 max-pool, and a
linear head. Built as ``TinyNet(in_channels, num_classes, (h, w))`` on normalized images,
like every registered architecture."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class TinyNet(nn.Module):
    #: the layer Grad-CAM explains by default (the first conv, on purpose not the last one)
    default_layer: ClassVar[str] = "features.0"

    def __init__(self, in_channels: int, num_classes: int, hw: tuple[int, int]) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * (hw[0] // 4) * (hw[1] // 4), num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
