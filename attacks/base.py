"""The attack contract and the shared work every attack needs.

``attack = ATTACKS.get("pgd")(eps=0.3, steps=40)``, then ``x_adv = attack(model, x, y)``
or ``attack(model, x, y, target=t)``. :meth:`Attack.__call__` does, once for all attacks:

* checks the inputs: float images [B, C, H, W] in [0, 1] without NaN, int labels [B] in
  the model's class range, an epsilon the data range allows (LabError otherwise, never a
  silent clamp of the user's input);
* puts the model in eval mode and freezes its parameters, restoring both afterwards
  (BatchNorm and dropout must not change the answer; no ``.grad`` is left behind);
* projects the result onto the threat set around ``x``, clamps it to [0, 1], detaches it
  and returns it in ``x``'s dtype, device and shape.

Subclasses implement :meth:`Attack.perturb` only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from lab.core.errors import LabError
from lab.core.registry import Registry
from lab.core.rng import image_generators
from lab.core.threat import ThreatModel, make_threat
from lab.models.base import check_images, frozen_eval  # noqa: F401 - frozen_eval is part of this module's API


def num_classes_of(model: nn.Module) -> int | None:
    info = getattr(model, "info", None)
    return getattr(info, "num_classes", None)


def check_inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> None:
    """One-sentence LabErrors for inputs an attack must not silently accept."""
    check_images(x, allow_empty=True)
    n = num_classes_of(model)
    for name, t in (("labels", y), ("targets", target)):
        if t is None:
            continue
        if not torch.is_tensor(t) or t.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise LabError(f"{name} must be an integer tensor, got {getattr(t, 'dtype', type(t).__name__)}")
        if t.shape != (x.shape[0],):
            raise LabError(f"{name} must be shaped [{x.shape[0]}], got {tuple(t.shape)}")
        if t.numel() and (int(t.min()) < 0 or (n is not None and int(t.max()) >= n)):
            raise LabError(f"{name} must be class indices in [0, {n}), got values {int(t.min())}..{int(t.max())}")


class Attack(ABC):
    """Base of every attack. Settings are keyword-only ``__init__`` arguments."""

    name: ClassVar[str] = ""
    norms: ClassVar[tuple[str, ...]] = ("linf", "l2")
    targeted_ok: ClassVar[bool] = True
    #: relative cost of one call (forward+backward passes per example), for ordering attacks
    cost: ClassVar[float] = 1.0
    #: "white-box" (gradients), "black-box" (scores or decisions only) or "suite" (an ensemble)
    kind: ClassVar[str] = "white-box"
    #: settings for a cheap run of this attack (tests, previews); real evaluations use the defaults
    quick_settings: ClassVar[dict[str, Any]] = {}
    #: an image's result does not depend on the other images of its batch (its randomness is
    #: drawn per image, :meth:`image_generators`), so a sharded evaluation may split a batch
    #: across ranks; False (the default: most libraries draw one stream per batch): the
    #: evaluator gives each rank whole batches, exactly as one process forms them
    batch_independent: ClassVar[bool] = False

    def __init__(self, *, eps: float, norm: str = "linf", seed: int = 0) -> None:
        if norm not in self.norms:
            raise LabError(f"attack {self.name!r} does not support the {norm!r} norm; it supports {', '.join(self.norms)}")
        self.threat: ThreatModel = make_threat(norm, eps)
        self.seed = int(seed)
        #: what the underlying library flagged during the last call (e.g. AutoAttack's own
        #: checks); the evaluator copies these into the report's warnings
        self.notes: list[str] = []

    def transfer_settings(self) -> dict[str, Any]:
        """Settings that make this attack full strength when its examples are made on a
        surrogate and judged on another model (a transfer / gray-box row): e.g. no early stop
        at the first iterate that barely fools the surrogate. Empty: it runs as configured."""
        return {}

    @property
    def eps(self) -> float:
        return self.threat.eps

    @property
    def norm(self) -> str:
        return self.threat.name

    def config(self) -> dict[str, Any]:
        """The settings that define this attack (for reports)."""
        return {"name": self.name, "norm": self.norm, "eps": self.eps, "seed": self.seed}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{self.name}({args})"

    def generator(self, device: torch.device) -> torch.Generator:
        """One generator for a whole batch, seeded with :attr:`seed` (what an image draws then
        depends on its place in the batch; see :meth:`image_generators`)."""
        return torch.Generator(device=device).manual_seed(self.seed)

    def image_generators(self, x: torch.Tensor, stream: int = 0) -> list[torch.Generator]:
        """One generator per image of ``x`` [B, ...], seeded by :attr:`seed`, ``stream`` (e.g.
        the restart) and the image itself (:func:`lab.core.rng.image_generators`): the same
        image draws the same noise in any batch, at any position."""
        return image_generators(x, self.seed, stream)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 target: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        check_inputs(model, x, y, target)
        if target is not None and not self.targeted_ok:
            raise LabError(f"attack {self.name!r} is untargeted only")
        self.threat.check_range(x)
        y = y.to(x.device, torch.int64)
        target = target.to(x.device, torch.int64) if target is not None else None
        self.notes = []
        if self.eps == 0 or x.shape[0] == 0:
            return x.detach().clone()
        with frozen_eval(model), torch.enable_grad():
            x_adv = self.perturb(model, x.detach(), y, target)
        delta = self.threat.project(x_adv.detach().to(x.dtype) - x)
        return (x + delta).clamp_(0.0, 1.0).detach()

    @abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """Return adversarial images for ``x`` (projection and clamping are done by the caller)."""


ATTACKS: Registry[type[Attack]] = Registry("attack", package="attacks", entry_points="lab.attacks")
