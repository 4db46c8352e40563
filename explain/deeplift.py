"""DeepLIFT (Rescale rule): contributions of input differences from a baseline.

Shrikumar, Greenside & Kundaje (2017), "Learning Important Features Through Propagating
Activation Differences". Backed by ``captum.attr.DeepLift``; the lab's models use
non-in-place ``nn.ReLU`` modules, which DeepLift's hooks need.
"""

from __future__ import annotations

import torch
from captum.attr import DeepLift
from torch import nn

from explain.base import EXPLAINERS, Explainer
from lab.core.errors import LabError


@EXPLAINERS.register("deeplift")
class DeepLiftExplainer(Explainer):
    """DeepLIFT against a constant baseline image (``baseline`` in [0, 1]; 0 = black)."""

    paper = "Shrikumar et al., 2017, Learning Important Features Through Propagating Activation Differences"
    signed = True

    def __init__(self, *, baseline: float = 0.0, reduce: str = "sum") -> None:
        super().__init__(reduce=reduce)
        if not 0.0 <= baseline <= 1.0:
            raise LabError(f"baseline must be a pixel value in [0, 1], got {baseline}")
        self.baseline = float(baseline)

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        try:
            return DeepLift(model).attribute(x, baselines=torch.full_like(x, self.baseline), target=target)
        except RuntimeError as e:
            if "more than once" not in str(e):
                raise
            arch = getattr(getattr(model, "info", None), "arch", type(model).__name__)
            raise LabError(
                f"deeplift cannot explain model {arch!r}: it calls one module more than once in its forward pass; "
                "use integrated_gradients or another method"
            ) from None
