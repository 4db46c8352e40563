"""A CNN with spatial attention whose maps can be read out with the logits.

Each stage is conv-conv, then a spatial attention module: a score per location from a 7x7
conv over the channel-wise mean and max of the features (CBAM's spatial branch, Woo et
al. 2018), normalized with a softmax over the locations as in "Learn to Pay Attention"
(Jetley, Lord, Lee & Torr, 2018), and the features multiplied by ``h * w`` times that
distribution (a uniform map leaves them unchanged). The locations compete for one unit of
attention, so where the model looks is where the features it uses come from: the maps are
a built-in explanation. (An earlier version used CBAM's independent sigmoid gates; trained
on MNIST they stayed near-uniform and put no more mass on the evidence than its area.)
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.registry import MODELS, Net


class SpatialAttention(nn.Module):
    """``x [B,C,h,w] -> (x * h*w * p, p / max p)``: ``p = softmax_locations(conv7x7([mean_c x, max_c x]))``.

    The second output is the attention distribution scaled so its peak is 1 ([B, 1, h, w]
    in [0, 1]), the map the ``attention`` explainer shows.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        p = self.conv(pooled).float().flatten(1).softmax(1).view(b, 1, h, w)
        out = x * (p * (h * w)).to(x.dtype)
        return out, p / p.amax(dim=(2, 3), keepdim=True)


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
    )  # fmt: skip


@MODELS.register("attention_cnn")
class AttentionCNN(Net):
    """Two conv stages (32, 64 channels), each followed by spatial attention and a 2x2 pool."""

    default_layer = "stage2"  # the last conv-bn-relu stage (its output is rectified)

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
