"""The catastrophic-overfitting guard (Wong, Rice & Kolter, 2020, section 5).

Single-step adversarial training can collapse within an epoch: the model learns to defeat
FGSM while its PGD accuracy falls to ~0. Wong et al. detect this by measuring PGD
accuracy on a training minibatch and stopping at a drop of more than 20 points. Here,
after every epoch, :meth:`CollapseGuard.measure` runs PGD-``guard_steps`` at the full
``eps`` (a fixed seed, so epochs are comparable) on a fixed batch of ``guard_batch``
training images (drawn once from the seed; never test images, which must not steer
training). An epoch *collapses* when its PGD accuracy is more than ``guard_drop`` below
the best epoch's so far, or below ``guard_floor``. When it is below the floor and no
earlier epoch ever reached it (a recipe that collapses from the start), there is nothing
to roll back to: training stops there whatever the mode, and the event says so. Else:

* ``rollback``: the best epoch's weights and optimizer state are restored and training
  goes on (the learning-rate schedule and the data order keep their course);
* ``stop``: the best epoch's weights are restored and training ends (Wong et al.'s early
  stopping; the checkpoint's status is ``stopped_early``);
* ``off``: no measurement.

Either way the event is logged as a warning and recorded (epoch, numbers, action) in the
checkpoint's ``defense.guard_events``. Epochs inside the epsilon warm-up are measured but
not judged. The best epoch's snapshot is part of the train state, so it survives a
resume.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from attacks.base import Attack
from lab.data.device import DeviceData

#: A training snapshot: ``(tensors, record)`` as :func:`lab.training.state.snapshot` makes it.
Snapshot = tuple[dict[str, torch.Tensor], dict[str, Any]]
_PREFIX = "guard.best."


@dataclass
class GuardEvent:
    """One collapse: what was measured, against what, and what was done."""

    epoch: int  # 1-based epoch whose PGD accuracy collapsed
    pgd_acc: float
    best_epoch: int
    best_pgd_acc: float
    reason: str
    action: str  # rollback | stop
    restored_epoch: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def message(self, what: str) -> str:
        if self.restored_epoch == self.epoch:
            return (f"catastrophic overfitting at epoch {self.epoch}: {what} accuracy {100 * self.pgd_acc:.1f}% "
                    f"({self.reason}); stopped training: this recipe is not learning robustness")  # fmt: skip
        done = {"rollback": "rolled back to", "stop": "stopped training with"}[self.action]
        return (f"catastrophic overfitting at epoch {self.epoch}: {what} accuracy {100 * self.pgd_acc:.1f}% "
                f"({self.reason}; best {100 * self.best_pgd_acc:.1f}% at epoch {self.best_epoch}); "
                f"{done} the weights of epoch {self.restored_epoch}")  # fmt: skip


class CollapseGuard:
    """Measures PGD accuracy after each epoch and judges it; see the module docstring."""

    def __init__(self, *, mode: str, drop: float, floor: float, attack: Attack, x: torch.Tensor,
                 y: torch.Tensor, judge_from: int = 1) -> None:  # fmt: skip
        if mode not in ("rollback", "stop"):
            raise ValueError(f"guard mode must be rollback or stop, got {mode!r}")
        self.mode = mode
        self.drop = float(drop)
        self.floor = float(floor)
        self.attack = attack
        self.x, self.y = x, y
        self.judge_from = int(judge_from)
        self.best_epoch = 0  # 0: none yet
        self.best_acc = -math.inf
        self.best: Snapshot | None = None
        self.measured: dict[int, float] = {}
        self.events: list[GuardEvent] = []
        self.stopped = False

    @property
    def what(self) -> str:
        """``PGD-10 (linf 0.3) on 512 training images``: what the accuracy is of."""
        return f"PGD-{getattr(self.attack, 'steps', '?')} ({self.attack.norm} {self.attack.eps:g}) on {len(self.y)} training images"

    def measure(self, model: nn.Module) -> float:
        """PGD accuracy of ``model`` on the guard's batch, in [0, 1] (fp32 predictions).

        The seam tests replace to simulate a collapse.
        """
        x_adv = self.attack(model, self.x, self.y)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return float((model(x_adv).argmax(1) == self.y).float().mean())
        finally:
            model.train(was_training)

    def judge(self, epoch: int, acc: float, snapshot: Callable[[], Snapshot]) -> GuardEvent | None:
        """Record epoch ``epoch``'s accuracy ``acc``; a :class:`GuardEvent` when it collapsed.

        A healthy epoch at least as good as the best becomes the best (``snapshot()`` is
        kept). On an event the caller restores :attr:`best` (and stops for ``stop``).
        """
        self.measured[epoch] = acc
        if epoch >= self.judge_from and acc < self.floor and not self.best_acc >= self.floor:
            # Collapsed, and no earlier epoch was ever healthy: nothing to roll back to. Stop
            # with these weights and say so (the recipe never learned robustness).
            best = (self.best_epoch, self.best_acc) if self.best_epoch else (epoch, acc)
            event = GuardEvent(epoch, acc, best[0], best[1], f"below guard_floor {self.floor:g} with no earlier "
                               "epoch above it to roll back to", "stop", epoch)  # fmt: skip
            self.events.append(event)
            self.stopped = True
            return event
        if self.best is not None and epoch >= self.judge_from:
            reason = ""
            if self.best_acc - acc > self.drop:
                reason = f"{100 * (self.best_acc - acc):.1f} points below the best, more than guard_drop {self.drop:g}"
            elif acc < self.floor:
                reason = f"below guard_floor {self.floor:g}"
            if reason:
                event = GuardEvent(epoch, acc, self.best_epoch, self.best_acc, reason, self.mode, self.best_epoch)
                self.events.append(event)
                self.stopped = self.mode == "stop"
                return event
        if acc >= self.best_acc:
            self.best_epoch, self.best_acc, self.best = epoch, acc, snapshot()
        return None

    # ------------------------------------------------------------ records and resume

    def summary(self) -> dict[str, Any]:
        """For the checkpoint's ``defense.guard``."""
        return {
            "mode": self.mode, "measures": self.what, "drop": self.drop, "floor": self.floor,
            "judged_from_epoch": self.judge_from, "best_epoch": self.best_epoch or None,
            "best_pgd_acc": self.best_acc if self.best_epoch else None,
            "pgd_acc": {str(k): v for k, v in sorted(self.measured.items())},
        }  # fmt: skip

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(tensors, record)`` to store in the train state."""
        tensors: dict[str, torch.Tensor] = {}
        record: dict[str, Any] = {
            "best_epoch": self.best_epoch, "best_pgd_acc": self.best_acc if self.best_epoch else None,
            "measured": {str(k): v for k, v in self.measured.items()},
            "events": [e.to_dict() for e in self.events], "stopped": self.stopped,
        }  # fmt: skip
        if self.best is not None:
            tensors = {_PREFIX + k: v for k, v in self.best[0].items()}
            record["best_meta"] = self.best[1]
        return tensors, record

    def load_state(self, tensors: dict[str, torch.Tensor], record: dict[str, Any], device: torch.device) -> None:
        """Undo :meth:`state` (tensors moved to ``device``)."""
        self.best_epoch = int(record.get("best_epoch") or 0)
        self.best_acc = float(record["best_pgd_acc"]) if self.best_epoch else -math.inf
        self.measured = {int(k): float(v) for k, v in record.get("measured", {}).items()}
        self.events = [GuardEvent(**e) for e in record.get("events", [])]
        self.stopped = bool(record.get("stopped", False))
        best = {k[len(_PREFIX):]: v.to(device) for k, v in tensors.items() if k.startswith(_PREFIX)}
        self.best = (best, dict(record.get("best_meta", {}))) if self.best_epoch and best else None


def guard_batch(data: DeviceData, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of ``n`` training images (float [n, C, H, W] in [0, 1]) and labels, by ``seed``."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + 977)
    idx = torch.randperm(len(data), generator=g)[: min(n, len(data))].to(data.device)
    return data.x[idx].float().div_(255.0), data.y[idx]
