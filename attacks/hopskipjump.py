"""HopSkipJump (Chen, Jordan & Wainwright, 2020, "HopSkipJumpAttack: A Query-Efficient
Decision-Based Attack"), foolbox's ``HopSkipJumpAttack``.

Decision-based (it sees only the predicted label): from an adversarial starting point
(``init="noise"``: foolbox's blended uniform noise, the default; ``"batch"``: the nearest
other-class image of the batch) it alternates a binary search to the decision boundary, a
Monte-Carlo estimate of the boundary's normal from ``initial_gradient_eval_steps *
sqrt(step)`` (at most ``max_gradient_eval_steps``) label queries, and a geometric step.
L-inf or L2 through its ``constraint``; untargeted. Examples for which no starting point is
found are kept unattacked. Foolbox draws all gradient-estimation queries of a step for the
whole batch at once, so the batch is split to keep that under ~1 GiB.
Cost: label queries per example, a forward counted as 1/3 of a forward+backward pass.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, ClassVar

import torch

from attacks.base import ATTACKS
from attacks.foolbox_common import FoolboxAttack
from lab.core.settings import choice, number, whole


@ATTACKS.register("hopskipjump")
class HopSkipJump(FoolboxAttack):
    kind = "black-box"
    targeted_ok = False
    needs_start = True
    quick_settings: ClassVar[dict[str, Any]] = {"steps": 15, "initial_gradient_eval_steps": 10, "max_gradient_eval_steps": 20,
                      "init": "batch"}  # fmt: skip

    def __init__(self, *, eps: float, norm: str = "linf", steps: int = 64, initial_gradient_eval_steps: int = 100,
                 max_gradient_eval_steps: int = 10000, stepsize_search: str = "geometric_progression",
                 gamma: float = 1.0, init: str = "noise", init_directions: int = 1000, init_steps: int = 50,
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed, init=init, init_directions=init_directions,
                         init_steps=init_steps)
        self.steps = whole("steps", steps)
        self.initial_gradient_eval_steps = whole("initial_gradient_eval_steps", initial_gradient_eval_steps)
        self.max_gradient_eval_steps = whole("max_gradient_eval_steps", max_gradient_eval_steps)
        self.stepsize_search = choice("HopSkipJump stepsize_search", stepsize_search,
                                      ("geometric_progression", "grid_search"))  # fmt: skip
        self.gamma = number("gamma", gamma)

    def _evals(self, step: int) -> int:
        return int(min(self.initial_gradient_eval_steps * math.sqrt(step + 1), self.max_gradient_eval_steps))

    @property
    def cost(self) -> float:  # type: ignore[override]
        # gradient estimates + ~25 queries of binary and step-size search per step, + the start
        queries = sum(self._evals(s) + 25 for s in range(self.steps)) + self.init_steps
        return queries / 3.0

    def config(self) -> dict[str, Any]:
        return {**super().config(), "steps": self.steps,
                "initial_gradient_eval_steps": self.initial_gradient_eval_steps,
                "max_gradient_eval_steps": self.max_gradient_eval_steps, "stepsize_search": self.stepsize_search,
                "gamma": self.gamma}  # fmt: skip

    def chunk_size(self, x: torch.Tensor) -> int:
        per_example = 3 * self._evals(self.steps - 1) * x[0].numel() * x.element_size()
        return max(1, (1 << 30) // per_example)

    def make(self, fb: ModuleType) -> Any:
        return fb.attacks.HopSkipJumpAttack(
            steps=self.steps, initial_gradient_eval_steps=self.initial_gradient_eval_steps,
            max_gradient_eval_steps=self.max_gradient_eval_steps, stepsize_search=self.stepsize_search,
            gamma=self.gamma, constraint=self.norm,
        )  # fmt: skip
