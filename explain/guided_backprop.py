"""Guided Backpropagation: input gradients with negative signals stopped at every ReLU.

Springenberg, Dosovitskiy, Brox & Riedmiller (2015), "Striving for Simplicity: The All
Convolutional Net". Backed by ``captum.attr.GuidedBackprop`` (hooks on ``nn.ReLU`` modules).
"""

from __future__ import annotations

import torch
from captum.attr import GuidedBackprop
from torch import nn

from explain.base import EXPLAINERS, Explainer


@EXPLAINERS.register("guided_backprop")
class GuidedBackpropExplainer(Explainer):
    """Guided-backprop gradients ([B, C, H, W] before ``reduce``)."""

    paper = "Springenberg et al., 2015, Striving for Simplicity: The All Convolutional Net"
    signed = True
    short_name = "guided backprop"
    aliases = ("gbp",)

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return GuidedBackprop(model).attribute(x, target=target)
