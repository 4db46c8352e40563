"""APGD-T, targeted Auto-PGD on the targeted DLR loss (Croce & Hein, 2020, "Reliable
evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks"),
from the official AutoAttack package.

It picks its own targets: for each of the ``n_target_classes`` runner-up classes of the
clean prediction it runs APGD on the targeted DLR loss, on the examples still standing. So
it is *untargeted* in the lab's sense (success = misclassified). Needs >= 4 classes; the
number of targets is capped at ``classes - 1``. L-inf or L2.
Cost: ``steps * restarts * n_target_classes`` forward+backward passes per example.
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
from lab.core.settings import number, whole


@ATTACKS.register("apgd_t")
class APGDTargeted(Attack):
    targeted_ok = False
    quick_settings: ClassVar[dict[str, Any]] = {"steps": 10, "n_target_classes": 2}

    def __init__(self, *, eps: float, norm: str = "linf", steps: int = 100, restarts: int = 1,
                 n_target_classes: int = 9, rho: float = 0.75, seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed)
        self.steps = whole("steps", steps)
        self.restarts = whole("restarts", restarts)
        self.n_target_classes = whole("n_target_classes", n_target_classes)
        self.rho = number("rho", rho)

    @property
    def cost(self) -> float:  # type: ignore[override]
        return float(self.steps * self.restarts * self.n_target_classes)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "steps": self.steps, "restarts": self.restarts,
                "n_target_classes": self.n_target_classes, "rho": self.rho}  # fmt: skip

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        aa = import_autoattack()
        n = class_count(model, x)
        need_classes("APGD-T", n, 4)
        attack = aa.autopgd_base.APGDAttack_targeted(
            model, n_iter=self.steps, norm=AA_NORMS[self.norm], n_restarts=self.restarts, eps=self.eps,
            seed=self.seed, rho=self.rho, n_target_classes=min(self.n_target_classes, n - 1), verbose=False,
            device=x.device, logger=AA_LOGGER,
        )  # fmt: skip
        with seeded(self.seed, x.device):
            return attack.perturb(x, y)
