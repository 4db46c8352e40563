"""Median filter (Xu, Evans & Qi 2018, "Feature Squeezing"): each pixel becomes the median
of its ``kernel x kernel`` window (reflect padding; an even window is anchored top-left,
as in Xu et al.'s 2x2 MNIST filter; the lower median of an even count, like
``torch.median``).

Differentiable as autograd sees it: the gradient flows to the pixel each median selects,
so the white-box row attacks it directly and no BPDA is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from defenses.denoisers.base import DENOISERS, Denoiser
from lab.core.settings import between


@DENOISERS.register("median")
class Median(Denoiser):
    title = "median filter (Xu et al. 2018)"

    def __init__(self, input_shape: tuple[int, int, int], *, kernel: int = 2) -> None:
        super().__init__(input_shape)
        self.kernel = int(between("kernel", kernel, 1, 9))  # window side

    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        k = self.kernel
        if k == 1:
            return x
        b, c, h, w = x.shape
        lo, hi = (k - 1) // 2, k // 2
        padded = F.pad(x, (lo, hi, lo, hi), mode="reflect")
        windows = padded.unfold(2, k, 1).unfold(3, k, 1)  # [B, C, H, W, k, k]
        return windows.reshape(b, c, h, w, k * k).median(dim=-1).values
