"""Small hand-made models and a hook counter shared by the explainer tests."""

from __future__ import annotations

import torch
from torch import nn

from lab.models import LabModel, ModelInfo

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
