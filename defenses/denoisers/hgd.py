"""The high-level-representation guided denoiser (HGD, Liao et al. 2018).

A small U-Net (their DUNET, scaled to 28x28 or 32x32 images: two down-sampling stages,
lateral connections) predicts the adversarial noise ``d(x)`` and returns
``clip(x - d(x), 0, 1)``. It is trained (:mod:`defenses.denoisers.training`) not to
reproduce pixels but so that the frozen classifier's logits on the denoised image match
its logits on the clean image (L1 distance: their "logits guided denoiser", LGD).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from defenses.denoisers.base import DENOISERS, LearnedDenoiser


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
    )  # fmt: skip


@DENOISERS.register("hgd")
class HGD(LearnedDenoiser):
    """Settings: :class:`LearnedDenoiser`'s (``width`` channels in the first block)."""

    title = "high-level representation guided denoiser (Liao et al. 2018)"

    def __init__(self, input_shape: tuple[int, int, int], **settings: Any) -> None:
        super().__init__(input_shape, **settings)
        c, w = input_shape[0], self.width
        self.enc1 = _block(c, w)
        self.enc2 = _block(w, 2 * w)
        self.mid = _block(2 * w, 2 * w)
        self.dec2 = _block(4 * w, w)
        self.dec1 = _block(2 * w, w)
        self.out = nn.Conv2d(w, c, 1)

    def predict_noise(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted adversarial noise ``d(x)``, same shape as ``x``."""
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(m, size=e2.shape[-2:], mode="nearest"), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="nearest"), e1], 1))
        return self.out(d1)

    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        return (x - self.predict_noise(x).to(x.dtype)).clamp(0.0, 1.0)
