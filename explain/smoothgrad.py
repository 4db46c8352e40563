"""SmoothGrad and SmoothGrad-Squared: a base attribution averaged over noisy copies of the input.

Smilkov, Thorat, Kim, Viegas & Wattenberg (2017), "SmoothGrad: removing noise by adding
noise"; the squared variant from Hooker, Erhan, Kindermans & Kim (2019), "A Benchmark for
Interpretability Methods in Deep Neural Networks". Backed by ``captum.attr.NoiseTunnel``.
The noise is Gaussian with standard deviation ``stdevs`` in [0, 1] pixel units (the models
normalize internally), drawn under ``seed`` without touching the caller's RNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from captum.attr import GuidedBackprop, InputXGradient, NoiseTunnel, Saliency
from torch import nn

from explain.base import EXPLAINERS, Explainer
from lab.core.errors import LabError
from lab.core.rng import seeded

#: base methods a noise tunnel can wrap: name -> (captum class, extra attribute() kwargs, keeps the sign)
BASES: dict[str, tuple[type, dict[str, Any], bool]] = {
    "saliency": (Saliency, {"abs": True}, False),
    "gradient": (Saliency, {"abs": False}, True),
    "input_x_gradient": (InputXGradient, {}, True),
    "guided_backprop": (GuidedBackprop, {}, True),
}


class NoiseTunnelExplainer(Explainer):
    """``nt_samples`` noisy copies (``nt_samples_batch_size`` at a time) through a base method."""

    nt_type: ClassVar[str] = "smoothgrad"
    default_base: ClassVar[str] = "saliency"
    randomized = True
    quick_settings = {"nt_samples": 4}

    def __init__(self, *, base: str | None = None, nt_samples: int = 25, stdevs: float = 0.15,
                 nt_samples_batch_size: int = 8, seed: int = 0, reduce: str = "sum") -> None:  # fmt: skip
        super().__init__(reduce=reduce)
        base = self.default_base if base is None else base
        if base not in BASES:
            raise LabError(f"unknown base method {base!r} for {self.name}; choose one of: {', '.join(BASES)}")
        if nt_samples < 1 or nt_samples_batch_size < 1:
            raise LabError(f"nt_samples and nt_samples_batch_size must be at least 1, got {nt_samples}, "
                           f"{nt_samples_batch_size}")  # fmt: skip
        if not 0.0 <= stdevs <= 1.0:
            raise LabError(f"stdevs is the noise's standard deviation in [0, 1] pixel units, got {stdevs}")
        self.base = base
        self.nt_samples = int(nt_samples)
        self.stdevs = float(stdevs)
        self.nt_samples_batch_size = int(nt_samples_batch_size)
        self.seed = int(seed)

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cls, kwargs, _ = BASES[self.base]
        tunnel = NoiseTunnel(cls(model))
        with seeded(self.seed, x.device):
            return tunnel.attribute(
                x, nt_type=self.nt_type, nt_samples=self.nt_samples, stdevs=self.stdevs,
                nt_samples_batch_size=min(self.nt_samples_batch_size, self.nt_samples), target=target, **kwargs,
            )  # fmt: skip


@EXPLAINERS.register("smoothgrad")
class SmoothGradExplainer(NoiseTunnelExplainer):
    """Mean of the base attribution (default ``|gradient|``) over noisy inputs."""

    paper = "Smilkov et al., 2017, SmoothGrad: removing noise by adding noise"
    nt_type = "smoothgrad"
    aliases = ("sg",)

    @classmethod
    def signed_for(cls, settings: Mapping[str, Any]) -> bool:
        """The mean keeps the base's sign: signed for a signed base (``gradient``, not ``|gradient|``)."""
        base = BASES.get(str(settings.get("base") or cls.default_base))
        return base is not None and base[2] and settings.get("reduce") != "abs_sum"


@EXPLAINERS.register("smoothgrad_sq")
class SmoothGradSqExplainer(NoiseTunnelExplainer):
    """Mean of the squared base attribution over noisy inputs (non-negative)."""

    paper = "Hooker et al., 2019, A Benchmark for Interpretability Methods in Deep Neural Networks"
    nt_type = "smoothgrad_sq"
    short_name = "smoothgrad sq"
