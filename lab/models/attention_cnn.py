"""A CNN with spatial attention gates whose maps can be read out with the logits.

Each stage is conv-conv, then a spatial attention module in the style of CBAM's spatial
branch (Woo et al., 2018): a 7x7 conv over the channel-wise mean and max of the features,
a sigmoid, and the features multiplied by that [B, 1, h, w] map. The maps are what the
model actually uses to weigh locations, so they are a built-in explanation.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.registry import MODELS


class SpatialAttention(nn.Module):
    """``x [B,C,h,w] -> (x * a, a)`` with ``a = sigmoid(conv7x7([mean_c x, max_c x])) [B,1,h,w]``."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        a = self.gate(self.conv(pooled))
        return x * a, a


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
    )  # fmt: skip


class AttentionCNN(nn.Module):
    """Two conv stages (32, 64 channels), each followed by spatial attention and a 2x2 pool."""

    def __init__(self, in_channels: int, num_classes: int, hw: tuple[int, int]) -> None:
        super().__init__()
        self.stage1 = _stage(in_channels, 32)
        self.att1 = SpatialAttention()
        self.stage2 = _stage(32, 64)
        self.att2 = SpatialAttention()
        self.pool1 = nn.MaxPool2d(2)  # two modules, not one reused: DeepLift hooks need distinct modules
        self.pool2 = nn.MaxPool2d(2)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
            nn.Linear(128, num_classes),
        )  # fmt: skip

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [B, classes] and the attention maps of both stages ([B,1,H,W], [B,1,H/2,W/2])."""
        h, a1 = self.att1(self.stage1(x))
        h, a2 = self.att2(self.stage2(self.pool1(h)))
        return self.head(self.pool2(h)), [a1, a2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]


@MODELS.register("attention_cnn")
def attention_cnn(in_channels: int, num_classes: int, hw: tuple[int, int]) -> nn.Module:
    return AttentionCNN(in_channels, num_classes, hw)
