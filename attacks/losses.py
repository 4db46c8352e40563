"""Per-example attack losses (higher = closer to the attacker's goal).

* ``ce``: cross-entropy of the true class (untargeted) or minus that of the target.
* ``margin``: the Carlini-Wagner margin, ``max_{j != y} z_j - z_y`` (untargeted) or
  ``z_t - max_{j != t} z_j`` (targeted); scale-free in the sense that it does not
  saturate with the softmax.
* ``dlr``: the Difference of Logits Ratio of Croce & Hein (2020), shift- and
  scale-invariant; targeted version as in their APGD-T.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from lab.core.registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
LOSSES: Registry[LossFn] = Registry("attack loss")


def _best_other(z: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    masked = z.scatter(1, cls.view(-1, 1), float("-inf"))
    return masked.amax(dim=1)


@LOSSES.register("ce")
def ce_loss(z: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    if target is None:
        return F.cross_entropy(z, y, reduction="none")
    return -F.cross_entropy(z, target, reduction="none")


@LOSSES.register("margin")
def margin_loss(z: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    if target is None:
        return _best_other(z, y) - z.gather(1, y.view(-1, 1)).squeeze(1)
    return z.gather(1, target.view(-1, 1)).squeeze(1) - _best_other(z, target)


@LOSSES.register("dlr")
def dlr_loss(z: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    zs, _ = z.sort(dim=1, descending=True)
    z_y = z.gather(1, y.view(-1, 1)).squeeze(1)
    if target is None:
        return (_best_other(z, y) - z_y) / (zs[:, 0] - zs[:, 2] + 1e-12)
    z_t = z.gather(1, target.view(-1, 1)).squeeze(1)
    return (z_t - z_y) / (zs[:, 0] - 0.5 * (zs[:, 2] + zs[:, 3]) + 1e-12)
