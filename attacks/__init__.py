"""Adversarial attacks, one per file, registered by name in :data:`ATTACKS`.

``ATTACKS.get("pgd")(eps=0.3, steps=40)(model, x, y) -> x_adv``: images in [0, 1], NCHW;
settings are keyword-only; the base class (:mod:`attacks.base`) checks inputs, handles the
model's mode and parameters, projects and clamps. Threat models live in
:mod:`lab.core.threat`. Adding an attack is one new file that registers a class; the registry finds it
(every module of the package is imported on first use; plug-ins come through the entry points
``lab.attacks``: see :mod:`lab.core.registry`).

The AutoAttack attacks (``autoattack``, ``apgd``, ``apgd_t``, ``square``) wrap the official
package (``pyautoattack``); ``deepfool``, ``cw``, ``hopskipjump``, ``boundary`` and
``fb_pgd`` wrap foolbox 3. Both packages are imported on first use, not here.
"""

from __future__ import annotations

from attacks.base import ATTACKS, Attack
from lab.core.threat import THREATS, make_threat

__all__ = ["ATTACKS", "THREATS", "Attack", "make_threat"]
