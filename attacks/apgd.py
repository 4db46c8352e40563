"""APGD, Auto-PGD (Croce & Hein, 2020, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks"), from the official AutoAttack package.

PGD with momentum and a step size that starts at ``2 * eps`` and is halved at checkpoints
where the loss stopped improving (``rho``), from a random start, with ``restarts``; on the
cross-entropy (APGD-CE, ``loss="ce"``) or the Difference of Logits Ratio (APGD-DLR,
``loss="dlr"``, needs >= 3 classes). L-inf or L2; untargeted.
Cost: ``steps * restarts`` forward+backward passes per example.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from attacks.autoattack_common import (
    AA_LOGGER,
    AA_NORMS,
    class_count,
    import_autoattack,
    need_classes,
)
from attacks.base import ATTACKS, Attack
from lab.core.rng import seeded
from lab.core.settings import choice, number, whole


@ATTACKS.register("apgd")
class APGD(Attack):
    targeted_ok = False
    quick_settings: ClassVar[dict[str, Any]] = {"steps": 10}

    def __init__(self, *, eps: float, norm: str = "linf", loss: str = "ce", steps: int = 100, restarts: int = 1,
                 rho: float = 0.75, seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed)
        self.loss = choice("APGD loss", loss, ("ce", "dlr"))
        self.steps = whole("steps", steps)
        self.restarts = whole("restarts", restarts)
        self.rho = number("rho", rho)

    @property
    def cost(self) -> float:  # type: ignore[override]
        return float(self.steps * self.restarts)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "loss": self.loss, "steps": self.steps, "restarts": self.restarts,
                "rho": self.rho}  # fmt: skip

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        aa = import_autoattack()
        if self.loss == "dlr":
            need_classes("APGD-DLR", class_count(model, x), 3)
        attack = aa.autopgd_base.APGDAttack(
            model, n_iter=self.steps, norm=AA_NORMS[self.norm], n_restarts=self.restarts, eps=self.eps,
            seed=self.seed, loss=self.loss, rho=self.rho, verbose=False, device=x.device, logger=AA_LOGGER,
        )  # fmt: skip
        with seeded(self.seed, x.device):
            return attack.perturb(x, y)
