"""SmallCNN, the MNIST network of TRADES (Zhang et al., 2019, "Theoretically Principled
Trade-off between Robustness and Accuracy"): four 3x3 convs 32-32-64-64 with two
max-pools, then FC 200-200-classes (dropout 0.5 after the first FC)."""

from __future__ import annotations

import torch
from torch import nn

from lab.models.registry import MODELS, Net


@MODELS.register("smallcnn")
class SmallCNN(Net):
    default_layer = "features.8"  # the rectified output of the last conv (64@3x3), before the pool

    def __init__(self, in_channels: int, num_classes: int, hw: tuple[int, int]) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 32, 3), nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.Conv2d(64, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )  # fmt: skip
        h = ((hw[0] - 4) // 2 - 4) // 2
        w = ((hw[1] - 4) // 2 - 4) // 2
        if h < 1 or w < 1:
            raise ValueError(f"smallcnn needs inputs of at least 16x16, got {hw[0]}x{hw[1]}")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * h * w, 200), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(200, 200), nn.ReLU(),
            nn.Linear(200, num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
