"""Adversarial attacks, one per file, registered by name in :data:`ATTACKS`.

``ATTACKS.get("pgd")(eps=0.3, steps=40)(model, x, y) -> x_adv``: images in [0, 1], NCHW;
settings are keyword-only; the base class (:mod:`attacks.base`) checks inputs, handles the
model's mode and parameters, projects and clamps. Threat models live in
:mod:`attacks.threat`. Adding an attack is one new file that registers a class, plus its
import below.
"""

from __future__ import annotations

from attacks import bim, fgsm, mifgsm, pgd  # noqa: F401
from attacks.base import ATTACKS, Attack
from attacks.threat import THREATS, make_threat

__all__ = ["ATTACKS", "THREATS", "Attack", "make_threat"]
