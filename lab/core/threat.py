"""Threat models: the set an attack may move an image in, as small objects.

Each has ``init`` (a random start inside the ball; ``init_per_image`` draws it image by
image, each from its own generator), ``step`` (the steepest-ascent
direction for the norm: the sign for L-inf, the normalized gradient for L2), ``project``
(back onto the ball) and ``norm`` (per-example size of a perturbation). Images stay in
[0, 1]; the attack base clamps after projecting. This is the Madry-lab / foolbox way:
FGSM, BIM and PGD are configurations of one loop over one of these.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from lab.core.errors import LabError
from lab.core.registry import Registry


class ThreatModel(ABC):
    """A norm ball of radius ``eps`` around the clean image."""

    name: str = ""

    def __init__(self, eps: float) -> None:
        if not isinstance(eps, (int, float)) or math.isnan(eps) or eps < 0:
            raise LabError(f"epsilon must be a number >= 0, got {eps!r}")
        self.eps = float(eps)

    @abstractmethod
    def norm(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-example norm of ``delta`` [B, ...] -> [B]."""

    @abstractmethod
    def init(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """A random perturbation inside the ball, shaped like ``x``."""

    def init_per_image(self, x: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """:meth:`init` drawn image by image, image ``i`` from ``generators[i]``: each image's
        start depends on its own generator only, not on the batch it is in or its place there."""
        if len(generators) != x.shape[0]:
            raise LabError(f"one generator per image is needed: {len(generators)} for {x.shape[0]} images")
        if not generators:
            return torch.zeros_like(x)
        return torch.cat([self.init(x[i : i + 1], g) for i, g in enumerate(generators)])

    @abstractmethod
    def step(self, grad: torch.Tensor) -> torch.Tensor:
        """The unit steepest-ascent direction for this norm."""

    @abstractmethod
    def project(self, delta: torch.Tensor) -> torch.Tensor:
        """The closest point of the ball (for L-inf and L2: clip / rescale)."""

    def check_range(self, x: torch.Tensor) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Refuse an epsilon larger than the whole [0, 1] data range allows."""

    def __repr__(self) -> str:
        return f"{self.name}(eps={self.eps:g})"


THREATS: Registry[type[ThreatModel]] = Registry("norm")


def _flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    return t.flatten(1).norm(p=p, dim=1)


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


@THREATS.register("linf")
class LinfBall(ThreatModel):
    name = "linf"

    def __init__(self, eps: float) -> None:
        super().__init__(eps)
        if self.eps > 1:
            raise LabError(f"L-inf epsilon {eps:g} is above the data range [0, 1]; use a value in [0, 1] (e.g. 8/255)")

    def norm(self, delta: torch.Tensor) -> torch.Tensor:
        return delta.flatten(1).abs().amax(dim=1)

    def init(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (2 * u - 1) * self.eps

    def step(self, grad: torch.Tensor) -> torch.Tensor:
        return grad.sign()

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        return delta.clamp(-self.eps, self.eps)


@THREATS.register("l2")
class L2Ball(ThreatModel):
    name = "l2"

    def norm(self, delta: torch.Tensor) -> torch.Tensor:
        return _flat_norm(delta, 2)

    def check_range(self, x: torch.Tensor) -> None:  # noqa: B027 - optional hook, a no-op by default
        diameter = math.sqrt(x[0].numel())
        if self.eps > diameter:
            raise LabError(
                f"L2 epsilon {self.eps:g} is above the data range: no two images of shape "
                f"{tuple(x.shape[1:])} in [0, 1] are further apart than {diameter:.1f}"
            )

    def init(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        # Uniform in the ball: a Gaussian direction times radius eps * U^(1/d).
        g = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        d = x[0].numel()
        r = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype) ** (1.0 / d)
        return g / _expand(_flat_norm(g, 2).clamp_min(1e-12), g) * _expand(r * self.eps, g)

    def step(self, grad: torch.Tensor) -> torch.Tensor:
        return grad / _expand(_flat_norm(grad, 2).clamp_min(1e-12), grad)

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        n = _flat_norm(delta, 2)
        factor = torch.where(n > self.eps, self.eps / n.clamp_min(1e-12), torch.ones_like(n))
        return delta * _expand(factor, delta)


def make_threat(norm: str, eps: float) -> ThreatModel:
    """``make_threat("linf", 0.3)``; LabError for an unknown norm or a bad epsilon."""
    return THREATS.get(norm)(eps)
