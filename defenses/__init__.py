"""Defenses: adversarial-training recipes, one per file, registered by name in :data:`DEFENSES`.

A recipe is an explicit object the training loop calls instead of cross-entropy:
``DEFENSES.get("pgd_at")(cfg.defense, dtype=...)`` then ``loss, logits = defense.loss(model,
x, y)`` (see :mod:`defenses.base`). A recipe file's ``[defense]`` section picks one:

* ``none``: standard training;
* ``pgd_at``: PGD adversarial training (Madry et al., 2018);
* ``fgsm_rs``: FGSM from a random start (Wong, Rice & Kolter, 2020), with the
  catastrophic-overfitting guard (:mod:`defenses.guard`) on by default;
* ``trades``: TRADES (Zhang et al., 2019).

Adding a recipe is one new file that registers a class, plus its import below. Denoisers
and input transforms (models wrapping models) will live here too.
"""

from __future__ import annotations

import math

from defenses import fgsm_rs, none, pgd_at, trades  # noqa: F401  (each module registers its recipe)
from defenses.base import DEFENSES, Defense
from defenses.guard import CollapseGuard, GuardEvent, guard_batch
from lab.config import DefenseConfig
from lab.data.device import DeviceData
from lab.errors import ConfigError, LabError


def check_config(d: DefenseConfig) -> None:
    """ConfigError (one sentence) for a ``[defense]`` section its recipe cannot run."""
    try:
        cls = DEFENSES.get(d.name)
    except LabError as exc:
        raise ConfigError(f"defense.name: {exc}") from None
    default = DefenseConfig()
    for key in DefenseConfig.__dataclass_fields__:
        if key == "name" or key in cls.uses or getattr(d, key) == getattr(default, key):
            continue
        users = [n for n in DEFENSES.names() if key in DEFENSES.get(n).uses]
        if cls.name == "none":
            raise ConfigError(f"defense.{key} has no effect without a defense (defense.name is 'none'); "
                              f"set defense.name to one of {', '.join(users)}")  # fmt: skip
        raise ConfigError(f"defense.{key} is a setting of {', '.join(users)}; {cls.name} does not use it")
    if cls.name != "none" and not d.eps > 0:
        raise ConfigError(f"defense.eps must be positive for {cls.name} (the radius it trains against), got {d.eps!r}")


def build_defense(d: DefenseConfig, *, input_shape: tuple[int, ...], dtype: object = None,
                  label_smoothing: float = 0.0) -> Defense:  # fmt: skip
    """The recipe ``d.name`` configured from ``d``; LabError when ``eps`` does not fit ``input_shape``."""
    check_config(d)
    defense = DEFENSES.get(d.name)(d, dtype=dtype, label_smoothing=label_smoothing)  # type: ignore[arg-type]
    defense.check_input_shape(input_shape)
    return defense


def build_guard(defense: Defense, data: DeviceData, seed: int) -> CollapseGuard | None:
    """The recipe's catastrophic-overfitting guard over ``data`` (None when it is off)."""
    from attacks.pgd import PGD

    d = defense.cfg
    if not defense.adversarial or defense.guard_mode == "off":
        return None
    attack = PGD(eps=d.eps, norm=d.norm, steps=d.guard_steps, seed=seed)
    x, y = guard_batch(data, d.guard_batch, seed)
    return CollapseGuard(mode=defense.guard_mode, drop=d.guard_drop, floor=d.guard_floor, attack=attack,
                         x=x, y=y, judge_from=math.ceil(d.eps_warmup_epochs) + 1)  # fmt: skip


__all__ = ["DEFENSES", "CollapseGuard", "Defense", "GuardEvent", "build_defense", "build_guard", "check_config"]
