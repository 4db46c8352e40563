"""``plug_blur``: a box blur in front of the classifier (``passes`` times a 3x3 mean filter,
replicate padding): a parameter-free, differentiable input transform of another distribution."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from defenses.denoisers.base import DENOISERS, Denoiser
from lab.core.settings import between


@DENOISERS.register("plug_blur")
class BoxBlur(Denoiser):
    title = "box blur (plug-in demo)"

    def __init__(self, input_shape: tuple[int, int, int], *, passes: int = 1) -> None:
        super().__init__(input_shape)
        self.passes = int(between("passes", passes, 1, 8))

    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        c = x.shape[1]
        kernel = torch.full((c, 1, 3, 3), 1 / 9, dtype=x.dtype, device=x.device)
        for _ in range(self.passes):
            x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)
        return x
