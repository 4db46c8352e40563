"""Denoisers and input transforms: models that wrap a classifier into a defended model.

One file per denoiser, registered by name in :data:`DENOISERS`:

* ``dae``: MagNet-style convolutional denoising autoencoder, with its detector score;
* ``hgd``: high-level representation guided denoiser (Liao et al. 2018);
* ``bit_depth``, ``median``: feature squeezing (Xu et al. 2018);
* ``jpeg``: JPEG re-encoding with Pillow (not differentiable);
* ``random_resize``: random resizing and padding (Xie et al. 2018; randomized).

:class:`Denoised` is the wrapped model; :func:`threat_rows` the views the evaluator attacks
(gray-box, white-box, BPDA, EOT). A denoiser's settings are its keyword-only ``__init__``
arguments: ``wrap(classifier, "bit_depth", {"bits": 2})``. ``lab train`` builds and trains
them from a recipe's ``[denoiser]`` table (:func:`wrap`, :mod:`defenses.denoisers.training`);
:func:`rebuild` builds one again from a checkpoint's metadata.
"""

from __future__ import annotations

import copy as copy_module
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from defenses.denoisers.base import DENOISERS, Denoiser, LearnedDenoiser, non_differentiable
from defenses.denoisers.wrapper import EOT_SAMPLES, BPDAView, Denoised, EOTView, ThreatRow, threat_rows
from lab.core.errors import LabError
from lab.core.settings import coerce_settings
from lab.models.base import LabModel, ModelInfo


def build_denoiser(name: str, settings: Mapping[str, Any] | None = None, *,
                   input_shape: tuple[int, ...]) -> Denoiser:  # fmt: skip
    """The denoiser ``name`` for classifiers of ``input_shape`` [C, H, W], configured by
    ``settings`` (checked and converted, then checked again by the denoiser itself)."""
    cls = DENOISERS.get(name)
    return cls(tuple(input_shape), **coerce_settings("denoiser", cls, settings or {}))  # type: ignore[arg-type]


def wrap(classifier: LabModel, name: str, settings: Mapping[str, Any] | None = None,
         classifier_record: dict[str, Any] | None = None, *, copy: bool = True) -> Denoised:  # fmt: skip
    """``Denoised(classifier, <name>)`` with the pipeline's metadata; ``settings``: the denoiser's.

    The pipeline freezes its classifier, so by default it freezes a copy and the caller's
    model keeps its ``requires_grad`` flags and mode; ``copy=False`` hands the classifier
    over (``lab train`` does, with one it has just loaded).
    """
    cinfo = classifier.info
    if isinstance(classifier, Denoised):
        raise LabError("the classifier is already a denoised model; put the denoiser in front of a plain classifier")
    denoiser = build_denoiser(name, settings, input_shape=tuple(cinfo.input_shape))
    den = type(denoiser)
    extra = {
        "denoiser": {"name": den.name, "title": den.title, "settings": denoiser.settings(),
                     "trainable": den.trainable, "differentiable": den.differentiable, "randomized": den.randomized},
        "classifier": {"arch": cinfo.arch, "extra": dict(cinfo.extra), **(classifier_record or {})},
    }  # fmt: skip
    info = dataclasses.replace(cinfo, arch=f"{den.name}+{cinfo.arch}", extra=extra)
    return Denoised(copy_module.deepcopy(classifier) if copy else classifier, denoiser, info)


def rebuild(info: ModelInfo, build_classifier: Callable[[ModelInfo], LabModel]) -> Denoised:
    """An untrained :class:`Denoised` shaped like the checkpoint ``info`` describes (weights next):
    the denoiser from ``info.extra["denoiser"]`` (its name and settings), the classifier by
    ``build_classifier`` from ``info.extra["classifier"]``."""
    extra = info.extra
    try:
        den = extra["denoiser"]
        cls_extra = extra["classifier"]
        cinfo = dataclasses.replace(info, arch=str(cls_extra["arch"]), extra=dict(cls_extra.get("extra", {})))
        name, settings = str(den["name"]), dict(den.get("settings", {}))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise LabError(f"the denoised model's metadata is incomplete ({exc})") from None
    classifier = build_classifier(cinfo)
    return Denoised(classifier, build_denoiser(name, settings, input_shape=tuple(cinfo.input_shape)), info)


__all__ = [
    "DENOISERS", "EOT_SAMPLES", "BPDAView", "Denoised", "Denoiser", "EOTView", "LearnedDenoiser", "ThreatRow",
    "build_denoiser", "non_differentiable", "rebuild", "threat_rows", "wrap",
]  # fmt: skip
