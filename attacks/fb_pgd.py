"""Foolbox's PGD (``LinfPGD`` / ``L2PGD``; Madry et al., 2018) with the lab's ``pgd`` setting
names, as an independent cross-check of :mod:`attacks.pgd` (the benchmarks compare the two).

``alpha`` is passed as foolbox's ``abs_stepsize`` and defaults, like the lab's PGD, to
``2.5 * eps / steps``; ``restarts`` uses foolbox's ``attack.repeat(restarts)`` (the first
successful run per example wins). Unlike the lab's PGD, foolbox returns the last iterate
(no early stop) and optimizes cross-entropy only. Targeted or not.
Cost: ``steps * restarts`` forward+backward passes per example.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from attacks.base import ATTACKS
from attacks.foolbox_common import FoolboxAttack
from lab.core.settings import number, whole


@ATTACKS.register("fb_pgd")
class FoolboxPGD(FoolboxAttack):
    quick_settings: ClassVar[dict[str, Any]] = {"steps": 5}

    def __init__(self, *, eps: float, norm: str = "linf", steps: int = 20, alpha: float | None = None,
                 random_start: bool = True, restarts: int = 1, seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed)
        self.steps = whole("steps", steps)
        self.restarts = whole("restarts", restarts)
        self.alpha = number("step size alpha", alpha) if alpha is not None else 2.5 * self.eps / self.steps
        self.random_start = bool(random_start)

    @property
    def cost(self) -> float:  # type: ignore[override]
        return float(self.steps * self.restarts)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "steps": self.steps, "alpha": self.alpha, "random_start": self.random_start,
                "restarts": self.restarts}  # fmt: skip

    def make(self, fb: ModuleType) -> Any:
        cls = fb.attacks.LinfPGD if self.norm == "linf" else fb.attacks.L2PGD
        attack = cls(abs_stepsize=self.alpha, steps=self.steps, random_start=self.random_start)
        return attack.repeat(self.restarts) if self.restarts > 1 else attack
