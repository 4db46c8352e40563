"""Defenses: adversarial-training recipes, one per file, registered by name in :data:`DEFENSES`.

A recipe is an explicit object the training loop calls instead of cross-entropy:
``build_defense("pgd_at", {"eps": 0.3}, input_shape=(1, 28, 28))`` then ``loss, logits =
defense.loss(model, x, y)`` (see :mod:`defenses.base`). A recipe file's ``[defense]`` table
picks one by ``name``; its other keys are the recipe's settings (keyword-only ``__init__``
arguments):

* ``none``: standard training;
* ``pgd_at``: PGD adversarial training (Madry et al., 2018);
* ``fgsm_rs``: FGSM from a random start (Wong, Rice & Kolter, 2020), with the
  catastrophic-overfitting guard (:mod:`defenses.guard`) on by default;
* ``trades``: TRADES (Zhang et al., 2019).

Adding a recipe is one new file that registers a class. Denoisers and input transforms
(models wrapping models) live in :mod:`defenses.denoisers`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from attacks.pgd import PGD
from defenses.base import DEFENSES, AdversarialDefense, Defense
from defenses.guard import CollapseGuard, GuardEvent, guard_batch
from lab.core.settings import coerce_settings
from lab.data.device import DeviceData


def build_defense(name: str, settings: Mapping[str, Any] | None = None, *, input_shape: tuple[int, ...],
                  dtype: torch.dtype | None = None, label_smoothing: float = 0.0) -> Defense:  # fmt: skip
    """The recipe ``name`` configured by ``settings`` (checked and converted, then checked again by
    the recipe itself); LabError, one sentence, for a bad setting or an ``eps`` that does not fit
    ``input_shape``."""
    cls = DEFENSES.get(name)
    defense = cls(dtype=dtype, label_smoothing=label_smoothing,  # type: ignore[call-arg]
                  **coerce_settings("defense", cls, settings or {}))  # fmt: skip
    defense.check_input_shape(input_shape)
    return defense


def build_guard(defense: Defense, data: DeviceData, seed: int) -> CollapseGuard | None:
    """The recipe's catastrophic-overfitting guard over ``data`` (None when it is off)."""
    if not isinstance(defense, AdversarialDefense) or defense.guard_mode == "off":
        return None
    attack = PGD(eps=defense.eps, norm=defense.norm, steps=defense.guard_steps, seed=seed)
    x, y = guard_batch(data, defense.guard_batch, seed)
    return CollapseGuard(mode=defense.guard_mode, drop=defense.guard_drop, floor=defense.guard_floor, attack=attack,
                         x=x, y=y, judge_from=math.ceil(defense.eps_warmup_epochs) + 1)  # fmt: skip


__all__ = ["DEFENSES", "AdversarialDefense", "CollapseGuard", "Defense", "GuardEvent", "build_defense", "build_guard"]
