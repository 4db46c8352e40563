"""Guided Grad-CAM: guided backpropagation multiplied by the upsampled Grad-CAM map.

Selvaraju et al. (2017), "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization". Backed by ``captum.attr.GuidedGradCam`` (bilinear
upsampling); the layer setting works as in :mod:`explain.gradcam`.
"""

from __future__ import annotations

import torch
from captum.attr import GuidedGradCam
from torch import nn

from explain.base import EXPLAINERS, Explainer
from explain.layers import resolve_layer


@EXPLAINERS.register("guided_gradcam")
class GuidedGradCamExplainer(Explainer):
    """High-resolution, class-discriminative maps ([B, C, H, W] before ``reduce``)."""

    paper = "Selvaraju et al., 2017, Grad-CAM"
    signed = True
    short_name = "guided gradcam"

    def __init__(self, *, layer: str | None = None, reduce: str = "sum") -> None:
        super().__init__(reduce=reduce)
        self.layer = layer

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        explainer = GuidedGradCam(model, resolve_layer(model, self.layer))
        return explainer.attribute(x, target=target, interpolate_mode="bilinear")
