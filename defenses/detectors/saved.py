"""A detector saved with the classifier it guards: the model of a ``[detector]`` recipe's run.

``lab train --config configs/demo_squeeze.toml`` (a ``[detector]`` table: ``name``, the
``classifier`` run, MagNet's ``autoencoder`` run, the false-positive rate ``fpr``) fits the
detector, sets its threshold and saves :class:`GuardedModel`: the classifier's weights, the
detector's (Mahalanobis's class means and precision; MagNet's autoencoder) and, in the metadata,
the detector's name, settings and threshold. :func:`guard_classifier` builds it; :func:`rebuild`
builds an unfitted one shaped like a checkpoint's metadata, for its weights to load into.
``forward`` is the classifier's (logits); :meth:`Detected.predict` answers ``REJECT`` where the
detector rejects the input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from defenses.denoisers import build_denoiser
from defenses.denoisers.base import Denoiser
from defenses.detectors import build_detector
from defenses.detectors.base import Detected, Detector, calibrate
from lab.core.errors import LabError
from lab.models.base import LabModel, ModelInfo


class GuardedModel(Detected, LabModel):
    """A :class:`Detected` that is also a lab model (``info``, the classifier's normalization), so
    it saves and loads as a checkpoint. The classifier stays frozen in eval mode."""

    def __init__(self, classifier: LabModel, detector: Detector, threshold: float, info: ModelInfo) -> None:
        nn.Module.__init__(self)
        self.info = info
        self.model = classifier
        self.detector = detector
        self.threshold = float(threshold)
        for p in (*classifier.parameters(), *detector.parameters()):
            p.requires_grad_(False)
        classifier.eval()
        detector.eval()

    @property
    def mean(self) -> torch.Tensor:  # type: ignore[override]
        return self.model.mean  # type: ignore[return-value]

    @property
    def std(self) -> torch.Tensor:  # type: ignore[override]
        return self.model.std  # type: ignore[return-value]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.normalize(x)  # type: ignore[operator, no-any-return]

    def train(self, mode: bool = True) -> GuardedModel:
        """Nothing in a guarded model trains: it stays in eval mode."""
        return super().train(False)  # type: ignore[return-value]

    @property
    def record(self) -> dict[str, Any]:
        """What the checkpoint says about the detector (name, settings, threshold, fpr, ...)."""
        return dict(self.info.extra["detector"])


def guard_classifier(classifier: LabModel, name: str, settings: Mapping[str, Any] | None, *,
                     x_fit: torch.Tensor | None, y_fit: torch.Tensor | None, x_calib: torch.Tensor, fpr: float,
                     autoencoder: Denoiser | None = None, classifier_record: Mapping[str, Any] | None = None,
                     provenance: Mapping[str, Any] | None = None) -> GuardedModel:  # fmt: skip
    """``classifier`` guarded by the detector ``name`` (with ``settings``; MagNet's ``autoencoder``):
    fitted on ``x_fit``/``y_fit`` (None: a detector that learns nothing, or no fit), its threshold
    set for the false-positive rate ``fpr`` on the clean held-out ``x_calib``. ``provenance``
    (which images fitted and calibrated it, the autoencoder's run) goes into the metadata."""
    parts: dict[str, Any] = {"autoencoder": autoencoder} if autoencoder is not None else {}
    det = build_detector(name, settings, **parts).to(x_calib.device)
    if x_fit is not None and y_fit is not None and len(x_fit):
        det.fit(classifier, x_fit, y_fit)
    threshold = calibrate(classifier, det, x_calib, fpr)
    cls = type(det)
    cinfo = classifier.info
    rec: dict[str, Any] = {
        "name": cls.name, "title": cls.title, "settings": det.settings(), "threshold": threshold, "fpr": fpr,
        "differentiable": cls.differentiable,
        "buffers": {k: list(v.shape) for k, v in det.named_buffers(recurse=False)},
        **dict(provenance or {}),
    }  # fmt: skip
    if autoencoder is not None:
        rec["autoencoder"] = {"name": type(autoencoder).name, "settings": autoencoder.settings(),
                              **dict(rec.get("autoencoder") or {})}  # fmt: skip
    extra = {"detector": rec, "classifier": {"arch": cinfo.arch, "extra": dict(cinfo.extra), **(classifier_record or {})}}
    info = dataclasses.replace(cinfo, arch=f"{cls.name}+{cinfo.arch}", extra=extra)
    return GuardedModel(classifier, det, threshold, info)


def rebuild(info: ModelInfo, build_classifier: Callable[[ModelInfo], LabModel]) -> GuardedModel:
    """An unfitted :class:`GuardedModel` shaped like the checkpoint ``info`` describes (its weights
    next): the classifier by ``build_classifier``, the detector (and MagNet's autoencoder) by
    name and settings, each fitted buffer allocated at its saved shape."""
    try:
        rec = info.extra["detector"]
        cls_extra = info.extra["classifier"]
        cinfo = dataclasses.replace(info, arch=str(cls_extra["arch"]), extra=dict(cls_extra.get("extra", {})))
        name, settings, threshold = str(rec["name"]), dict(rec.get("settings", {})), float(rec["threshold"])
        buffers = {str(k): [int(d) for d in v] for k, v in dict(rec.get("buffers", {})).items()}
        ae = rec.get("autoencoder")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise LabError(f"the guarded model's metadata is incomplete ({exc})") from None
    parts: dict[str, Any] = {}
    if isinstance(ae, Mapping):
        parts["autoencoder"] = build_denoiser(str(ae["name"]), dict(ae.get("settings", {})),
                                              input_shape=tuple(cinfo.input_shape))  # fmt: skip
    det = build_detector(name, settings, **parts)
    for key, shape in buffers.items():
        setattr(det, key, torch.zeros(shape))
    return GuardedModel(build_classifier(cinfo), det, threshold, info)


def refuse_guarded(model: object, command: str, where: str) -> None:
    """LabError when ``model`` is a :class:`GuardedModel`: ``command`` judges a model that always
    answers, so it takes the classifier's run; ``lab detect`` judges the guarded one."""
    if isinstance(model, GuardedModel):
        name = model.record.get("name")
        path = model.info.extra["classifier"].get("path")
        raise LabError(f"{where} is a {name} detector in front of a classifier: lab detect --model {where} judges it "
                       f"with rejection; {command} judges the classifier alone, so name its run ({path})")  # fmt: skip
