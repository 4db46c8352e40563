"""MagNet's detector (Meng and Chen 2017, "MagNet: a Two-Pronged Defense against Adversarial
Examples"): the reconstruction error of an autoencoder trained on clean images,
``mean |ae(x) - x|^p`` per image (``p`` 1 or 2). Adversarial perturbations leave the data manifold
the autoencoder learned, so they reconstruct badly. The autoencoder is the lab's DAE
(``defenses/denoisers/dae.py``: a ``[denoiser] name = "dae"`` run holds one); the score is
differentiable, so the adaptive attack follows its true gradient.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from defenses.denoisers.base import Denoiser
from defenses.denoisers.wrapper import Denoised
from defenses.detectors.base import DETECTORS, Detector
from lab.core.errors import LabError
from lab.core.settings import one_of


def reconstructs(denoiser: object) -> bool:
    """Whether a denoiser (class or object) gives a reconstruction error of its own (the DAE does;
    an input transform does not), which MagNet can take as its autoencoder."""
    cls = denoiser if isinstance(denoiser, type) else type(denoiser)
    return getattr(cls, "detector_score", Denoiser.detector_score) is not Denoiser.detector_score


def autoencoder_of(model: object, name: str) -> Denoiser:
    """The autoencoder of a DAE run's model (a denoised model whose denoiser :func:`reconstructs`);
    LabError naming the run as ``name`` otherwise."""
    if not isinstance(model, Denoised) or not reconstructs(model.denoiser):
        raise LabError(f"{name} is not a DAE run (its model has no autoencoder)")
    return model.denoiser


@DETECTORS.register("magnet")
class MagNet(Detector):
    """Settings: ``p`` (1: mean absolute error, as MagNet on MNIST; 2: mean squared error)."""

    title = "MagNet reconstruction error (Meng and Chen 2017)"

    def __init__(self, autoencoder: Denoiser | None = None, *, p: Literal[1, 2] = 1) -> None:
        super().__init__()
        if autoencoder is None:
            raise LabError("the magnet detector needs an autoencoder: a DAE run (lab detect --autoencoder RUN)")
        self.autoencoder = autoencoder.eval()
        for q in self.autoencoder.parameters():
            q.requires_grad_(False)
        self.p = int(one_of("p", p, (1, 2)))

    @classmethod
    def check(cls, **settings: Any) -> None:
        """The settings' checks without an autoencoder (a recipe names its run: ``detector.autoencoder``)."""
        one_of("p", settings.get("p", 1), (1, 2))

    def score(self, model: nn.Module, x: torch.Tensor, *, bpda: bool = False) -> torch.Tensor:
        err = (self.autoencoder.transform(x) - x).abs().flatten(1)
        return (err if self.p == 1 else err**2).mean(1)
