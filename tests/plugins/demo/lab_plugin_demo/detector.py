"""``plug_range``: scores an image by how far its pixels stray from {0, 1} (MNIST digits are nearly
binary; small perturbations fill the gaps): a differentiable detector of another distribution."""

from __future__ import annotations

import torch
from torch import nn

from defenses.detectors.base import DETECTORS, Detector
from lab.core.settings import positive


@DETECTORS.register("plug_range")
class GreyPixels(Detector):
    title = "grey-pixel share (plug-in demo)"

    def __init__(self, *, power: float = 1.0) -> None:
        super().__init__()
        self.power = float(positive("power", power))

    def score(self, model: nn.Module, x: torch.Tensor, *, bpda: bool = False) -> torch.Tensor:
        return (torch.minimum(x, 1 - x) ** self.power).flatten(1).mean(1)
