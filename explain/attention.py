"""The attention model's own spatial attention maps, upsampled to the input size.

For ``attention_cnn`` (CBAM-style spatial gates; Woo, Park, Lee & Kweon, 2018, "CBAM:
Convolutional Block Attention Module"): the sigmoid maps the model multiplies its features
by, read from ``model.forward_with_attention`` and upsampled (bilinear) to [B, 1, H, W].
They do not depend on the target class (the target is still checked).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from explain.base import EXPLAINERS, Explainer
from lab.errors import LabError


@EXPLAINERS.register("attention")
class AttentionExplainer(Explainer):
    """One stage's map (``stage=0, 1, ...``) or the mean over all stages (``stage=None``), in [0, 1]."""

    name = "attention"
    paper = "Woo et al., 2018, CBAM: Convolutional Block Attention Module"

    def __init__(self, *, stage: int | None = None, reduce: str = "sum") -> None:
        super().__init__(reduce=reduce)
        if stage is not None and stage < 0:
            raise LabError(f"stage must be a stage index (0, 1, ...) or None for the mean, got {stage}")
        self.stage = stage

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not getattr(model, "has_attention", hasattr(model, "forward_with_attention")):
            arch = getattr(getattr(model, "info", None), "arch", type(model).__name__)
            raise LabError(f"model {arch!r} has no attention maps; use gradcam or another method")
        with torch.no_grad():
            _, maps = model.forward_with_attention(x)  # type: ignore[operator]
        if self.stage is not None and self.stage >= len(maps):
            raise LabError(f"stage {self.stage} does not exist; the model has {len(maps)} attention stages")
        chosen = maps if self.stage is None else [maps[self.stage]]
        size = tuple(x.shape[2:])
        ups = [F.interpolate(m.float(), size=size, mode="bilinear", align_corners=False) for m in chosen]
        return torch.stack(ups).mean(0)
