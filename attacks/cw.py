"""Carlini-Wagner L2 (Carlini & Wagner, 2017, "Towards Evaluating the Robustness of Neural
Networks"), foolbox's ``L2CarliniWagnerAttack``.

Minimizes ``||delta||_2^2 + c * f(x + delta)`` in tanh space with Adam (``stepsize``) for
``steps`` iterations, with a binary search over ``c`` (from ``initial_const``, over
``binary_search_steps``); ``f`` is the logit margin with ``confidence``. A minimal-norm
attack: at a fixed epsilon its result is clipped to the L2 ball. L2 only; targeted or not.
The paper and foolbox default to 10,000 steps; the lab defaults to 1,000 (with
``abort_early``), which is what a fixed-epsilon evaluation can afford.
Cost: up to ``steps * binary_search_steps`` forward+backward passes per example.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from attacks.base import ATTACKS
from attacks.foolbox_common import FoolboxAttack
from lab.core.settings import number, whole


@ATTACKS.register("cw")
class CarliniWagner(FoolboxAttack):
    norms = ("l2",)
    quick_settings: ClassVar[dict[str, Any]] = {"steps": 30, "binary_search_steps": 2, "initial_const": 1.0, "stepsize": 0.05}

    def __init__(self, *, eps: float, norm: str = "l2", steps: int = 1000, binary_search_steps: int = 9,
                 confidence: float = 0.0, initial_const: float = 1e-3, stepsize: float = 1e-2,
                 abort_early: bool = True, seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed)
        self.steps = whole("steps", steps)
        self.binary_search_steps = whole("binary_search_steps", binary_search_steps)
        self.confidence = number("confidence", confidence, strict=False)
        self.initial_const = number("initial_const", initial_const)
        self.stepsize = number("stepsize", stepsize)
        self.abort_early = bool(abort_early)

    @property
    def cost(self) -> float:  # type: ignore[override]
        return float(self.steps * self.binary_search_steps)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "steps": self.steps, "binary_search_steps": self.binary_search_steps,
                "confidence": self.confidence, "initial_const": self.initial_const, "stepsize": self.stepsize,
                "abort_early": self.abort_early}  # fmt: skip

    def make(self, fb: ModuleType) -> Any:
        return fb.attacks.L2CarliniWagnerAttack(
            binary_search_steps=self.binary_search_steps, steps=self.steps, stepsize=self.stepsize,
            confidence=self.confidence, initial_const=self.initial_const, abort_early=self.abort_early,
        )  # fmt: skip
