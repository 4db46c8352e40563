"""``plug_grad``: the input gradient of the target logit (signed, or its absolute value)."""

from __future__ import annotations

import torch
from torch import nn

from explain.base import EXPLAINERS, Explainer


@EXPLAINERS.register("plug_grad")
class InputGradient(Explainer):
    paper = "Simonyan et al., 2014 (the plain input gradient)"

    def __init__(self, *, absolute: bool = True, reduce: str = "sum") -> None:
        super().__init__(reduce=reduce)
        self.absolute = bool(absolute)

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = x.clone().requires_grad_(True)
        score = model(x).gather(1, target[:, None]).sum()
        (grad,) = torch.autograd.grad(score, x)
        return grad.abs() if self.absolute else grad
