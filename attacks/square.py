"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, 2020, "Square Attack: a
query-efficient black-box adversarial attack via random search"), from the official
AutoAttack package.

Score-based (it sees the logits, never a gradient): random search over square-shaped
updates at the corners of the L-inf ball (or localized L2 updates), whose side shrinks on
a schedule from ``p_init``, accepting a query when the margin (or ``loss="ce"``) improves;
up to ``n_queries`` queries per restart. The evaluator uses it for the gradient-masking
check "a black-box attack must not beat the white-box ones". L-inf or L2; untargeted.
``rescale_schedule`` adapts the ``p`` schedule to ``n_queries`` (AutoAttack itself runs
5,000 queries without it). ``chunk``: at most this many images per run of the official code
(0: the whole batch; AutoAttack itself runs 250); small batches stay in the CPU's caches.
``fast_forward``: the queries go to a TorchScript inference copy of the model
(:func:`lab.models.frozen.inference_forward`, only where it answers like the model); the
evaluator still judges every result on the model itself.
Cost: ``n_queries * restarts`` forward passes, each counted as 1/3 of a forward+backward.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from attacks.autoattack_common import AA_NORMS, import_autoattack
from attacks.base import ATTACKS, Attack
from lab.core.errors import LabError
from lab.core.rng import seeded
from lab.core.settings import choice, number, whole
from lab.models.frozen import inference_forward


@ATTACKS.register("square")
class Square(Attack):
    kind = "black-box"
    targeted_ok = False
    quick_settings: ClassVar[dict[str, Any]] = {"n_queries": 100}

    def __init__(self, *, eps: float, norm: str = "linf", n_queries: int = 5000, p_init: float = 0.8,
                 restarts: int = 1, loss: str = "margin", rescale_schedule: bool = True, chunk: int = 0,
                 fast_forward: bool = False, seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed)
        self.n_queries = whole("n_queries", n_queries)
        self.p_init = number("p_init", p_init)
        if self.p_init > 1:
            raise LabError(f"p_init must be a fraction of the image in (0, 1], got {p_init!r}")
        self.restarts = whole("restarts", restarts)
        self.loss = choice("Square loss", loss, ("margin", "ce"))
        self.rescale_schedule = bool(rescale_schedule)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
            raise LabError(f"chunk must be a whole number >= 0 (0: the whole batch), got {chunk!r}")
        self.chunk = chunk
        self.fast_forward = bool(fast_forward)

    @property
    def cost(self) -> float:  # type: ignore[override]
        return self.n_queries * self.restarts / 3.0

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n_queries": self.n_queries, "p_init": self.p_init, "restarts": self.restarts,
                "loss": self.loss, "rescale_schedule": self.rescale_schedule, "chunk": self.chunk,
                "fast_forward": self.fast_forward}  # fmt: skip

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        aa = import_autoattack()
        net = inference_forward(model, x) if self.fast_forward else model
        attack = aa.square.SquareAttack(
            net, norm=AA_NORMS[self.norm], n_queries=self.n_queries, eps=self.eps, p_init=self.p_init,
            n_restarts=self.restarts, seed=self.seed, verbose=False, targeted=False, loss=self.loss,
            resc_schedule=self.rescale_schedule, device=x.device,
        )  # fmt: skip
        step = self.chunk or max(len(x), 1)
        with torch.no_grad():
            parts = []
            for s in range(0, len(x), step):
                with seeded(self.seed, x.device):  # each chunk as AutoAttack runs each of its batches
                    parts.append(attack.perturb(x[s : s + step], y[s : s + step]))
        return torch.cat(parts) if parts else x.clone()
