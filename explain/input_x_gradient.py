"""Input x Gradient: the input times the input gradient of the target logit.

Shrikumar, Greenside, Shcherbina & Kundaje (2016), "Not Just a Black Box: Learning
Important Features Through Propagating Activation Differences". Backed by
``captum.attr.InputXGradient``.
"""

from __future__ import annotations

import torch
from captum.attr import InputXGradient
from torch import nn

from explain.base import EXPLAINERS, Explainer


@EXPLAINERS.register("input_x_gradient")
class InputXGradientExplainer(Explainer):
    """``x * d logit_target / d x`` (signed; [B, C, H, W] before ``reduce``)."""

    paper = "Shrikumar et al., 2016, Not Just a Black Box"
    signed = True
    short_name = "input x gradient"
    aliases = ("ixg",)

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return InputXGradient(model).attribute(x, target=target)
