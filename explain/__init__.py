"""Explanations, one method per file, registered by name in :data:`EXPLAINERS`.

``EXPLAINERS.get("gradcam")(layer=None)(model, x, target=None) -> maps [B, 1, H, W]``:
images in [0, 1], NCHW; settings are keyword-only; ``target`` None explains the predicted
class. The base class (:mod:`explain.base`) checks inputs, handles the model's mode,
parameters and device, and removes every hook a method leaves. Methods are backed by
captum wherever captum has them; ``attention`` reads an attention model's own maps.
A method's facts are class attributes the registry hands out with the class: ``signed``
(:meth:`~explain.base.Explainer.signed_for` adds the settings), ``short_name``, ``aliases``,
``needs_attention``, ``randomized``, ``quick_settings``.
Adding a method is one new file that registers a class; the registry finds it
(every module of the package is imported on first use; plug-ins come through the entry point
group named in :mod:`lab.core.registry`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from explain.base import EXPLAINERS, Explainer, TargetLike

__all__ = ["EXPLAINERS", "Explainer", "explain"]


def explain(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *, method: str = "saliency",
            **settings: Any) -> torch.Tensor:  # fmt: skip
    """``EXPLAINERS.get(method)(**settings)(model, x, target)``: the one-call entry point."""
    return EXPLAINERS.get(method)(**settings)(model, x, target)
