"""GradientSHAP: expected gradients between noisy inputs and baselines drawn from a set.

Lundberg & Lee (2017), "A Unified Approach to Interpreting Model Predictions" (the
expected-gradients approximation of SHAP values). Backed by ``captum.attr.GradientShap``.
The baseline set is a black image plus ``n_baselines - 1`` uniform-noise images in
[0, 1], drawn under ``seed`` (as are the samples), without touching the caller's RNG.
"""

from __future__ import annotations

import torch
from captum.attr import GradientShap
from torch import nn

from explain.base import EXPLAINERS, Explainer
from lab.core.errors import LabError
from lab.core.rng import seeded


@EXPLAINERS.register("gradient_shap")
class GradientShapExplainer(Explainer):
    """``n_samples`` (input + noise, random baseline) pairs per image; ``stdevs`` in pixel units."""

    paper = "Lundberg & Lee, 2017, A Unified Approach to Interpreting Model Predictions"
    signed = True
    short_name = "gradient SHAP"
    aliases = ("shap",)
    randomized = True
    quick_settings = {"n_samples": 4, "n_baselines": 4}

    def __init__(self, *, n_samples: int = 20, n_baselines: int = 10, stdevs: float = 0.1, seed: int = 0,
                 reduce: str = "sum") -> None:  # fmt: skip
        super().__init__(reduce=reduce)
        if n_samples < 1 or n_baselines < 1:
            raise LabError(f"n_samples and n_baselines must be at least 1, got {n_samples}, {n_baselines}")
        if not 0.0 <= stdevs <= 1.0:
            raise LabError(f"stdevs is the noise's standard deviation in [0, 1] pixel units, got {stdevs}")
        self.n_samples = int(n_samples)
        self.n_baselines = int(n_baselines)
        self.stdevs = float(stdevs)
        self.seed = int(seed)

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with seeded(self.seed, x.device):
            noise = torch.rand((self.n_baselines - 1, *x.shape[1:]), device=x.device, dtype=x.dtype)
            baselines = torch.cat([torch.zeros_like(x[:1]), noise])
            return GradientShap(model).attribute(
                x, baselines=baselines, n_samples=self.n_samples, stdevs=self.stdevs, target=target
            )
