"""Standard training (``name = "none"``): cross-entropy on the clean batch, nothing else.

The training loop always calls a defense's ``loss``; this is the one it gets by default,
so standard and adversarial training are one code path.
"""

from __future__ import annotations

import torch
from torch import nn

from defenses.base import DEFENSES, Defense


@DEFENSES.register("none")
class NoDefense(Defense):
    """No settings."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.forward(model, x)
        return self.ce(logits, y), logits
