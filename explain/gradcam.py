"""Grad-CAM: a layer's activations weighted by their spatially averaged gradients, ReLU'd.

Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), "Grad-CAM: Visual Explanations
from Deep Networks via Gradient-based Localization". Backed by ``captum.attr.LayerGradCam``
and upsampled (bilinear) to the input size with ``LayerAttribution.interpolate``. The layer
defaults to the architecture's last conv layer (:mod:`explain.layers`); ``layer=`` names
another by module path.
"""

from __future__ import annotations

import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from explain.base import EXPLAINERS, Explainer
from explain.layers import resolve_layer
from lab.core.errors import LabError


@EXPLAINERS.register("gradcam")
class GradCamExplainer(Explainer):
    """Non-negative class-activation maps [B, 1, H, W] from ``layer`` (None: the default)."""

    paper = "Selvaraju et al., 2017, Grad-CAM"

    def __init__(self, *, layer: str | None = None, reduce: str = "sum") -> None:
        super().__init__(reduce=reduce)
        self.layer = layer

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cam = LayerGradCam(model, resolve_layer(model, self.layer)).attribute(x, target=target, relu_attributions=True)
        if cam.ndim != 4:
            raise LabError(
                f"layer {self.layer!r} has no spatial output (got shape {tuple(cam.shape)}); name a conv layer"
            )
        up = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
        return up.clamp_min(0.0)
