"""Adversarial attacks, one per file, registered by name in :data:`ATTACKS`.

``ATTACKS.get("pgd")(eps=0.3, steps=40)(model, x, y) -> x_adv``: images in [0, 1], NCHW;
settings are keyword-only; the base class (:mod:`attacks.base`) checks inputs, handles the
model's mode and parameters, projects and clamps. Threat models live in
:mod:`attacks.threat`. Adding an attack is one new file that registers a class, plus its
import below.

The AutoAttack attacks (``autoattack``, ``apgd``, ``apgd_t``, ``square``) wrap the official
package (``pyautoattack``); ``deepfool``, ``cw``, ``hopskipjump``, ``boundary`` and
``fb_pgd`` wrap foolbox 3. Both packages are imported on first use, not here.
"""

from __future__ import annotations

from attacks import (  # each module registers its attacks
    apgd,  # noqa: F401
    apgd_t,  # noqa: F401
    autoattack,  # noqa: F401
    bim,  # noqa: F401
    boundary,  # noqa: F401
    cw,  # noqa: F401
    deepfool,  # noqa: F401
    fb_pgd,  # noqa: F401
    fgsm,  # noqa: F401
    hopskipjump,  # noqa: F401
    mifgsm,  # noqa: F401
    pgd,  # noqa: F401
    square,  # noqa: F401
)
from attacks.base import ATTACKS, Attack
from attacks.threat import THREATS, make_threat

__all__ = ["ATTACKS", "THREATS", "Attack", "make_threat"]
