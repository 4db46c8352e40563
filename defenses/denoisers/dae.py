"""A convolutional denoising autoencoder in the style of MagNet (Meng & Chen 2017): the
"reformer" maps inputs back towards the data manifold, and the reconstruction error is
MagNet's detector score.

MagNet's MNIST autoencoder has 3 channels (conv-sigmoid, avg-pool, conv-sigmoid, conv,
upsample, conv, conv) trained on Gaussian-noised images. The lab's keeps that shape with
``width`` channels (ReLU inside, a sigmoid output so the result is an image in [0, 1]) and
is trained (``lab train``, :mod:`defenses.denoisers.training`) to map both noisy and
adversarial images of the frozen classifier to their clean originals, as the issue asks;
with ``adv_frac = 0`` it is MagNet's noise-only training. The loss is the binary
cross-entropy of the pre-sigmoid output against the clean pixels, not MagNet's mean
squared error: on MNIST's mostly-black images MSE through the sigmoid drove every output
to 0 within 30 steps and the gradients vanished (measured); BCE's gradient, output minus
target, does not vanish.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from defenses.denoisers.base import DENOISERS, LearnedDenoiser


@DENOISERS.register("dae")
class DAE(LearnedDenoiser):
    """Settings: :class:`LearnedDenoiser`'s (``width`` channels inside)."""

    title = "denoising autoencoder (MagNet, Meng & Chen 2017)"

    def __init__(self, input_shape: tuple[int, int, int], **settings: Any) -> None:
        super().__init__(input_shape, **settings)
        c, w = input_shape[0], self.width
        self.encoder = nn.Sequential(
            nn.Conv2d(c, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, c, 3, padding=1),
        )  # fmt: skip

    #: the pre-sigmoid output of the last training-mode call (the training loss reads it)
    last_logits: torch.Tensor | None = None

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction before the output sigmoid [B, C, H, W] (fp32)."""
        z = self.decoder(self.encoder(x))
        if z.shape[-2:] != x.shape[-2:]:  # odd sizes: the pool floors, the upsample doubles
            z = nn.functional.interpolate(z, size=x.shape[-2:], mode="nearest")
        return z.float()

    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        z = self.logits(x)
        if self.training:
            self.last_logits = z
        return torch.sigmoid(z).to(x.dtype)

    def detector_score(self, x: torch.Tensor) -> torch.Tensor:
        """MagNet's detector: the mean absolute reconstruction error per image [B]."""
        return (self.transform(x) - x).abs().flatten(1).mean(1)
