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

A denoiser's settings (a ``[denoiser]`` table's keys) are its keyword-only ``__init__``
arguments, checked by the ``__init__`` itself (:mod:`lab.core.settings`); the input shape
[C, H, W] of the classifier it goes in front of is an ordinary argument.
:meth:`Denoiser.settings` records them in checkpoints, from which
:func:`defenses.denoisers.rebuild` builds the denoiser again.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from lab.core.registry import Registry
from lab.core.settings import between, setting_names

BACKWARDS = ("zero", "identity")


class Denoiser(nn.Module):
    """Base of every denoiser and input transform; subclasses implement :meth:`transform`."""

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = False
    differentiable: ClassVar[bool] = True
    randomized: ClassVar[bool] = False
    #: what the paper calls it, for reports and the dashboard
    title: ClassVar[str] = ""

    def __init__(self, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)

    @classmethod
    def check(cls, **settings: Any) -> None:
        """Run the ``__init__``'s checks of ``settings`` without building weights: on the meta
        device (no memory) at a nominal 1x28x28 input; the real input shape is checked when
        the pipeline is built (:func:`defenses.denoisers.wrap`)."""
        with torch.device("meta"):
            cls((1, 28, 28), **settings)

    def settings(self) -> dict[str, Any]:
        """Its settings (each kept as the attribute of that name), for checkpoints and reports."""
        return {k: getattr(self, k) for k in setting_names(type(self))}

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


class LearnedDenoiser(Denoiser):
    """Base of the denoisers with weights that ``lab train`` fits (:mod:`defenses.denoisers.training`).

    Settings: ``width`` (channels of the first layer) and the training examples: a fraction
    ``adv_frac`` of each batch replaced by PGD examples of the frozen classifier (L-inf
    ``attack_eps``, ``attack_steps`` steps), the rest noised with Gaussian noise of std
    ``noise`` (MagNet: 0.1).
    """

    trainable = True

    def __init__(self, input_shape: tuple[int, int, int], *, attack_eps: float = 0.3, attack_steps: int = 10,
                 adv_frac: float = 0.5, noise: float = 0.1, width: int = 32) -> None:  # fmt: skip
        super().__init__(input_shape)
        self.attack_eps = float(between("attack_eps", attack_eps, 0.0, 1.0))
        self.attack_steps = int(between("attack_steps", attack_steps, 1, 1000))
        self.adv_frac = float(between("adv_frac", adv_frac, 0.0, 1.0))
        self.noise = float(between("noise", noise, 0.0, 1.0))
        self.width = int(between("width", width, 1, 512))


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


DENOISERS: Registry[type[Denoiser]] = Registry("denoiser", package="defenses.denoisers", entry_points="lab.denoisers")
