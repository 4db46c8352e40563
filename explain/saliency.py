"""Saliency: the absolute input gradient of the target logit.

Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional Networks: Visualising
Image Classification Models and Saliency Maps". Backed by ``captum.attr.Saliency``.
"""

from __future__ import annotations

import torch
from captum.attr import Saliency
from torch import nn

from explain.base import EXPLAINERS, Explainer


@EXPLAINERS.register("saliency")
class SaliencyExplainer(Explainer):
    """``|d logit_target / d x|`` per pixel and channel ([B, C, H, W] before ``reduce``)."""

    paper = "Simonyan et al., 2014, Deep Inside Convolutional Networks"

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return Saliency(model).attribute(x, target=target, abs=True)
