"""FGSM, the Fast Gradient Sign Method (Goodfellow et al., 2015, "Explaining and
Harnessing Adversarial Examples"): one step of size eps along the gradient's sign
(L-inf), or along the normalized gradient (L2, the "fast gradient method")."""

from __future__ import annotations

from attacks.base import ATTACKS
from attacks.gradient import GradientAttack


@ATTACKS.register("fgsm")
class FGSM(GradientAttack):

    def __init__(self, *, eps: float, norm: str = "linf", loss: str = "ce", random_start: bool = False,
                 kappa: float | None = None, precision: str = "auto",
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, steps=1, alpha=eps if eps > 0 else None, random_start=random_start,
                         restarts=1, loss=loss, early_stop=False, kappa=kappa, precision=precision, seed=seed)  # fmt: skip
