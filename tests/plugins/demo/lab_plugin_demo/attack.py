"""``plug_sign``: one step of ``scale * eps`` along the threat model's steepest-ascent
direction of the cross-entropy gradient (FGSM with a step-size fraction)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from attacks.base import Attack
from lab.core.errors import LabError


class ScaledSignStep(Attack):
    """Settings are keyword-only ``__init__`` arguments, like every attack's."""

    cost: ClassVar[float] = 1.0
    quick_settings: ClassVar[dict[str, object]] = {"scale": 0.5}

    def __init__(self, *, eps: float, norm: str = "linf", scale: float = 1.0, seed: int = 0) -> None:
        super().__init__(eps=eps, norm=norm, seed=seed)
        if not 0 < scale <= 1:
            raise LabError(f"scale must be in (0, 1], got {scale}")
        self.scale = float(scale)

    def config(self) -> dict[str, object]:
        return {**super().config(), "scale": self.scale}

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        x = x.clone().requires_grad_(True)
        logits = model(x)
        loss = -F.cross_entropy(logits, target) if target is not None else F.cross_entropy(logits, y)
        (grad,) = torch.autograd.grad(loss, x)
        return x.detach() + self.scale * self.eps * self.threat.step(grad)
