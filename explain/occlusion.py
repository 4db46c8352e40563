"""Occlusion: the drop in the target logit when a sliding square patch is blacked out.

Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional Networks". Backed by
``captum.attr.Occlusion``. The window spans all channels; by default it is 4x4 with stride
2 on 28x28 images, scaled with the image size (e.g. 5x5 stride 2 on 32x32).
"""

from __future__ import annotations

import torch
from captum.attr import Occlusion
from torch import nn

from explain.base import EXPLAINERS, Explainer
from lab.core.errors import LabError


@EXPLAINERS.register("occlusion")
class OcclusionExplainer(Explainer):
    """Per-pixel mean logit drop over the windows covering it ([B, 1, H, W])."""

    paper = "Zeiler & Fergus, 2014, Visualizing and Understanding Convolutional Networks"
    signed = True
    quick_settings = {"stride": 4}

    def __init__(self, *, window: int | None = None, stride: int | None = None, baseline: float = 0.0,
                 perturbations_per_eval: int = 32, reduce: str = "sum") -> None:  # fmt: skip
        super().__init__(reduce=reduce)
        for label, v in (("window", window), ("stride", stride), ("perturbations_per_eval", perturbations_per_eval)):
            if v is not None and v < 1:
                raise LabError(f"{label} must be at least 1, got {v}")
        if not 0.0 <= baseline <= 1.0:
            raise LabError(f"baseline must be a pixel value in [0, 1], got {baseline}")
        self.window = window
        self.stride = stride
        self.baseline = float(baseline)
        self.perturbations_per_eval = int(perturbations_per_eval)

    def sizes(self, h: int, w: int) -> tuple[int, int]:
        """(window, stride) for an h x w image: the settings, or 4 and 2 scaled from 28 pixels."""
        side = min(h, w)
        window = self.window if self.window is not None else max(1, round(4 * side / 28))
        stride = self.stride if self.stride is not None else max(1, round(2 * side / 28))
        if window > side:
            raise LabError(f"occlusion window {window} is larger than the {h}x{w} image")
        return window, stride

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        k, s = self.sizes(x.shape[2], x.shape[3])
        attr = Occlusion(model).attribute(
            x, sliding_window_shapes=(c, k, k), strides=(c, s, s), baselines=self.baseline, target=target,
            perturbations_per_eval=self.perturbations_per_eval,
        )  # fmt: skip
        return attr[:, :1]  # the window spans all channels: every channel holds the same map
