"""Gaussian noise augmentation (Cohen, Rosenfeld and Kolter 2019): the base classifier of randomized
smoothing is trained on ``x + N(0, sigma^2 I)`` (in the [0, 1] pixel space, not clipped, as the
smoothed classifier will query it), so that its prediction under that noise is stable and
:func:`lab.evaluation.smoothing.certify_smoothed` can certify large L2 radii. ``sigma`` should be
the noise the model will be smoothed with. The returned logits (training accuracy) are those of the
noisy batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from defenses.base import DEFENSES, Defense
from lab.core.settings import positive


@DEFENSES.register("gaussian")
class GaussianNoise(Defense):
    """Settings: ``sigma`` (the noise's standard deviation in [0, 1] pixel units, > 0)."""

    def __init__(self, dtype: torch.dtype | None = None, label_smoothing: float = 0.0, *,
                 sigma: float = 0.25) -> None:  # fmt: skip
        super().__init__(dtype, label_smoothing)
        self.sigma = float(positive("sigma", sigma))

    def settings(self) -> dict[str, Any]:
        return {"sigma": self.sigma}

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.forward(model, x + torch.randn_like(x) * self.sigma)
        return self.ce(logits, y), logits
