"""What the explanation metrics share: turning a method name into an explanation function,
and evaluating a model's class probabilities in batches without gradients."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from explain.base import EXPLAINERS, Explainer, TargetLike, resolve_target
from lab.core.errors import LabError
from lab.models import predict

#: ``fn(model, x, target) -> maps [B, 1, H, W]``: an :class:`Explainer` instance or any callable like it
ExplainFn = Callable[[nn.Module, torch.Tensor, TargetLike], torch.Tensor]
MethodLike = str | Explainer | ExplainFn


def as_explainer(method: MethodLike, settings: Mapping[str, Any] | None = None) -> ExplainFn:
    """``EXPLAINERS.get(method)(**settings)`` for a name; an explainer or callable is used as is."""
    if isinstance(method, str):
        return EXPLAINERS.get(method)(**dict(settings or {}))
    if settings:
        raise LabError("settings apply to a method given by name; configure the explainer object instead")
    if not callable(method):
        raise LabError(f"method must be an explainer name or a callable, got {type(method).__name__}")
    return method


def method_name(method: MethodLike) -> str:
    if isinstance(method, str):
        return method
    return str(getattr(method, "name", "") or getattr(method, "__name__", "") or type(method).__name__)


def probabilities(model: nn.Module, x: torch.Tensor, target: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Softmax probability of class ``target[i]`` for image ``x[i]``: float32 [N] on the CPU (eval mode, fp32)."""
    p = predict.probabilities(model, x, batch_size)
    return p.gather(1, target.to(p.device)[:, None])[:, 0].cpu()


def predictions(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes [B] (int64, CPU), model in eval mode (restored afterwards)."""
    return predict.predict(model, x, batch_size).cpu()


def targets(model: nn.Module, x: torch.Tensor, target: TargetLike, batch_size: int = 256) -> torch.Tensor:
    """Class indices [B] (int64, CPU): the model's prediction when ``target`` is None."""
    if target is None:
        return predictions(model, x, batch_size)
    n = int(getattr(getattr(model, "info", None), "num_classes", 0) or 0)
    if n == 0:
        n = predict.probabilities(model, x[:1], 1).shape[1]
    return resolve_target(torch.zeros(x.shape[0], n), target).cpu()
