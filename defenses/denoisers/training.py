"""How ``lab train`` fits a denoiser in front of a frozen classifier (``[denoiser]`` recipes).

Each batch of clean images ``x`` becomes the denoiser's input: the first ``adv_frac`` of
it replaced by PGD adversarial examples of the *frozen classifier* (L-inf ``attack_eps``,
``attack_steps`` steps of ``2.5 * eps / steps`` from a random start, Madry et al.), the
rest with Gaussian noise of std ``noise`` (MagNet's training inputs). The loss:

* ``dae`` (MagNet): binary cross-entropy between the reconstruction (its pre-sigmoid
  output) and the clean image;
* ``hgd`` (Liao et al. 2018, LGD): L1 distance between the classifier's logits on the
  denoised image and on the clean image (summed over classes, averaged over images).

These settings are the denoiser's own (:class:`defenses.denoisers.base.LearnedDenoiser`):
``DenoiserTraining(pipeline.denoiser)`` reads them there. The training loop sees this
object where it would see an adversarial-training recipe: ``loss(model, x, y) -> (loss,
logits)`` with the pipeline's logits for its accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from defenses.denoisers.base import Denoiser
from defenses.denoisers.wrapper import Denoised
from defenses.inner import maximize, plain_module
from lab.core.runtime import autocast
from lab.core.threat import make_threat


@contextmanager
def keep_denoised(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """During the block, the pipeline's forward leaves its denoised images in the dict."""
    net = plain_module(model)
    assert isinstance(net, Denoised)
    box: dict[str, torch.Tensor] = {}
    hook = net.denoiser.register_forward_hook(lambda _m, _i, out: box.__setitem__("denoised", out))
    try:
        yield box
    finally:
        hook.remove()


class DenoiserTraining:
    """The denoiser's training loss, in the loop's defense slot (no epsilon warm-up, no guard)."""

    adversarial = False

    def __init__(self, denoiser: Denoiser, *, dtype: torch.dtype | None = None) -> None:
        # a transform has no training examples to make (and no weights: the loop never calls loss)
        s = denoiser.settings()
        self.name = denoiser.name
        self.dtype = dtype
        self.attack_eps = float(s.get("attack_eps", 0.0))
        self.attack_steps = int(s.get("attack_steps", 1))
        self.adv_frac = float(s.get("adv_frac", 0.0))
        self.noise = float(s.get("noise", 0.0))
        self.threat = make_threat("linf", self.attack_eps) if self.attack_eps > 0 else None
        self.alpha = 2.5 * self.attack_eps / max(self.attack_steps, 1)

    def set_progress(self, epochs: float) -> None:  # the loop's hook for warm-ups; none here
        pass

    def inputs(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The denoiser's training inputs for the clean batch ``x`` (see the module docstring)."""
        net = plain_module(model)
        n_adv = int(round(self.adv_frac * x.shape[0])) if self.threat is not None else 0
        parts = []
        if n_adv:
            xa, ya = x[:n_adv], y[:n_adv]
            start = self.threat.init(xa, None)  # type: ignore[union-attr]
            parts.append(maximize(net.classifier, xa, lambda z: F.cross_entropy(z, ya, reduction="sum"), self.threat,  # type: ignore[arg-type]
                                  steps=self.attack_steps, alpha=self.alpha, start=start, dtype=self.dtype))  # fmt: skip
        rest = x[n_adv:]
        if len(rest):
            parts.append((rest + self.noise * torch.randn_like(rest)).clamp(0, 1) if self.noise > 0 else rest)
        return torch.cat(parts).contiguous(memory_format=torch.preserve_format)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net: Any = plain_module(model)
        x_in = self.inputs(model, x, y)
        with keep_denoised(model) as box, autocast(x.device, self.dtype):
            logits = model(x_in)
        if self.name == "hgd":
            with torch.no_grad(), autocast(x.device, self.dtype):
                target = net.classifier(x)
            loss = (logits.float() - target.float()).abs().sum(1).mean()
        else:  # dae: BCE of the reconstruction's logits against the clean pixels (see defenses.denoisers.dae)
            z = getattr(net.denoiser, "last_logits", None)
            if z is None:  # a denoiser without logits: mean squared error on the image
                loss = F.mse_loss(box["denoised"].float(), x.float())
            else:
                loss = F.binary_cross_entropy_with_logits(z, x.float())
                net.denoiser.last_logits = None
        return loss, logits

    def settings(self) -> dict[str, Any]:
        return {}
