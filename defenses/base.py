"""The adversarial-training contract: a defense is a training recipe with one method,
``loss(model, x, y) -> (loss, logits)``, that the training loop calls instead of plain
cross-entropy.

``x`` is a float batch [B, C, H, W] in [0, 1] (the lab's pixel space), ``y`` int64 [B];
``model`` is what the loop trains (possibly wrapped by DDP or ``torch.compile``) and is in
train mode. ``loss`` is a scalar fp32 tensor to call ``backward`` on; ``logits`` [B, K]
are those of the batch the model was trained on (the adversarial one for adversarial
training), which the loop turns into the epoch's training accuracy.

A recipe's settings (a ``[defense]`` table's keys) are its keyword-only ``__init__``
arguments, checked by the ``__init__`` itself (:mod:`lab.core.settings`). ``dtype`` (the
training step's autocast dtype) and ``label_smoothing`` come from the training loop, not
from the table, so they are ordinary arguments.

What every adversarial defense shares lives in :class:`AdversarialDefense`, once:

* the threat model (:mod:`lab.core.threat`: ``init / step / project``) of radius
  ``eps``, rebuilt at a smaller radius during the epsilon warm-up, and the settings of the
  warm-up and of the catastrophic-overfitting guard (:mod:`defenses.guard`); a recipe's
  ``__init__`` takes its own settings and hands the rest (``**common``) to it;
* the inner maximization (:func:`defenses.inner.maximize`): the model in eval mode with
  frozen parameters, gradients with respect to the input only, bf16 autocast like the
  training step, no host synchronization;
* the settings a checkpoint records (:meth:`AdversarialDefense.settings`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lab.core.registry import Registry
from lab.core.runtime import autocast
from lab.core.settings import SettingError, non_negative, one_of, positive, setting_names
from lab.core.threat import ThreatModel, make_threat

Norm = Literal["linf", "l2"]
#: ``auto``: the recipe's :attr:`AdversarialDefense.auto_guard`
GuardMode = Literal["auto", "rollback", "stop", "off"]
GUARD_MODES = ("auto", "rollback", "stop", "off")


class Defense(ABC):
    """Base of every training recipe. Subclasses implement ``loss``; their keyword-only
    ``__init__`` arguments are their settings."""

    name: ClassVar[str] = ""
    #: trains on adversarial examples (has a threat model, a warm-up and a guard)
    adversarial: ClassVar[bool] = False

    def __init__(self, dtype: torch.dtype | None = None, label_smoothing: float = 0.0) -> None:
        self.dtype = dtype
        self.label_smoothing = float(label_smoothing)

    @classmethod
    def check(cls, **settings: Any) -> None:
        """Run the ``__init__``'s checks of ``settings`` (a recipe loader's validation)."""
        cls(**settings)

    def settings(self) -> dict[str, Any]:
        """The settings that define this recipe, resolved, for checkpoints (none here)."""
        return {}

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        """LabError when the recipe cannot train on images of this shape (any shape here)."""
        return None

    def set_progress(self, epochs: float) -> None:
        """Tell the recipe how far training is (in epochs, fractional) before each step (no warm-up here)."""
        return None

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


class AdversarialDefense(Defense):
    """Base of the recipes that train on adversarial examples of radius ``eps``.

    Settings (the recipe adds its own, such as ``steps`` and ``alpha``):
    ``norm`` and ``eps`` (the threat model trained against, ``eps`` in [0, 1] pixel
    units, > 0); ``eps_warmup_epochs`` (eps grows linearly from 0 over this many epochs,
    per step); ``guard`` (auto: the recipe's :attr:`auto_guard`), ``guard_drop`` (a
    collapse: PGD accuracy this far, a fraction, below the best epoch's), ``guard_floor``
    (... or below this accuracy; 0: no floor), ``guard_batch`` (training images it measures
    on) and ``guard_steps`` (PGD steps of that measurement).
    """

    adversarial = True
    #: what ``guard = "auto"`` means for this recipe
    auto_guard: ClassVar[str] = "off"
    #: inner maximization steps (a recipe with a ``steps`` setting sets its own)
    steps: int = 1
    #: the inner step size, resolved (a recipe's ``alpha`` setting; 0 there: :meth:`default_alpha`)
    alpha: float

    def __init__(self, dtype: torch.dtype | None = None, label_smoothing: float = 0.0, *, norm: Norm = "linf",
                 eps: float = 0.0, eps_warmup_epochs: float = 0.0, guard: GuardMode = "auto",
                 guard_drop: float = 0.2, guard_floor: float = 0.0, guard_batch: int = 512,
                 guard_steps: int = 10) -> None:  # fmt: skip
        super().__init__(dtype, label_smoothing)
        self.norm = one_of("norm", norm, ("linf", "l2"))
        self.eps = float(non_negative("eps", eps))
        if not self.eps > 0:
            raise SettingError("eps", f"must be positive for {self.name} (the radius it trains against), got {eps!r}")
        if norm == "linf" and self.eps > 1:
            raise SettingError("eps", f"{self.eps:g} is above the data range: an L-inf radius is at most 1 "
                                      "(images are in [0, 1])")  # fmt: skip
        self.eps_warmup_epochs = float(non_negative("eps_warmup_epochs", eps_warmup_epochs))
        self.guard = one_of("guard", guard, GUARD_MODES)
        self.guard_drop = float(positive("guard_drop", guard_drop))
        if self.guard_drop > 1:
            raise SettingError("guard_drop", f"is a fraction of accuracy in (0, 1], got {self.guard_drop!r}")
        self.guard_floor = float(non_negative("guard_floor", guard_floor))
        if self.guard_floor >= 1:
            raise SettingError("guard_floor", f"is an accuracy below 1, got {self.guard_floor!r}")
        self.guard_batch = int(positive("guard_batch", guard_batch))
        self.guard_steps = int(positive("guard_steps", guard_steps))
        self.threat: ThreatModel = make_threat(self.norm, self.eps)
        self._scale = 1.0  # the epsilon warm-up factor in [0, 1]

    # ------------------------------------------------------------ settings

    def resolve_alpha(self, alpha: float) -> float:
        """The recipe's ``alpha`` setting checked, with 0 meaning :meth:`default_alpha`."""
        return float(non_negative("alpha", alpha)) or self.default_alpha()

    def default_alpha(self) -> float:
        """The inner step size when ``alpha = 0``: 2.5 * eps / steps (Madry et al.)."""
        return 2.5 * self.eps / max(self.steps, 1)

    @property
    def guard_mode(self) -> str:
        """``rollback``, ``stop`` or ``off`` (``auto`` resolved for this recipe)."""
        return self.auto_guard if self.guard == "auto" else self.guard

    def settings(self) -> dict[str, Any]:
        """The settings that define this recipe, resolved (``alpha``, ``guard``), for checkpoints:
        the threat model, the recipe's own settings, the warm-up, the guard (its numbers only
        when it is on) and the inner attack's mode."""
        shared = setting_names(AdversarialDefense)
        out: dict[str, Any] = {"norm": self.norm, "eps": self.eps}
        out.update((k, getattr(self, k)) for k in setting_names(type(self)) if k not in shared)
        out["eps_warmup_epochs"] = self.eps_warmup_epochs
        out["guard"] = self.guard_mode
        if self.guard_mode != "off":
            out.update(guard_drop=self.guard_drop, guard_floor=self.guard_floor, guard_batch=self.guard_batch,
                       guard_steps=self.guard_steps)  # fmt: skip
        out["inner_mode"] = "eval"
        return out

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        """LabError when ``eps`` is larger than images of this shape allow (the L2 case)."""
        self.threat.check_range(torch.empty(1, *input_shape))

    # ------------------------------------------------------------ epsilon warm-up

    def set_progress(self, epochs: float) -> None:
        """With ``eps_warmup_epochs = W > 0`` the radius (and the step size with it) grows
        linearly from 0 at step 0 to ``eps`` after W epochs, one increment per step.
        """
        w = self.eps_warmup_epochs
        scale = 1.0 if w <= 0 else min(1.0, max(epochs, 0.0) / w)
        if scale != self._scale:
            self._scale = scale
            self.threat = make_threat(self.norm, self.eps * scale)

    @property
    def eps_now(self) -> float:
        return self.eps * self._scale

    @property
    def alpha_now(self) -> float:
        return self.alpha * self._scale


DEFENSES: Registry[type[Defense]] = Registry("defense", package="defenses", entry_points="lab.defenses")
