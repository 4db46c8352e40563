"""BIM, the Basic Iterative Method (Kurakin et al., 2017, "Adversarial examples in the
physical world"): FGSM repeated with a small step, projected back onto the ball, from the
clean image (no random start)."""

from __future__ import annotations

from attacks.base import ATTACKS
from attacks.gradient import GradientAttack


@ATTACKS.register("bim")
class BIM(GradientAttack):
    quick_settings = {"steps": 5}

    def __init__(self, *, eps: float, norm: str = "linf", steps: int = 10, alpha: float | None = None,
                 loss: str = "ce", early_stop: bool = True, kappa: float | None = None, precision: str = "auto",
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, steps=steps, alpha=alpha, random_start=False, restarts=1,
                         loss=loss, early_stop=early_stop, kappa=kappa, precision=precision, seed=seed)  # fmt: skip
