"""What the explanation metrics share: turning a method name into an explanation function,
and evaluating a model's class probabilities in batches without gradients."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from explain.base import EXPLAINERS, Explainer, TargetLike, frozen_eval, model_device, resolve_target
from lab.errors import LabError

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


@torch.no_grad()
def probabilities(model: nn.Module, x: torch.Tensor, target: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Softmax probability of class ``target[i]`` for image ``x[i]``: float32 [N] on the CPU."""
    device = model_device(model)
    out = []
    with frozen_eval(model):
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size].to(device=device, dtype=torch.float32)
            p = model(xb).float().softmax(1)
            out.append(p.gather(1, target[i : i + batch_size].to(device)[:, None])[:, 0].cpu())
    return torch.cat(out)


@torch.no_grad()
def predictions(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes [B] (int64, CPU), model in eval mode (restored afterwards)."""
    device = model_device(model)
    with frozen_eval(model):
        return torch.cat(
            [model(x[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, x.shape[0], batch_size)]
        )


def targets(model: nn.Module, x: torch.Tensor, target: TargetLike, batch_size: int = 256) -> torch.Tensor:
    """Class indices [B] (int64, CPU): the model's prediction when ``target`` is None."""
    if target is None:
        return predictions(model, x, batch_size)
    n = int(getattr(getattr(model, "info", None), "num_classes", 0) or 0)
    if n == 0:
        with torch.no_grad(), frozen_eval(model):
            n = model(x[:1].to(model_device(model))).shape[1]
    return resolve_target(torch.zeros(x.shape[0], n), target).cpu()
