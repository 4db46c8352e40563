"""How ``lab train`` fits a denoiser in front of a frozen classifier (``[denoiser]`` recipes).

Each batch of clean images ``x`` becomes the denoiser's input: the first ``adv_frac`` of
it replaced by PGD adversarial examples of the *frozen classifier* (L-inf ``attack_eps``,
``attack_steps`` steps of ``2.5 * eps / steps`` from a random start, Madry et al.), the
rest with Gaussian noise of std ``noise`` (MagNet's training inputs). The loss:

* ``dae`` (MagNet): binary cross-entropy between the reconstruction (its pre-sigmoid
  output) and the clean image;
* ``hgd`` (Liao et al. 2018, LGD): L1 distance between the classifier's logits on the
  denoised image and on the clean image (summed over classes, averaged over images).

The training loop sees this object where it would see an adversarial-training recipe:
``loss(model, x, y) -> (loss, logits)`` with the pipeline's logits for its accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attacks.threat import make_threat
from defenses.inner import maximize, plain_module
from lab.config import DenoiserConfig
from lab.runtime import autocast


@contextmanager
def keep_denoised(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """During the block, the pipeline's forward leaves its denoised images in the dict."""
    from defenses.denoisers.wrapper import Denoised

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

    def __init__(self, cfg: DenoiserConfig, *, dtype: torch.dtype | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.dtype = dtype
        self.threat = make_threat("linf", cfg.attack_eps) if cfg.attack_eps > 0 else None
        self.alpha = 2.5 * cfg.attack_eps / max(cfg.attack_steps, 1)

    def set_progress(self, epochs: float) -> None:  # the loop's hook for warm-ups; none here
        pass

    def inputs(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The denoiser's training inputs for the clean batch ``x`` (see the module docstring)."""
        net = plain_module(model)
        n_adv = int(round(self.cfg.adv_frac * x.shape[0])) if self.threat is not None else 0
        parts = []
        if n_adv:
            xa, ya = x[:n_adv], y[:n_adv]
            start = self.threat.init(xa, None)  # type: ignore[union-attr]
            parts.append(maximize(net.classifier, xa, lambda z: F.cross_entropy(z, ya, reduction="sum"), self.threat,  # type: ignore[arg-type]
                                  steps=self.cfg.attack_steps, alpha=self.alpha, start=start, dtype=self.dtype))  # fmt: skip
        rest = x[n_adv:]
        if len(rest):
            parts.append((rest + self.cfg.noise * torch.randn_like(rest)).clamp(0, 1) if self.cfg.noise > 0 else rest)
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
