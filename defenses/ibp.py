"""Certified training with interval bound propagation (Gowal et al., 2018, "On the Effectiveness of
Interval Bound Propagation for Training Verifiably Robust Models"):

    loss = kappa * CE(z(x), y) + (1 - kappa) * CE(z_worst(x, eps), y)

where ``z_worst`` are the worst-case logits IBP proves over the L-inf ball: ``z_worst_y = 0`` and
``z_worst_j = -(lower bound of z_y - z_j)`` (the margins through the last layer folded with the
specification, :mod:`lab.models.bounds`). Minimizing it raises the certified margins, so the model
is robust *and* certifiable by ``lab certify --method ibp``.

The schedule of the paper: ``warmup_epochs`` of clean training (``eps = 0``, ``kappa = 1``), then
over ``ramp_epochs`` the radius grows linearly to ``eps`` and ``kappa`` falls linearly to
``kappa_end`` (0.5 in the paper), per step; then both hold. The paper trains at a radius above the
one it certifies (0.4 for MNIST 0.3); so does ``configs/mnist_ibp_cpu.toml``.

The bounds are those of the network at evaluation time: dropout is the identity in them, and a
model with BatchNorm is refused (in training mode it normalizes by the batch, which has no
per-image bounds). The returned logits (the epoch's training accuracy) are the worst-case ones, so
the training accuracy is the *verified* training accuracy at the current radius. The bounds run
in fp32 whatever the training step's autocast.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from defenses.base import DEFENSES, Defense
from defenses.inner import plain_module
from lab.core.settings import SettingError, between, non_negative, positive
from lab.models.bounds import Bounder


@DEFENSES.register("ibp")
class IBPTraining(Defense):
    """Settings: ``eps`` (the L-inf radius trained for, in (0, 1]), ``warmup_epochs`` (clean epochs
    first), ``ramp_epochs`` (eps from 0 and kappa from 1 to their final values), ``kappa_end`` (the
    clean loss's final weight, in [0, 1])."""

    def __init__(self, dtype: torch.dtype | None = None, label_smoothing: float = 0.0, *, eps: float = 0.0,
                 warmup_epochs: float = 1.0, ramp_epochs: float = 5.0, kappa_end: float = 0.5) -> None:  # fmt: skip
        super().__init__(dtype, label_smoothing)
        self.eps = float(positive("eps", eps))
        if self.eps > 1:
            raise SettingError("eps", f"{self.eps:g} is above the data range: an L-inf radius is at most 1")
        self.warmup_epochs = float(non_negative("warmup_epochs", warmup_epochs))
        self.ramp_epochs = float(non_negative("ramp_epochs", ramp_epochs))
        self.kappa_end = float(between("kappa_end", kappa_end, 0.0, 1.0))
        self._t = 0.0
        self._bounder: tuple[nn.Module, Bounder] | None = None

    def settings(self) -> dict[str, Any]:
        return {"norm": "linf", "eps": self.eps, "warmup_epochs": self.warmup_epochs, "ramp_epochs": self.ramp_epochs,
                "kappa_end": self.kappa_end}  # fmt: skip

    def set_progress(self, epochs: float) -> None:
        self._t = max(float(epochs), 0.0)

    @property
    def ramp(self) -> float:
        """How far the ramp is, in [0, 1] (0 during the warm-up)."""
        if self._t < self.warmup_epochs:
            return 0.0
        if self.ramp_epochs <= 0:
            return 1.0
        return min(1.0, (self._t - self.warmup_epochs) / self.ramp_epochs)

    @property
    def eps_now(self) -> float:
        return self.eps * self.ramp

    @property
    def kappa_now(self) -> float:
        return 1.0 - (1.0 - self.kappa_end) * self.ramp

    def bounder(self, model: nn.Module) -> Bounder:
        """The bound propagator of the module under any DDP / compile wrapper (traced once)."""
        plain = plain_module(model)
        if self._bounder is None or self._bounder[0] is not plain:
            self._bounder = (plain, Bounder(plain))
        return self._bounder[1]

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.forward(model, x)
        clean = self.ce(logits, y)
        eps, kappa = self.eps_now, self.kappa_now
        if kappa >= 1.0 and eps == 0.0:
            return clean, logits
        margins = self.bounder(model).margins(x.float(), y, eps, "ibp")
        worst = -margins.masked_fill(torch.isinf(margins), 0.0)
        return kappa * clean + (1.0 - kappa) * self.ce(worst, y), worst.detach()
