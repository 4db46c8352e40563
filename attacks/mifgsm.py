"""MI-FGSM, Momentum Iterative FGSM (Dong et al., 2018, "Boosting Adversarial Attacks with
Momentum"): BIM whose direction is a running sum of L1-normalized gradients with decay
``momentum`` (mu = 1.0 in the paper), step eps / steps."""

from __future__ import annotations

from attacks.base import ATTACKS
from attacks.gradient import GradientAttack


@ATTACKS.register("mifgsm")
class MIFGSM(GradientAttack):
    quick_settings = {"steps": 5}

    def __init__(self, *, eps: float, norm: str = "linf", steps: int = 10, momentum: float = 1.0,
                 alpha: float | None = None, loss: str = "ce", early_stop: bool = True,
                 kappa: float | None = None, precision: str = "auto",
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, steps=steps, alpha=alpha, random_start=False, restarts=1,
                         loss=loss, momentum=momentum, early_stop=early_stop, kappa=kappa, precision=precision, seed=seed)  # fmt: skip

    def default_alpha(self) -> float:
        return self.eps / self.steps
