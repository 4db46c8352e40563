"""Boundary Attack (Brendel, Rauber & Bethge, 2018, "Decision-Based Adversarial Attacks:
Reliable Attacks Against Black-Box Machine Learning Models"), foolbox's ``BoundaryAttack``.

Decision-based (it sees only the predicted label): from an adversarial starting point
(``init="noise"``: foolbox's blended uniform noise, the default; ``"batch"``: the nearest
other-class image of the batch) it random-walks along the decision boundary towards the
clean image, with orthogonal (``spherical_step``) and towards-the-image (``source_step``)
steps adapted to their success rates. L2; untargeted. Examples for which no starting point
is found are kept unattacked. Foolbox's default of 25,000 steps is kept (it does not stop
early at a fixed epsilon).
Cost: about ``steps * (1 + 1 / update_stats_every_k)`` label queries per example, a forward
counted as 1/3 of a forward+backward pass.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from attacks.base import ATTACKS
from attacks.foolbox_common import FoolboxAttack
from lab.core.settings import number, whole


@ATTACKS.register("boundary")
class Boundary(FoolboxAttack):
    kind = "black-box"
    norms = ("l2",)
    targeted_ok = False
    needs_start = True
    quick_settings: ClassVar[dict[str, Any]] = {"steps": 500, "spherical_step": 0.05, "source_step": 0.05, "update_stats_every_k": 5,
                      "init": "batch"}  # fmt: skip

    def __init__(self, *, eps: float, norm: str = "l2", steps: int = 25000, spherical_step: float = 1e-2,
                 source_step: float = 1e-2, source_step_convergance: float = 1e-7, step_adaptation: float = 1.5,
                 update_stats_every_k: int = 10, init: str = "noise", init_directions: int = 1000, init_steps: int = 50,
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed, init=init, init_directions=init_directions,
                         init_steps=init_steps)
        self.steps = whole("steps", steps)
        self.spherical_step = number("spherical_step", spherical_step)
        self.source_step = number("source_step", source_step)
        self.source_step_convergance = number("source_step_convergance", source_step_convergance)
        self.step_adaptation = number("step_adaptation", step_adaptation, minimum=1.0)
        self.update_stats_every_k = whole("update_stats_every_k", update_stats_every_k)

    @property
    def cost(self) -> float:  # type: ignore[override]
        return (self.steps * (1 + 1 / self.update_stats_every_k) + self.init_steps) / 3.0

    def config(self) -> dict[str, Any]:
        return {**super().config(), "steps": self.steps, "spherical_step": self.spherical_step,
                "source_step": self.source_step, "source_step_convergance": self.source_step_convergance,
                "step_adaptation": self.step_adaptation, "update_stats_every_k": self.update_stats_every_k}  # fmt: skip

    def make(self, fb: ModuleType) -> Any:
        return fb.attacks.BoundaryAttack(
            steps=self.steps, spherical_step=self.spherical_step, source_step=self.source_step,
            source_step_convergance=self.source_step_convergance, step_adaptation=self.step_adaptation,
            update_stats_every_k=self.update_stats_every_k,
        )  # fmt: skip
