"""Integrated Gradients: the path integral of input gradients from a baseline to the input.

Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep Networks". Backed by
``captum.attr.IntegratedGradients`` (Gauss-Legendre quadrature). ``internal_batch_size``
bounds memory: at most that many (image, step) rows go through the model at once.
Completeness: the attributions of an image sum to ``f(x)[t] - f(baseline)[t]`` up to the
per-image error kept in :attr:`IntegratedGradientsExplainer.last_delta` after each call.
"""

from __future__ import annotations

import torch
from captum.attr import IntegratedGradients
from torch import nn

from explain.base import EXPLAINERS, Explainer
from lab.core.errors import LabError


@EXPLAINERS.register("integrated_gradients")
class IntegratedGradientsExplainer(Explainer):
    """IG from a constant baseline image (``baseline`` in [0, 1] pixel units; 0 = black)."""

    paper = "Sundararajan et al., 2017, Axiomatic Attribution for Deep Networks"
    signed = True
    short_name = "integr. gradients"
    aliases = ("ig",)
    quick_settings = {"n_steps": 8}

    def __init__(self, *, n_steps: int = 50, baseline: float = 0.0, internal_batch_size: int = 64,
                 reduce: str = "sum") -> None:  # fmt: skip
        super().__init__(reduce=reduce)
        if n_steps < 1:
            raise LabError(f"n_steps must be at least 1, got {n_steps}")
        if not 0.0 <= baseline <= 1.0:
            raise LabError(f"baseline must be a pixel value in [0, 1], got {baseline}")
        if internal_batch_size < 1:
            raise LabError(f"internal_batch_size must be at least 1, got {internal_batch_size}")
        self.n_steps = int(n_steps)
        self.baseline = float(baseline)
        self.internal_batch_size = int(internal_batch_size)
        #: convergence delta [B] of the last call (attribution sum minus the logit difference)
        self.last_delta: torch.Tensor | None = None

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        attr, delta = IntegratedGradients(model).attribute(
            x, baselines=torch.full_like(x, self.baseline), target=target, n_steps=self.n_steps,
            internal_batch_size=self.internal_batch_size, return_convergence_delta=True,
        )  # fmt: skip
        self.last_delta = delta.detach().float().cpu()
        return attr
