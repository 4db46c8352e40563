"""Bit-depth reduction (Xu, Evans & Qi 2018, "Feature Squeezing"): keep ``bits`` bits per
channel, ``round(x * (2^b - 1)) / (2^b - 1)``. On MNIST Xu et al. squeeze to 1 bit.

Rounding has a zero derivative almost everywhere, so attacking through it as-is sees no
gradient (the white-box row is gradient-masked); BPDA uses the identity instead.
"""

from __future__ import annotations

import torch

from defenses.denoisers.base import DENOISERS, Denoiser, non_differentiable
from lab.core.settings import between


@DENOISERS.register("bit_depth")
class BitDepth(Denoiser):
    title = "bit-depth reduction (Xu et al. 2018)"
    differentiable = False

    def __init__(self, input_shape: tuple[int, int, int], *, bits: int = 1) -> None:
        super().__init__(input_shape)
        self.bits = int(between("bits", bits, 1, 8))  # bits per channel kept

    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        levels = 2**self.bits - 1
        with torch.no_grad():
            out = torch.round(x.float() * levels) / levels
        return non_differentiable(x, out, backward)
