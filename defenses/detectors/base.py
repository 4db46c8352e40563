"""The detector contract: a defense that scores inputs, higher meaning more likely adversarial.

``score(model, x) -> [B]`` for images ``x`` [B, C, H, W] in [0, 1] and the classifier ``model``
it protects. ``fit(model, x, y)`` learns what it needs from clean training images (statistics of
activations; nothing for a detector that has its parts already). ``differentiable`` says whether
autograd's gradient of the score is the true one; where it is not, ``score(..., bpda=True)`` is a
differentiable stand-in (BPDA: the identity through the non-differentiable part) that an
adaptive attack follows. ``views(x)`` lists the transformed inputs a score compares the input's
prediction with, where it has such (feature squeezing), for the attack that targets them all.

:class:`Detected` is the protected model: ``model`` plus the detector plus a threshold, a model that
may abstain. :func:`calibrate` sets the threshold for a false-positive rate on held-out clean
images. An attack on it succeeds only if the input is misclassified *and* not detected.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from lab.core.errors import LabError
from lab.core.registry import Registry
from lab.core.settings import setting_names
from lab.models.base import frozen_eval

#: the class a :class:`Detected` model answers when it rejects the input
REJECT = -1


class Detector(nn.Module, ABC):
    """Base of every detector; subclasses implement :meth:`score` (and :meth:`fit` if they learn)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    differentiable: ClassVar[bool] = True

    @classmethod
    def check(cls, **settings: Any) -> None:
        """Run the ``__init__``'s checks of ``settings`` (a recipe loader's validation)."""
        cls(**settings)

    def settings(self) -> dict[str, Any]:
        """Its settings (each kept as the attribute of that name), for reports."""
        return {k: getattr(self, k) for k in setting_names(type(self))}

    def fit(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        """Learn from clean images ``x`` [N, C, H, W] with labels ``y`` (nothing to learn here)."""
        return None

    def views(self, x: torch.Tensor, *, bpda: bool = False) -> list[torch.Tensor]:
        """The transformed versions of ``x`` whose predictions the score compares with the input's
        (feature squeezing's squeezed images; none here). An adaptive attack that makes the input
        and every view misclassified as one class evades such a score; ``bpda`` as for :meth:`score`."""
        return []

    @abstractmethod
    def score(self, model: nn.Module, x: torch.Tensor, *, bpda: bool = False) -> torch.Tensor:
        """[B] scores of ``x`` (higher: more likely adversarial); ``bpda``: a differentiable stand-in."""


def calibrate(model: nn.Module, detector: Detector, x: torch.Tensor, fpr: float = 0.05,
              batch_size: int = 500) -> float:  # fmt: skip
    """The threshold that flags a fraction ``fpr`` of the clean images ``x`` (held out: not the
    images it will be judged on): the ``1 - fpr`` quantile of their scores."""
    if not 0 < fpr < 1:
        raise LabError(f"the false-positive rate must be in (0, 1), got {fpr}")
    scores = scores_of(model, detector, x, batch_size)
    return float(torch.quantile(scores.double(), 1 - fpr))


def scores_of(model: nn.Module, detector: Detector, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The detector's scores [N] of ``x``, in batches, the model frozen in eval mode, no gradients."""
    with frozen_eval(model), torch.no_grad():
        return torch.cat([detector.score(model, x[i:i + batch_size]).float() for i in range(0, x.shape[0], batch_size)])


class Detected(nn.Module):
    """``model`` protected by ``detector``: ``forward`` gives the model's logits, :meth:`detect` the
    rejections (score above ``threshold``), :meth:`predict` the class or :data:`REJECT`."""

    def __init__(self, model: nn.Module, detector: Detector, threshold: float) -> None:
        super().__init__()
        self.model = model
        self.detector = detector
        self.threshold = float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # type: ignore[no-any-return]

    def detect(self, x: torch.Tensor) -> torch.Tensor:
        """[B] bool: rejected."""
        return scores_of(self.model, self.detector, x) > self.threshold

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """[B] the class, or ``REJECT`` where the detector rejects the input."""
        with frozen_eval(self.model), torch.no_grad():
            pred = self.model(x).argmax(1)
        return torch.where(self.detect(x), torch.full_like(pred, REJECT), pred)


DETECTORS: Registry[type[Detector]] = Registry("detector", package="defenses.detectors", entry_points="lab.detectors")
