"""The denoiser contract: an ``nn.Module`` from images to images, both in [0, 1].

A denoiser sits in front of a frozen classifier (:class:`defenses.denoisers.Denoised`), so
the wrapped pipeline is again a model and every attack, explainer and the evaluator run
on it unchanged. ``forward(x [B, C, H, W] in [0, 1]) -> [B, C, H, W] in [0, 1]``.

Class flags tell the evaluator which adaptive attacks the pipeline needs:

* ``trainable``: has parameters that ``lab train`` fits (dae, hgd); the transforms don't;
* ``differentiable``: autograd gives the transform's true gradient. When False the
  forward pass is a non-differentiable operation (rounding, a JPEG codec) whose backward
  is zero by default (what autograd of the real operation gives: masked gradients) and
  the identity under BPDA (Athalye, Carlini & Wagner 2018): :meth:`transform` takes
  ``backward="zero" | "identity"``;
* ``randomized``: draws fresh randomness each call, so attacks need EOT (Athalye et al.).

Each denoiser reads only some ``[denoiser]`` keys (``uses``); the rest must keep their
defaults, like the adversarial-training recipes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from lab.config import DenoiserConfig
from lab.registry import Registry

BACKWARDS = ("zero", "identity")


class Denoiser(nn.Module):
    """Base of every denoiser and input transform; subclasses implement :meth:`transform`."""

    name: ClassVar[str] = ""
    uses: ClassVar[tuple[str, ...]] = ()
    trainable: ClassVar[bool] = False
    differentiable: ClassVar[bool] = True
    randomized: ClassVar[bool] = False
    #: what the paper calls it, for reports and the dashboard
    title: ClassVar[str] = ""

    def __init__(self, cfg: DenoiserConfig, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_shape = tuple(input_shape)

    def settings(self) -> dict[str, Any]:
        """The ``[denoiser]`` keys this denoiser reads, for checkpoints and reports."""
        return {k: getattr(self.cfg, k) for k in DenoiserConfig.__dataclass_fields__ if k in self.uses}

    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        """The denoised images; ``backward`` matters only when not ``differentiable``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x, "zero")

    def detector_score(self, x: torch.Tensor) -> torch.Tensor | None:
        """A per-image score that is large for suspicious inputs [B], or None (see Denoised)."""
        return None

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.settings().items())


class _StraightThrough(torch.autograd.Function):
    """``y = out`` (precomputed, non-differentiable) with the backward chosen per call."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, out: torch.Tensor, identity: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.identity = identity
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:  # type: ignore[override]
        return (grad if ctx.identity else torch.zeros_like(grad)), None, None


def non_differentiable(x: torch.Tensor, out: torch.Tensor, backward: str) -> torch.Tensor:
    """Attach ``out`` (computed from ``x`` without autograd) to the graph of ``x``.

    ``backward="zero"``: the gradient is zero (a rounding or a codec has no useful
    derivative; attacking through it as-is is what masks gradients). ``"identity"``: BPDA's
    straight-through estimator, d out / d x ~ I.
    """
    if backward not in BACKWARDS:
        raise ValueError(f"backward must be one of {BACKWARDS}, got {backward!r}")
    if not x.requires_grad:
        return out.to(x.dtype)
    return _StraightThrough.apply(x, out.detach(), backward == "identity")  # type: ignore[no-any-return]


DENOISERS: Registry[type[Denoiser]] = Registry("denoiser")
