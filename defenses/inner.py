"""The inner maximization of adversarial training, one loop for FGSM-RS, PGD-AT and TRADES.

``x_{t+1} = clip_[0,1]( x + P_ball( x_t - x + alpha * dir(grad_x L(model(x_t))) ) )``
from ``x_0 = clip_[0,1](x + P_ball(delta_0))``, with the threat model's ``step`` (sign
for L-inf, unit vector for L2) and ``project``: Madry et al.'s PGD with ``steps`` steps,
Wong et al.'s FGSM-RS with one step from a uniform start, TRADES' KL maximization from
``0.001 * randn``.

Unlike an evaluation attack (:class:`attacks.gradient.GradientAttack`) it has no active
set, no fp32 confirmation and no host synchronization (no ``.item()``, no ``.any()``):
training wants the last iterate of every example, fast, and its random starts drawn from
the global RNG (which the train state saves, so a resumed run is exact) rather than a
fixed seed per call.

Mode: the model runs in eval mode with frozen parameters (:func:`attacks.base.frozen_eval`,
restored afterwards), so the attack's forward passes neither update BatchNorm running
statistics nor draw dropout masks, and only the input gets a gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from attacks.base import frozen_eval
from lab.core.runtime import autocast
from lab.core.threat import ThreatModel

#: ``loss(fp32 logits [B, K]) -> scalar`` (a sum over the batch, so each example's gradient is its own)
InnerLoss = Callable[[torch.Tensor], torch.Tensor]


def plain_module(model: nn.Module) -> nn.Module:
    """The module under ``torch.compile`` and DistributedDataParallel wrappers.

    The inner attack runs on it directly: a compiled graph would recompile for eval mode
    and frozen parameters, and DDP must only see the forward whose backward it reduces.
    """
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod  # type: ignore[assignment]
        else:
            return model


def maximize(
    model: nn.Module,
    x: torch.Tensor,
    loss_fn: InnerLoss,
    threat: ThreatModel,
    *,
    steps: int,
    alpha: float,
    start: torch.Tensor | None,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    """Adversarial images for ``x`` [B, C, H, W] in [0, 1]: detached, in the ball, in [0, 1].

    ``start``: the initial perturbation (projected onto the ball), or None for ``x`` itself.
    ``dtype``: the autocast dtype of the forward passes (None: fp32), as in training.
    """
    net = plain_module(model)
    x = x.detach()
    xa = (x + threat.project(start)).clamp_(0.0, 1.0) if start is not None else x.clone()
    with frozen_eval(net), torch.enable_grad():
        for _ in range(steps):
            xa.requires_grad_(True)
            with autocast(x.device, dtype):
                logits = net(xa)
            (grad,) = torch.autograd.grad(loss_fn(logits.float()), xa)
            xa = (x + threat.project(xa.detach() - x + alpha * threat.step(grad))).clamp_(0.0, 1.0)
    return xa.detach()
