"""FGSM with a random start (Wong, Rice & Kolter, 2020, "Fast is better than free:
Revisiting adversarial training"): one signed-gradient step of size ``alpha`` (default
``1.25 * eps``) from ``delta ~ U(-eps, eps)``, projected back onto the ball and into
[0, 1]; training on the result. About the cost of two standard steps.

Single-step training can collapse ("catastrophic overfitting": PGD accuracy falls to ~0
within an epoch while FGSM accuracy soars), so its guard is on by default
(``guard = "auto"`` means ``rollback``, see :mod:`defenses.guard`). The paper's own guard
(early stopping on the PGD accuracy of a training minibatch) is ``guard = "stop"``.

Mode: the FGSM step runs in eval mode (:mod:`defenses.inner`). The reference code
(``locuslab/fast_adversarial``) computes it in train mode; its MNIST network (the lab's
``fastnet``) has no BatchNorm or dropout, so the two are identical there, and with
BatchNorm the lab keeps the running statistics free of the random-start batch.
For L2 the start is uniform in the L2 ball and the step follows the normalized gradient.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from defenses.base import DEFENSES, AdversarialDefense
from defenses.inner import maximize


@DEFENSES.register("fgsm_rs")
class FGSMRS(AdversarialDefense):
    """One step of size ``alpha`` (0: 1.25 * eps); the other settings are :class:`AdversarialDefense`'s."""

    auto_guard = "rollback"

    def __init__(self, *, alpha: float = 0.0, **common: Any) -> None:
        super().__init__(**common)
        self.alpha = self.resolve_alpha(alpha)

    def default_alpha(self) -> float:
        """1.25 * eps, the step Wong et al. found best (larger steps collapse sooner)."""
        return 1.25 * self.eps

    def attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training examples: one FGSM step from a uniform random start."""
        if self.eps_now == 0:
            return x
        return maximize(model, x, lambda z: F.cross_entropy(z, y, reduction="sum"), self.threat,
                        steps=1, alpha=self.alpha_now, start=self.threat.init(x, None), dtype=self.dtype)  # fmt: skip

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.forward(model, self.attack(model, x, y))
        return self.ce(logits, y), logits
