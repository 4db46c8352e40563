"""Small hand-made models and a hook counter shared by the explainer tests."""

from __future__ import annotations

import torch
from torch import nn

from lab.models import LabModel, ModelInfo
from lab.models.attention_cnn import SpatialAttention

HOOK_TABLES = (
    "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
    "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
)  # fmt: skip


def hook_count(model: nn.Module) -> int:
    """Hooks registered on any module of ``model`` (every table torch keeps)."""
    return sum(len(getattr(m, t, {}) or {}) for m in model.modules() for t in HOOK_TABLES)


def info(arch: str, channels: int = 1, side: int = 28, classes: int = 10) -> ModelInfo:
    return ModelInfo(arch=arch, dataset="test", input_shape=(channels, side, side),
                     class_names=tuple(str(i) for i in range(classes)),
                     mean=(0.5,) * channels, std=(0.5,) * channels)  # fmt: skip


class TopLeftNet(nn.Module):
    """Reads only the top-left 7x7 patch: mask, conv (positive weights, no bias), ReLU, sum, linear."""

    def __init__(self) -> None:
        super().__init__()
        mask = torch.zeros(1, 1, 28, 28)
        mask[..., :7, :7] = 1
        self.register_buffer("mask", mask)
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.conv.weight.abs_()
            self.fc.weight.abs_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x * self.mask)).sum((2, 3)))


class SmoothNet(nn.Module):
    """A tiny smooth classifier (conv, tanh, linear) for completeness checks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.act = nn.Tanh()
        self.fc = nn.Linear(4 * 14 * 14, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(x)).flatten(1))


def tiny(net: nn.Module, arch: str) -> LabModel:
    """``net`` as a LabModel without normalization (mean 0, std 1), 3 classes, 1x28x28."""
    i = info(arch, classes=3)
    i.mean, i.std = (0.0,), (1.0,)
    return LabModel(net, i).eval()


def bars(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A task whose answer lies in one known region: the bar in the top-left 7x7 patch
    (horizontal: class 0, vertical: 1, none: 2) on faint noise, with two distractor bars of
    random orientation elsewhere (rows 10 and below) that say nothing about the class."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.3
    y = torch.randint(0, 3, (n,), generator=g)

    def bar(img: torch.Tensor, r: int, c: int, kind: int) -> None:
        if kind == 0:
            img[0, r + 3, c : c + 7] = 1.0
        elif kind == 1:
            img[0, r : r + 7, c + 3] = 1.0

    for i in range(n):
        for _ in range(2):
            r = int(torch.randint(10, 21, (1,), generator=g))
            c = int(torch.randint(0, 21, (1,), generator=g))
            bar(x[i], r, c, int(torch.randint(0, 2, (1,), generator=g)))
        bar(x[i], 0, 0, int(y[i]))
    return x, y


class TinyAttentionNet(nn.Module):
    """conv 8@3x3, ReLU, the lab's spatial attention (attention_cnn's module), mean, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.att = SpatialAttention()
        self.fc = nn.Linear(8, 3)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, a = self.att(self.relu(self.conv(x)))
        return self.fc(h.mean((2, 3))), [a]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]
