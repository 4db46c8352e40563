"""Feature squeezing (Xu, Evans and Qi 2018, "Feature Squeezing: Detecting Adversarial Examples in
Deep Neural Networks"): the score is the largest L1 distance between the model's softmax on the
input and on each squeezed version of it: ``bits``-bit depth reduction and a ``kernel`` x
``kernel`` median filter (MNIST's configuration in the paper: 1 bit and 2x2). Bit-depth reduction
rounds, so its gradient is zero almost everywhere; ``bpda=True`` passes the gradient straight
through it (Athalye et al. 2018), which is what the adaptive attacks follow. The squeezed images
are the detector's :meth:`views`, so ``lab detect`` also runs the attack that breaks squeezing
(He et al. 2017): the input and every squeezed version misclassified as one class at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from defenses.denoisers.base import non_differentiable
from defenses.detectors.base import DETECTORS, Detector
from lab.core.settings import between


@DETECTORS.register("squeeze")
class FeatureSqueeze(Detector):
    """Settings: ``bits`` (1-8: the depth kept; 8 leaves it out) and ``kernel`` (the median window; 1
    leaves it out)."""

    title = "feature squeezing (Xu et al. 2018)"
    differentiable = False

    def __init__(self, *, bits: int = 1, kernel: int = 2) -> None:
        super().__init__()
        self.bits = int(between("bits", bits, 1, 8))
        self.kernel = int(between("kernel", kernel, 1, 9))

    def views(self, x: torch.Tensor, *, bpda: bool = False) -> list[torch.Tensor]:
        """The squeezed versions of ``x`` the score compares the input's prediction with."""
        out = []
        if self.bits < 8:
            levels = 2**self.bits - 1
            with torch.no_grad():
                q = torch.round(x * levels) / levels
            out.append(non_differentiable(x, q, "identity" if bpda else "zero"))
        if self.kernel > 1:
            k = self.kernel
            lo, hi = (k - 1) // 2, k // 2
            b, c, h, w = x.shape
            windows = F.pad(x, (lo, hi, lo, hi), mode="reflect").unfold(2, k, 1).unfold(3, k, 1)
            out.append(windows.reshape(b, c, h, w, k * k).median(dim=-1).values)
        return out

    def score(self, model: nn.Module, x: torch.Tensor, *, bpda: bool = False) -> torch.Tensor:
        p = F.softmax(model(x).float(), 1)
        dists = [(F.softmax(model(s).float(), 1) - p).abs().sum(1) for s in self.views(x, bpda=bpda)]
        if not dists:
            return torch.zeros(x.shape[0], device=x.device)
        return torch.stack(dists, 1).max(1).values
