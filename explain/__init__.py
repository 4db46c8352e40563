"""Explanations, one method per file, registered by name in :data:`EXPLAINERS`.

``EXPLAINERS.get("gradcam")(layer=None)(model, x, target=None) -> maps [B, 1, H, W]``:
images in [0, 1], NCHW; settings are keyword-only; ``target`` None explains the predicted
class. The base class (:mod:`explain.base`) checks inputs, handles the model's mode,
parameters and device, and removes every hook a method leaves. Methods are backed by
captum wherever captum has them; ``attention`` reads an attention model's own maps.
Adding a method is one new file that registers a class, plus its import below.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from explain import (  # each module registers its explainers
    attention,  # noqa: F401
    deeplift,  # noqa: F401
    gradcam,  # noqa: F401
    gradient_shap,  # noqa: F401
    guided_backprop,  # noqa: F401
    guided_gradcam,  # noqa: F401
    input_x_gradient,  # noqa: F401
    integrated_gradients,  # noqa: F401
    occlusion,  # noqa: F401
    saliency,  # noqa: F401
    smoothgrad,  # noqa: F401
    vargrad,  # noqa: F401
)
from explain.base import EXPLAINERS, Explainer, TargetLike

__all__ = ["EXPLAINERS", "Explainer", "explain"]


def explain(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *, method: str = "saliency",
            **settings: Any) -> torch.Tensor:  # fmt: skip
    """``EXPLAINERS.get(method)(**settings)(model, x, target)``: the one-call entry point."""
    return EXPLAINERS.get(method)(**settings)(model, x, target)
