"""Detectors: defenses that score inputs and let a model abstain (:class:`Detected`).

One file per detector, registered by name in :data:`DETECTORS`:

* ``magnet``: MagNet's reconstruction error under a denoising autoencoder (Meng and Chen 2017);
* ``squeeze``: feature squeezing, the L1 distance between the predictions on the input and on its
  squeezed versions (Xu et al. 2018);
* ``mahalanobis``: the Mahalanobis distance of the penultimate activations to the nearest class
  mean under a shared covariance (Lee et al. 2018).

A detector's settings are its keyword-only ``__init__`` arguments: ``build_detector("squeeze",
{"bits": 1})``. :mod:`lab.evaluation.detection` judges one against naive and adaptive attacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from defenses.detectors.base import DETECTORS, REJECT, Detected, Detector, calibrate, scores_of
from lab.core.settings import coerce_settings


def build_detector(name: str, settings: Mapping[str, Any] | None = None, **parts: Any) -> Detector:
    """The detector ``name`` configured by ``settings`` (checked and converted); ``parts``: the
    objects it is built around (MagNet's ``autoencoder``)."""
    cls = DETECTORS.get(name)
    return cls(**parts, **coerce_settings("detector", cls, settings or {}, exclude=tuple(parts)))


__all__ = ["DETECTORS", "REJECT", "Detected", "Detector", "build_detector", "calibrate", "scores_of"]
