"""The attention model's own spatial attention maps, upsampled to the input size.

For ``attention_cnn`` (spatial attention over locations: CBAM's spatial branch, Woo et al.
2018, normalized with a softmax as in Jetley et al. 2018, "Learn to Pay Attention"): the
distribution the model weighs its features by, scaled to a peak of 1, read from
``model.forward_with_attention`` and upsampled (bilinear) to [B, 1, H, W]. The maps do
not depend on the target class (the target is still checked).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from explain.base import EXPLAINERS, Explainer
from lab.core.errors import LabError


@EXPLAINERS.register("attention")
class AttentionExplainer(Explainer):
    """One stage's map (``stage=0, 1, ...``; ``-1``, the default, is the last and most
    semantic stage) or the mean over all stages (``stage=None``), in [0, 1]."""

    paper = "Jetley et al., 2018, Learn to Pay Attention (softmax spatial attention)"
    needs_attention = True

    def __init__(self, *, stage: int | None = -1, reduce: str = "sum") -> None:
        super().__init__(reduce=reduce)
        if stage is not None and stage < -1:
            raise LabError(f"stage must be a stage index (0, 1, ...; -1 the last) or None for the mean, got {stage}")
        self.stage = stage

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not getattr(model, "has_attention", hasattr(model, "forward_with_attention")):
            arch = getattr(getattr(model, "info", None), "arch", type(model).__name__)
            raise LabError(f"model {arch!r} has no attention maps; use gradcam or another method")
        with torch.no_grad():
            _, maps = model.forward_with_attention(x)  # type: ignore[operator]
        if self.stage is not None and self.stage >= len(maps):
            raise LabError(f"stage {self.stage} does not exist; the model has {len(maps)} attention stages")
        chosen = maps if self.stage is None else [maps[self.stage]]  # maps[-1]: the last stage
        size = tuple(x.shape[2:])
        ups = [F.interpolate(m.float(), size=size, mode="bilinear", align_corners=False) for m in chosen]
        return torch.stack(ups).mean(0)
