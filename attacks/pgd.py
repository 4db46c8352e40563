"""PGD, Projected Gradient Descent (Madry et al., 2018, "Towards Deep Learning Models
Resistant to Adversarial Attacks"): BIM from a uniformly random start inside the ball,
with restarts that keep the worst case per example; L-inf or L2; targeted or not;
cross-entropy, margin (Carlini-Wagner) or DLR loss."""

from __future__ import annotations

from attacks.base import ATTACKS
from attacks.gradient import GradientAttack


@ATTACKS.register("pgd")
class PGD(GradientAttack):
    quick_settings = {"steps": 5}

    def __init__(self, *, eps: float, norm: str = "linf", steps: int = 20, alpha: float | None = None,
                 restarts: int = 1, loss: str = "ce", random_start: bool = True, early_stop: bool = True,
                 kappa: float | None = None, precision: str = "auto",
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, steps=steps, alpha=alpha, random_start=random_start,
                         restarts=restarts, loss=loss, early_stop=early_stop, kappa=kappa, precision=precision, seed=seed)  # fmt: skip
