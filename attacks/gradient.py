"""One gradient loop that FGSM, BIM, PGD and MI-FGSM are configurations of.

``x_{t+1} = clip_[0,1]( x + P_ball( x_t - x + alpha * dir(g_t) ) )`` where ``dir`` is the
threat model's steepest-ascent direction (sign for L-inf, unit vector for L2) and
``g_t`` the gradient of the loss (or, with ``momentum > 0``, the MI-FGSM accumulator
``g_t = mu * g_{t-1} + grad / ||grad||_1``, Dong et al. 2018).

Active set (``early_stop=True``): an example is taken out of the batch as soon as an
iterate fools the model (its logits come for free with the gradient), and that iterate is
kept. The attack then spends its passes on the examples still standing, and it reports
success when *any* iterate succeeded, which is never weaker than the last iterate.

Restarts keep, per example, the first successful run, else the run with the highest loss.
Random starts are drawn per image (:meth:`~attacks.base.Attack.image_generators`, one
stream per restart): an image's start depends on the seed, the restart and the image only,
not on the batch around it, so a sharded evaluation attacks it as one process does.

Confidence (``kappa``, margin loss only): the loss is ``min(max_{j != y} z_j - z_y, kappa)``,
Carlini & Wagner's high-confidence objective: with no early stop the attack keeps pushing an
example until the wrong class leads by ``kappa`` logits. The evaluator's transfer rows use it
(:meth:`GradientAttack.transfer_settings`: no early stop, ``kappa`` = :data:`TRANSFER_KAPPA`).

Precision (``precision="auto"``): the forward/backward passes that only steer the attack
run under bf16 autocast where the hardware does bf16 natively (CUDA, AVX-512-BF16/AMX
CPUs), like training does; every success is confirmed by an fp32 forward pass before
an example leaves the active set, and the returned images are judged in fp32 by the
caller. ``precision="fp32"`` runs everything in fp32.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from attacks.base import Attack
from attacks.losses import LOSSES
from lab.core.errors import LabError
from lab.core.runtime import autocast, pick_dtype
from lab.core.settings import setting_names

#: confidence (logits) a transfer row's margin-loss attacks aim for past the decision boundary
TRANSFER_KAPPA = 20.0


def is_success(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Per example: fooled (untargeted) or classified as the target (targeted)."""
    pred = logits.argmax(dim=1)
    return pred == target if target is not None else pred != y


class GradientAttack(Attack):
    """Iterative first-order attack; see the module docstring for the update rule."""

    batch_independent = True  # per-image random starts; every step is per example

    def __init__(
        self,
        *,
        eps: float,
        norm: str = "linf",
        steps: int = 10,
        alpha: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        loss: str = "ce",
        momentum: float = 0.0,
        early_stop: bool = True,
        kappa: float | None = None,
        precision: str = "auto",
        seed: int = 0,
    ) -> None:
        super().__init__(eps=eps, norm=norm, seed=seed)
        if precision not in ("auto", "fp32", "bf16"):
            raise LabError(f"precision must be auto, fp32 or bf16, got {precision!r}")
        self.precision = precision
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise LabError(f"steps must be a whole number >= 1, got {steps!r}")
        if not isinstance(restarts, int) or isinstance(restarts, bool) or restarts < 1:
            raise LabError(f"restarts must be a whole number >= 1, got {restarts!r}")
        if alpha is not None and (not isinstance(alpha, (int, float)) or math.isnan(alpha) or alpha <= 0):
            raise LabError(f"step size alpha must be a positive number, got {alpha!r}")
        if momentum < 0:
            raise LabError(f"momentum must be >= 0, got {momentum!r}")
        if kappa is not None:
            if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or math.isnan(kappa) or kappa <= 0:
                raise LabError(f"kappa must be a positive number of logits, got {kappa!r}")
            if loss != "margin":
                raise LabError(f"kappa (a confidence) applies to the margin loss only, not to loss {loss!r}")
        self.kappa = float(kappa) if kappa is not None else None
        self.loss_name = loss
        base_loss = LOSSES.get(loss)
        cap = self.kappa
        self.loss_fn = base_loss if cap is None else (lambda z, y, t: base_loss(z, y, t).clamp(max=cap))
        self.steps = steps
        self.alpha = float(alpha) if alpha is not None else self.default_alpha()
        self.random_start = random_start
        self.restarts = restarts
        self.momentum = float(momentum)
        self.early_stop = early_stop

    def default_alpha(self) -> float:
        """2.5 * eps / steps: enough to cross the ball from a random start (Madry et al.)."""
        return 2.5 * self.eps / self.steps

    @property
    def cost(self) -> float:  # type: ignore[override]
        return float(self.steps * self.restarts)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(), "steps": self.steps, "alpha": self.alpha, "random_start": self.random_start,
            "restarts": self.restarts, "loss": self.loss_name, "momentum": self.momentum,
            "early_stop": self.early_stop, "kappa": self.kappa, "precision": self.precision,
        }  # fmt: skip

    def transfer_settings(self) -> dict[str, Any]:
        """Full strength for a transfer row: run every step (no early stop at the first
        iterate that fools the surrogate) and, with the margin loss, aim for a confidence of
        :data:`TRANSFER_KAPPA` logits."""
        takes = setting_names(type(self))
        out: dict[str, Any] = {}
        if self.early_stop and "early_stop" in takes:
            out["early_stop"] = False
        if self.loss_name == "margin" and self.kappa is None and "kappa" in takes:
            out["kappa"] = TRANSFER_KAPPA
        return out

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        best = x.clone()
        best_loss = torch.full((x.shape[0],), -math.inf, device=x.device)
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for restart in range(self.restarts):
            idx = (~done).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            t = target[idx] if target is not None else None
            x_r, loss_r, ok_r = self._run(model, x[idx], y[idx], t, restart)
            better = ok_r | (loss_r > best_loss[idx])
            best[idx[better]] = x_r[better]
            best_loss[idx] = torch.maximum(best_loss[idx], loss_r)
            done[idx] |= ok_r
        return best

    def _run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
             restart: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """One run (number ``restart``, its random starts' stream): (adversarial images, their
        loss, success flags), all [B]-aligned with ``x``.

        The active examples are kept as compact tensors (``xa``, ``x0``, ``ya``, ``ta``,
        ``ga``) that shrink when examples succeed, so a step does no gather or scatter.
        """
        threat = self.threat
        dtype = pick_dtype(self.precision, x.device)
        if self.random_start:
            start = threat.init_per_image(x, self.image_generators(x, stream=restart))
            xa = (x + threat.project(start)).clamp(0.0, 1.0)
        else:
            xa = x.clone()
        out = xa.clone()
        out_loss = torch.full((x.shape[0],), -math.inf, device=x.device)
        ok = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        idx = torch.arange(x.shape[0], device=x.device)
        x0, ya, ta = x, y, target
        ga = torch.zeros_like(x) if self.momentum > 0 else None
        for _ in range(self.steps):
            xa.requires_grad_(True)
            with autocast(x.device, dtype):
                logits = model(xa)
            loss = self.loss_fn(logits.float(), ya, ta)
            (grad,) = torch.autograd.grad(loss.sum(), xa)
            xa = xa.detach()
            if self.early_stop:
                hit = is_success(logits.detach(), ya, ta)
                if dtype is not None and hit.any():  # confirm low-precision successes in fp32
                    sub = hit.nonzero().squeeze(1)
                    with torch.no_grad():
                        real = is_success(model(xa[sub]), ya[sub], ta[sub] if ta is not None else None)
                    hit[sub[~real]] = False
                if hit.any():
                    won = idx[hit]
                    out[won] = xa[hit]
                    out_loss[won] = loss.detach()[hit]
                    ok[won] = True
                    keep = ~hit
                    if not keep.any():
                        return out, out_loss, ok
                    idx, xa, x0, ya, grad = idx[keep], xa[keep], x0[keep], ya[keep], grad[keep]
                    ta = ta[keep] if ta is not None else None
                    ga = ga[keep] if ga is not None else None
            if ga is not None:
                l1 = grad.abs().flatten(1).sum(1).clamp_min(1e-12).view(-1, *([1] * (x.ndim - 1)))
                ga = self.momentum * ga + grad / l1
                grad = ga
            xa = (x0 + threat.project(xa - x0 + self.alpha * threat.step(grad))).clamp_(0.0, 1.0)
        with torch.no_grad():  # the last iterate has not been looked at yet
            logits = model(xa)
            out[idx] = xa
            out_loss[idx] = self.loss_fn(logits.float(), ya, ta)
            ok[idx] = is_success(logits, ya, ta)
        return out, out_loss, ok
