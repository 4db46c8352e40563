"""DeepFool (Moosavi-Dezfooli et al., 2016, "DeepFool: a simple and accurate method to fool
deep neural networks"), foolbox's ``LinfDeepFoolAttack`` / ``L2DeepFoolAttack``.

A minimal-norm attack: it linearizes the model around the current point and steps to the
nearest decision boundary among the ``candidates`` top classes, with ``overshoot``, for up
to ``steps`` iterations. Its result is clipped to the eps ball (foolbox, then the base), so
at a fixed epsilon it succeeds where the minimal perturbation it finds fits. Untargeted.
Cost: up to ``steps * (candidates - 1)`` forward+backward passes per example.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from attacks.base import ATTACKS
from attacks.foolbox_common import FoolboxAttack
from lab.core.settings import choice, number, whole


@ATTACKS.register("deepfool")
class DeepFool(FoolboxAttack):
    targeted_ok = False
    quick_settings: ClassVar[dict[str, Any]] = {"steps": 5, "candidates": 4}

    def __init__(self, *, eps: float, norm: str = "linf", steps: int = 50, candidates: int = 10,
                 overshoot: float = 0.02, loss: str = "logits", seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed)
        self.steps = whole("steps", steps)
        self.candidates = whole("candidates", candidates, minimum=2)
        self.overshoot = number("overshoot", overshoot, strict=False)
        self.loss = choice("DeepFool loss", loss, ("logits", "crossentropy"))

    @property
    def cost(self) -> float:  # type: ignore[override]
        return float(self.steps * (self.candidates - 1))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "steps": self.steps, "candidates": self.candidates,
                "overshoot": self.overshoot, "loss": self.loss}  # fmt: skip

    def make(self, fb: ModuleType) -> Any:
        cls = fb.attacks.LinfDeepFoolAttack if self.norm == "linf" else fb.attacks.L2DeepFoolAttack
        return cls(steps=self.steps, candidates=self.candidates, overshoot=self.overshoot, loss=self.loss)
