"""The adversarial-training contract: a defense is a training recipe with one method,
``loss(model, x, y) -> (loss, logits)``, that the training loop calls instead of plain
cross-entropy.

``x`` is a float batch [B, C, H, W] in [0, 1] (the lab's pixel space), ``y`` int64 [B];
``model`` is what the loop trains (possibly wrapped by DDP or ``torch.compile``) and is in
train mode. ``loss`` is a scalar fp32 tensor to call ``backward`` on; ``logits`` [B, K]
are those of the batch the model was trained on (the adversarial one for adversarial
training), which the loop turns into the epoch's training accuracy.

What every adversarial defense shares lives here, once:

* the threat model (:mod:`attacks.threat`: ``init / step / project``) of radius
  ``eps``, rebuilt at a smaller radius during the epsilon warm-up;
* the inner maximization (:func:`defenses.inner.maximize`): the model in eval mode with
  frozen parameters, gradients with respect to the input only, bf16 autocast like the
  training step, no host synchronization;
* the settings a checkpoint records (:meth:`Defense.settings`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from attacks.threat import ThreatModel, make_threat
from lab.config import DefenseConfig
from lab.registry import Registry
from lab.runtime import autocast

#: Settings every adversarial defense reads (the epsilon warm-up and the guard).
COMMON = ("norm", "eps", "eps_warmup_epochs", "guard", "guard_drop", "guard_floor", "guard_batch", "guard_steps")


class Defense(ABC):
    """Base of every training recipe. Subclasses set ``name``, ``uses`` and implement ``loss``."""

    name: ClassVar[str] = ""
    #: the ``[defense]`` keys this recipe reads; any other key must keep its default
    uses: ClassVar[tuple[str, ...]] = ()
    #: what ``guard = "auto"`` means for this recipe
    auto_guard: ClassVar[str] = "off"

    def __init__(self, cfg: DefenseConfig, *, dtype: torch.dtype | None = None, label_smoothing: float = 0.0) -> None:
        self.cfg = cfg
        self.dtype = dtype
        self.label_smoothing = float(label_smoothing)
        self.eps = float(cfg.eps)
        self.alpha = float(cfg.alpha) if cfg.alpha > 0 else self.default_alpha()
        self.threat: ThreatModel = make_threat(cfg.norm, self.eps)
        self._scale = 1.0  # the epsilon warm-up factor in [0, 1]

    # ------------------------------------------------------------ settings

    def default_alpha(self) -> float:
        """The inner step size when ``alpha = 0``: 2.5 * eps / steps (Madry et al.)."""
        return 2.5 * self.eps / max(self.cfg.steps, 1)

    @property
    def adversarial(self) -> bool:
        return self.name != "none"

    @property
    def guard_mode(self) -> str:
        """``rollback``, ``stop`` or ``off`` (``auto`` resolved for this recipe)."""
        mode = self.cfg.guard
        return self.auto_guard if mode == "auto" else mode

    def settings(self) -> dict[str, Any]:
        """The settings that define this recipe, resolved (``alpha``, ``guard``), for checkpoints."""
        out: dict[str, Any] = {}
        for key in DefenseConfig.__dataclass_fields__:  # in the section's order
            if key not in self.uses or (key.startswith("guard_") and self.guard_mode == "off"):
                continue
            out[key] = getattr(self.cfg, key)
        if "alpha" in self.uses:
            out["alpha"] = self.alpha
        if "guard" in self.uses:
            out["guard"] = self.guard_mode
        if self.adversarial:
            out["inner_mode"] = "eval"
        return out

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        """LabError when ``eps`` is larger than images of this shape allow (the L2 case)."""
        if self.adversarial:
            self.threat.check_range(torch.empty(1, *input_shape))

    # ------------------------------------------------------------ epsilon warm-up

    def set_progress(self, epochs: float) -> None:
        """Tell the recipe how far training is (in epochs, fractional) before each step.

        With ``eps_warmup_epochs = W > 0`` the radius (and the step size with it) grows
        linearly from 0 at step 0 to ``eps`` after W epochs, one increment per step.
        """
        w = self.cfg.eps_warmup_epochs
        scale = 1.0 if w <= 0 else min(1.0, max(epochs, 0.0) / w)
        if scale != self._scale:
            self._scale = scale
            self.threat = make_threat(self.cfg.norm, self.eps * scale)

    @property
    def eps_now(self) -> float:
        return self.eps * self._scale

    @property
    def alpha_now(self) -> float:
        return self.alpha * self._scale

    # ------------------------------------------------------------ the recipe

    def ce(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training cross-entropy (fp32, with the recipe's label smoothing)."""
        return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)

    def forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``model(x)`` under the training step's autocast."""
        with autocast(x.device, self.dtype):
            return model(x)

    @abstractmethod
    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scalar training loss, logits [B, K] for the training accuracy)``; see the module docstring."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{self.name}({args})"


DEFENSES: Registry[type[Defense]] = Registry("defense")
