"""TRADES (Zhang et al., 2019, "Theoretically Principled Trade-off between Robustness and
Accuracy"): ``CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x'))`` with ``x'``
maximizing that KL in the ball, found by ``steps`` PGD steps of size ``alpha`` (default
``2.5 * eps / steps``) from ``x + 0.001 * N(0, I)``. ``beta`` (default 6) trades clean
accuracy for robustness.

As in the reference code (``yaodongyu/TRADES``, ``trades_loss``): the inner maximization
runs in eval mode against the clean prediction of the eval-mode model (a constant target);
the training forward passes run in train mode on the clean and the adversarial batch
separately (so BatchNorm never mixes them), with gradients through both sides of the KL,
averaged over the batch. Differences: the clean logits are computed once for both terms
(the reference runs the clean batch twice, with two dropout masks), and for L2 the inner
steps are the normalized-gradient PGD of :mod:`lab.core.threat` instead of the reference's
SGD-on-delta with renormalization. The returned logits (training accuracy) are the
adversarial ones.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attacks.base import frozen_eval
from defenses.base import DEFENSES, AdversarialDefense
from defenses.inner import maximize, plain_module
from lab.core.settings import non_negative, positive


def kl(logits_p: torch.Tensor, logits_q: torch.Tensor, reduction: str) -> torch.Tensor:
    """KL(softmax p || softmax q) from logits (fp32)."""
    return F.kl_div(F.log_softmax(logits_q.float(), 1), F.log_softmax(logits_p.float(), 1),
                    reduction=reduction, log_target=True)  # fmt: skip


@DEFENSES.register("trades")
class TRADES(AdversarialDefense):
    """``steps`` PGD steps of size ``alpha`` (0: 2.5 * eps / steps) on the KL term, weighted by
    ``beta``; the other settings are :class:`AdversarialDefense`'s."""

    def __init__(self, *, steps: int = 10, alpha: float = 0.0, beta: float = 6.0, **common: Any) -> None:
        super().__init__(**common)
        self.steps = int(positive("steps", steps))
        self.alpha = self.resolve_alpha(alpha)
        self.beta = float(non_negative("beta", beta))

    def attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x'``: PGD on KL(clean prediction || prediction at x') in the ball."""
        if self.eps_now == 0:
            return x
        net = plain_module(model)
        with frozen_eval(net), torch.no_grad():
            clean = self.forward(net, x).float()
        start = 0.001 * torch.randn_like(x)
        return maximize(model, x, lambda z: kl(clean, z, "sum"), self.threat, steps=self.steps,
                        alpha=self.alpha_now, start=start, dtype=self.dtype)  # fmt: skip

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = self.attack(model, x, y)
        logits = self.forward(model, x)
        if self.eps_now == 0:
            return self.ce(logits, y), logits
        logits_adv = self.forward(model, x_adv)
        loss = self.ce(logits, y) + self.beta * kl(logits, logits_adv, "batchmean")
        return loss, logits_adv
