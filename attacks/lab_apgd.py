"""APGD on the lab's own gradient loop: APGD-CE, APGD-DLR and APGD-T (Croce & Hein, 2020,
"Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
attacks"), re-implemented here; ``apgd`` and ``apgd_t`` are the official package's.

The update rule, step-size schedule and checkpoints are the official ones (fra31/auto-attack,
``autopgd_base.py``): a start drawn in the ball, a step of ``2 * eps`` along the sign (L-inf) or
the unit gradient (L2), momentum 0.75 on the last displacement, and at checkpoints that begin
at 22% of the steps and shrink by 3% to at least 6%, the step size halved and the iterate sent
back to the best point so far wherever the loss rose in at most ``rho`` of the steps since the
last checkpoint, or did not improve since a checkpoint that kept the step size.
``targets=k`` is APGD-T: the targeted DLR loss (``loss="dlr"``) towards each of the ``k``
classes the model ranks highest after the true one, all ``k`` runs of an image in one batch.

What the loop adds to the official code (the speed of ``--suite autoattack-fast``):

* an **active set**: an example leaves the batch at the first iterate that fools the model
  (that iterate is its answer), and with ``targets`` every run of that image leaves with it;
  the others' trajectories are unchanged (every step is per example);
* **batched targets**: the ``k`` targeted runs of each image are rows of one batch, so a batch
  of ``B`` images costs ``steps`` passes on at most ``k * B`` rows, not ``k`` loops of them
  (``max_rows``, default 256, bounds a batch; an image's runs are never split: on the lab's
  2-core CPU a SmallCNN pass runs 1.5-2x as fast per image at 256 rows as at 1,000, which no
  longer fit its caches);
* **low-precision steering** (``precision="auto"``, as the lab's PGD): the passes that steer
  the attack run under bf16 autocast where the hardware does bf16 natively; each success is
  confirmed by an fp32 forward pass before it counts;
* per-image random starts (one stream per target), so a sharded evaluation attacks an image as
  one process does.

Cost: ``steps * max(targets, 1)`` forward+backward passes per example that is never fooled.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from attacks.autoattack_common import class_count, need_classes
from attacks.base import ATTACKS, Attack
from attacks.losses import LOSSES
from lab.core.errors import LabError
from lab.core.rng import image_generators
from lab.core.runtime import autocast, pick_dtype
from lab.core.settings import choice, number, whole


def _checkpoints(steps: int) -> tuple[int, int, int]:
    """The official schedule: (first checkpoint interval, smallest interval, shrink per checkpoint)."""
    return max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)


class _Rows:
    """The per-row state of the active runs, kept compact (rows leave when their image is fooled)."""

    names = ("x0", "y", "t", "owner", "x", "x_old", "grad", "x_best", "grad_best", "loss_best", "step",
             "loss_best_last", "reduced_last")  # fmt: skip

    x0: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor | None
    owner: torch.Tensor
    x: torch.Tensor
    x_old: torch.Tensor
    grad: torch.Tensor
    x_best: torch.Tensor
    grad_best: torch.Tensor
    loss_best: torch.Tensor
    step: torch.Tensor
    loss_best_last: torch.Tensor
    reduced_last: torch.Tensor

    def __init__(self, **tensors: torch.Tensor | None) -> None:
        for k, v in tensors.items():
            setattr(self, k, v)
        self.loss_steps: torch.Tensor = torch.zeros(0)

    def keep(self, mask: torch.Tensor) -> None:
        for k in self.names:
            v = getattr(self, k, None)
            if v is not None:
                setattr(self, k, v[mask])
        self.loss_steps = self.loss_steps[:, mask]


@ATTACKS.register("lab_apgd")
class LabAPGD(Attack):
    targeted_ok = False
    batch_independent = True  # per-image random starts; every step is per example
    quick_settings: ClassVar[dict[str, Any]] = {"steps": 10}

    def __init__(self, *, eps: float, norm: str = "linf", loss: str = "ce", steps: int = 100, targets: int = 0,
                 rho: float = 0.75, early_stop: bool = True, max_rows: int = 256, precision: str = "auto",
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed)
        self.loss = choice("APGD loss", loss, ("ce", "dlr"))
        self.steps = whole("steps", steps)
        if isinstance(targets, bool) or not isinstance(targets, int) or targets < 0:
            raise LabError(f"targets must be a whole number >= 0 (0: untargeted), got {targets!r}")
        self.targets = targets
        self.rho = number("rho", rho)
        if not 0 < self.rho <= 1:
            raise LabError(f"rho must be a fraction in (0, 1], got {rho!r}")
        self.early_stop = bool(early_stop)
        self.max_rows = whole("max_rows", max_rows)
        self.precision = choice("precision", precision, ("auto", "fp32", "bf16"))
        self.loss_fn = LOSSES.get(self.loss)

    @property
    def cost(self) -> float:  # type: ignore[override]
        return float(self.steps * max(self.targets, 1))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "loss": self.loss, "steps": self.steps, "targets": self.targets, "rho": self.rho,
                "early_stop": self.early_stop, "max_rows": self.max_rows, "precision": self.precision,
                "implementation": "the lab's re-implementation of APGD (attacks/lab_apgd.py)"}  # fmt: skip

    def transfer_settings(self) -> dict[str, Any]:
        """In a transfer row the untargeted run takes every step and keeps each image's
        highest-loss point on the surrogate (a success there may not transfer). The targeted
        runs keep their early stop, as the official APGD-T does: nine full runs per image on a
        surrogate that every one of them fools at once would cost 9x the passes (measured on
        make demo's DAE: 340 s of the gray-box row's 441 s) to strengthen a row the untargeted
        full-strength run already covers."""
        return {"early_stop": False} if self.early_stop and not self.targets else {}

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        n_cls = class_count(model, x)
        k = min(self.targets, n_cls - 1)
        if self.loss == "dlr":
            need_classes(f"the {'targeted ' if k else ''}DLR loss", n_cls, 4 if k else 3)
        out = x.clone()
        per = max(1, self.max_rows // max(k, 1))
        for s in range(0, x.shape[0], per):
            sl = slice(s, s + per)
            out[sl] = self._images(model, x[sl], y[sl], k)
        return out

    def _images(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
        """One chunk of images: their rows (one per target, or one), run, and each image's answer."""
        b = x.shape[0]
        if k:
            with torch.no_grad():
                order = model(x).float().argsort(dim=1, descending=True)
            t = order[:, 1 : k + 1].reshape(-1)  # image-major: image i's targets are rows i*k .. i*k+k-1
            starts = torch.stack([self._start(x, stream) for stream in range(k)], 1).flatten(0, 1)
            x0, y0, owner = x.repeat_interleave(k, 0), y.repeat_interleave(k), torch.arange(b, device=x.device)
            owner = owner.repeat_interleave(k)
        else:
            t, starts, x0, y0 = None, self._start(x, 0), x, y
            owner = torch.arange(b, device=x.device)
        adv, loss, ok = self._run(model, x0, y0, t, owner, starts, b)
        runs = max(k, 1)  # per image: a successful run, else its highest-loss one
        pick = torch.where(ok, float("inf"), loss).view(b, runs).argmax(1)
        return adv.view(b, runs, *x.shape[1:])[torch.arange(b, device=x.device), pick]

    def _start(self, x: torch.Tensor, stream: int) -> torch.Tensor:
        """The official start (L-inf: uniform, scaled so its largest pixel is at eps; L2: a
        Gaussian on the sphere), drawn per image."""
        gens = image_generators(x, self.seed, stream)
        if self.norm == "linf":
            t = torch.cat([2 * torch.rand(x[i : i + 1].shape, generator=g, device=x.device) - 1
                           for i, g in enumerate(gens)])  # fmt: skip
            scale = t.abs().flatten(1).amax(1)
        else:
            t = torch.cat([torch.randn(x[i : i + 1].shape, generator=g, device=x.device) for i, g in enumerate(gens)])
            scale = t.flatten(1).norm(dim=1)
        delta = self.eps * t / (scale.view(-1, *([1] * (x.ndim - 1))) + 1e-12)
        return (x + delta).clamp(0.0, 1.0)

    def _project(self, x_new: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return torch.minimum(torch.maximum(x_new, x0 - self.eps), x0 + self.eps).clamp(0.0, 1.0)
        d = x_new - x0
        n = d.flatten(1).norm(dim=1).view(-1, *([1] * (d.ndim - 1)))
        return (x0 + d / (n + 1e-12) * torch.clamp(n, max=self.eps)).clamp(0.0, 1.0)

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return grad.sign()
        return grad / (grad.flatten(1).norm(dim=1).view(-1, *([1] * (grad.ndim - 1))) + 1e-12)

    def _run(self, model: nn.Module, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None,
             owner: torch.Tensor, start: torch.Tensor, n_images: int,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """All rows' runs: (answer, its loss, success) per row."""
        dtype = pick_dtype(self.precision, x0.device)
        n_rows = x0.shape[0]
        ans, ans_loss = start.clone(), torch.full((n_rows,), -float("inf"), device=x0.device)
        ok = torch.zeros(n_rows, dtype=torch.bool, device=x0.device)
        done_img = torch.zeros(n_images, dtype=torch.bool, device=x0.device)
        rows = torch.arange(n_rows, device=x0.device)

        def grad_at(xa: torch.Tensor, ya: torch.Tensor, ta: torch.Tensor | None,
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
            xa = xa.detach().requires_grad_(True)
            with autocast(xa.device, dtype):
                logits = model(xa)
            loss = self.loss_fn(logits.float(), ya, ta)
            (g,) = torch.autograd.grad(loss.sum(), xa)
            return logits.detach(), loss.detach(), g.detach()

        def fooled(logits: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> torch.Tensor:
            hit = logits.argmax(1) != ya
            if dtype is not None and hit.any():  # confirm low-precision successes in fp32
                sub = hit.nonzero().squeeze(1)
                with torch.no_grad():
                    hit[sub[model(xa[sub]).argmax(1) == ya[sub]]] = False
            return hit

        def settle(s: _Rows, logits: torch.Tensor, loss: torch.Tensor) -> torch.Tensor | None:
            """Record this iterate's successes and drop the fooled images' rows: the mask of
            the rows kept (None: all of them)."""
            nonlocal rows
            if not self.early_stop:
                return None
            hit = fooled(logits, s.x, s.y)
            if not hit.any():
                return None
            ans[rows[hit]] = s.x[hit]
            ans_loss[rows[hit]] = loss[hit]
            ok[rows[hit]] = True
            done_img[s.owner[hit]] = True
            keep = ~done_img[s.owner]
            s.keep(keep)
            rows = rows[keep]
            return keep

        x_adv = start
        logits, loss, grad = grad_at(x_adv, y, t)
        s = _Rows(x0=x0, y=y, t=t, owner=owner, x=x_adv, x_old=x_adv.clone(), grad=grad, x_best=x_adv.clone(),
                  grad_best=grad.clone(), loss_best=loss.clone(),
                  step=torch.full((n_rows, *([1] * (x0.ndim - 1))), 2.0 * self.eps, device=x0.device),
                  loss_best_last=loss.clone(), reduced_last=torch.ones(n_rows, device=x0.device))  # fmt: skip
        s.loss_steps = torch.zeros(self.steps, n_rows, device=x0.device)
        settle(s, logits, loss)
        if not len(rows):
            return ans, ans_loss, ok
        k, k_min, k_decr = _checkpoints(self.steps)
        since = 0
        for i in range(self.steps):
            with torch.no_grad():
                moved = s.x - s.x_old
                s.x_old = s.x
                a = 0.75 if i > 0 else 1.0
                x1 = self._project(s.x + s.step * self._direction(s.grad), s.x0)
                s.x = self._project(s.x + (x1 - s.x) * a + moved * (1 - a), s.x0)
            logits, loss, s.grad = grad_at(s.x, s.y, s.t)
            kept = settle(s, logits, loss)
            if kept is not None:
                if not len(rows):
                    return ans, ans_loss, ok
                loss = loss[kept]
            with torch.no_grad():
                s.loss_steps[i] = loss
                up = loss > s.loss_best
                s.x_best = torch.where(up.view(-1, *([1] * (x0.ndim - 1))), s.x, s.x_best)
                s.grad_best = torch.where(up.view(-1, *([1] * (x0.ndim - 1))), s.grad, s.grad_best)
                s.loss_best = torch.where(up, loss, s.loss_best)
                since += 1
                if since == k:
                    # the official count of rises over the last k steps (row -1 wraps to the unfilled last row)
                    rises = sum((s.loss_steps[i - c] > s.loss_steps[i - c - 1]).float() for c in range(k))
                    osc = rises <= k * self.rho
                    no_gain = (s.reduced_last == 0) & (s.loss_best_last >= s.loss_best)
                    halve = osc | no_gain
                    s.reduced_last = halve.float()
                    s.loss_best_last = s.loss_best.clone()
                    if halve.any():
                        h = halve.view(-1, *([1] * (x0.ndim - 1)))
                        s.step = torch.where(h, s.step / 2.0, s.step)
                        s.x = torch.where(h, s.x_best, s.x)
                        s.grad = torch.where(h, s.grad_best, s.grad)
                    k = max(k - k_decr, k_min)
                    since = 0
        with torch.no_grad():  # survivors: their best point (the last iterate was looked at above)
            if self.early_stop:
                ans[rows] = s.x_best
                ans_loss[rows] = s.loss_best
            else:
                z = model(s.x_best)
                ans[rows] = s.x_best
                ans_loss[rows] = s.loss_best
                ok[rows] = z.argmax(1) != s.y
        return ans, ans_loss, ok
