"""``plug_uniform``: training on a uniform random point of the eps-ball around each image
(the random start of PGD without its steps): a cheap, weak adversarial-training recipe,
here to show that a training defense is one file of another distribution."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from defenses.base import AdversarialDefense
from lab.core.settings import between


class UniformNoiseTraining(AdversarialDefense):
    """Settings: ``mix`` (the fraction of each batch perturbed) and the shared ones
    (``eps``, ``norm``, the warm-up, the guard) of :class:`AdversarialDefense`."""

    def __init__(self, *, mix: float = 1.0, **common: Any) -> None:
        super().__init__(**common)
        self.mix = float(between("mix", mix, 0.0, 1.0))

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(round(self.mix * len(x)))
        noisy = (x[:k] + self.threat.init(x[:k], None)).clamp(0, 1) if self.eps_now > 0 else x[:k]
        logits = self.forward(model, torch.cat([noisy, x[k:]]))
        return self.ce(logits, y), logits
