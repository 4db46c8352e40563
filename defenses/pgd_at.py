"""PGD adversarial training (Madry et al., 2018, "Towards Deep Learning Models Resistant to
Adversarial Attacks"): ``min_theta E max_{delta in ball} CE(f(x + delta), y)``, the inner
max approximated by ``steps`` steps of PGD of size ``alpha`` (default ``2.5 * eps /
steps``) from a uniformly random start in the L-inf or L2 ball, the outer min by training
on the resulting examples only.

Mode: the inner PGD runs in eval mode (:mod:`defenses.inner`). Madry et al.'s reference
code (TensorFlow, MNIST/CIFAR challenges) attacks the training graph; their MNIST network
has no BatchNorm or dropout, so the two are the same there. For networks with BatchNorm
the lab keeps the running statistics free of the attack's intermediate iterates, and the
training forward on the adversarial batch (train mode) updates them as usual.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from defenses.base import DEFENSES, AdversarialDefense
from defenses.inner import maximize
from lab.core.settings import positive


@DEFENSES.register("pgd_at")
class PGDAT(AdversarialDefense):
    """``steps`` PGD steps of size ``alpha`` (0: 2.5 * eps / steps), from a uniform random
    start in the ball when ``random_start``; the other settings are :class:`AdversarialDefense`'s."""

    def __init__(self, *, steps: int = 10, alpha: float = 0.0, random_start: bool = True, **common: Any) -> None:
        super().__init__(**common)
        self.steps = int(positive("steps", steps))
        self.alpha = self.resolve_alpha(alpha)
        self.random_start = bool(random_start)

    def attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training examples: PGD on the cross-entropy at the current (warmed-up) radius."""
        if self.eps_now == 0:
            return x
        start = self.threat.init(x, None) if self.random_start else None
        return maximize(model, x, lambda z: F.cross_entropy(z, y, reduction="sum"), self.threat,
                        steps=self.steps, alpha=self.alpha_now, start=start, dtype=self.dtype)  # fmt: skip

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.forward(model, self.attack(model, x, y))
        return self.ce(logits, y), logits
