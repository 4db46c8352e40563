"""Denoisers and input transforms: models that wrap a classifier into a defended model.

One file per denoiser, registered by name in :data:`DENOISERS`:

* ``dae``: MagNet-style convolutional denoising autoencoder, with its detector score;
* ``hgd``: high-level representation guided denoiser (Liao et al. 2018);
* ``bit_depth``, ``median``: feature squeezing (Xu et al. 2018);
* ``jpeg``: JPEG re-encoding with Pillow (not differentiable);
* ``random_resize``: random resizing and padding (Xie et al. 2018; randomized).

:class:`Denoised` is the wrapped model; :func:`threat_rows` the views the evaluator attacks
(gray-box, white-box, BPDA, EOT). ``lab train`` builds and trains them from a recipe's
``[denoiser]`` section (:func:`wrap`, :mod:`defenses.denoisers.training`).
"""

from __future__ import annotations

import copy as copy_module
import dataclasses
import os
from pathlib import Path
from typing import Any

from defenses.denoisers import bit_depth, dae, hgd, jpeg, median, random_resize  # noqa: F401  (registration)
from defenses.denoisers.base import DENOISERS, Denoiser, non_differentiable
from defenses.denoisers.wrapper import EOT_SAMPLES, BPDAView, Denoised, EOTView, ThreatRow, threat_rows
from lab.config import DenoiserConfig
from lab.errors import ConfigError, LabError
from lab.models.base import LabModel, ModelInfo

#: settings ranges: key -> (low, high) inclusive
_RANGES: dict[str, tuple[float, float]] = {
    "attack_eps": (0.0, 1.0), "attack_steps": (1, 1000), "adv_frac": (0.0, 1.0), "noise": (0.0, 1.0),
    "width": (1, 512), "bits": (1, 8), "kernel": (1, 9), "quality": (1, 95), "min_scale": (0.1, 1.0),
}  # fmt: skip


def check_denoiser_config(d: DenoiserConfig) -> None:
    """ConfigError (one sentence) for a ``[denoiser]`` section that cannot run."""
    try:
        cls = DENOISERS.get(d.name)
    except LabError as exc:
        raise ConfigError(f"denoiser.name: {exc}") from None
    if not d.classifier:
        raise ConfigError(
            f"denoiser.classifier is required: the run folder of the trained classifier {d.name} goes in front of "
            "(for example runs/mnist_smallcnn)"
        )
    default = DenoiserConfig()
    for key in DenoiserConfig.__dataclass_fields__:
        value = getattr(d, key)
        if key in ("name", "classifier"):
            continue
        if key not in cls.uses and value != getattr(default, key):
            users = [n for n in DENOISERS.names() if key in DENOISERS.get(n).uses]
            raise ConfigError(f"denoiser.{key} is a setting of {', '.join(users)}; {cls.name} does not use it")
        lo, hi = _RANGES[key]
        if not lo <= value <= hi:
            raise ConfigError(f"denoiser.{key} must be between {lo:g} and {hi:g}, got {value!r}")


def denoiser_config(name: str, settings: dict[str, Any] | None = None, classifier: str = "-") -> DenoiserConfig:
    """A :class:`DenoiserConfig` for ``name`` with ``settings`` over the defaults (checked)."""
    known = DenoiserConfig.__dataclass_fields__
    bad = [k for k in (settings or {}) if k not in known]
    if bad:
        raise ConfigError(f"unknown denoiser setting {bad[0]!r}; known: {', '.join(known)}")
    cfg = dataclasses.replace(DenoiserConfig(), name=name, classifier=classifier, **(settings or {}))
    check_denoiser_config(cfg)
    return cfg


def wrap(
    classifier: LabModel, cfg: DenoiserConfig, classifier_record: dict[str, Any] | None = None, *, copy: bool = True
) -> Denoised:
    """``Denoised(classifier, <cfg.name>)`` with the pipeline's metadata.

    The pipeline freezes its classifier, so by default it freezes a copy and the caller's
    model keeps its ``requires_grad`` flags and mode; ``copy=False`` hands the classifier
    over (``lab train`` does, with one it has just loaded).
    """
    check_denoiser_config(cfg)
    cinfo = classifier.info
    if isinstance(classifier, Denoised):
        raise LabError("the classifier is already a denoised model; put the denoiser in front of a plain classifier")
    den = DENOISERS.get(cfg.name)
    denoiser = den(cfg, tuple(cinfo.input_shape))  # type: ignore[arg-type]
    extra = {
        "denoiser": {"name": cfg.name, "title": den.title, "settings": denoiser.settings(),
                     "trainable": den.trainable, "differentiable": den.differentiable, "randomized": den.randomized},
        "classifier": {"arch": cinfo.arch, "extra": dict(cinfo.extra), **(classifier_record or {})},
    }  # fmt: skip
    info = dataclasses.replace(cinfo, arch=f"{cfg.name}+{cinfo.arch}", extra=extra)
    return Denoised(copy_module.deepcopy(classifier) if copy else classifier, denoiser, info)


def load_classifier(path: str | os.PathLike[str], info: ModelInfo | None = None) -> tuple[LabModel, dict[str, Any]]:
    """The classifier checkpoint a denoiser recipe names, checked against the recipe's data.

    ``info``: the data's metadata (dataset, input shape, fingerprint) the run trains on;
    LabError when the classifier was trained on other data or takes another input shape.
    """
    from lab.checkpoint import _file_sha256, load_model

    if not str(path):
        raise ConfigError("training a denoiser needs a classifier: set denoiser.classifier to its run folder")
    ck = load_model(path)
    ci = ck.model.info
    if isinstance(ck.model, Denoised):
        raise LabError(f"{str(path)!r} is already a denoised model; name the plain classifier's run folder")
    if info is not None:
        if tuple(ci.input_shape) != tuple(info.input_shape):
            raise LabError(
                f"the classifier {str(path)!r} takes {'x'.join(map(str, ci.input_shape))} images but {info.dataset} has "
                f"{'x'.join(map(str, info.input_shape))}: a denoiser must see the classifier's input shape"
            )
        if ci.dataset != info.dataset or (ci.dataset_fingerprint and info.dataset_fingerprint
                                          and ci.dataset_fingerprint != info.dataset_fingerprint):  # fmt: skip
            raise LabError(f"the classifier {str(path)!r} was trained on {ci.dataset}, not on this recipe's {info.dataset}")
    record = {"path": str(Path(path)), "weights_sha256": _file_sha256(ck.path),
              "test_acc": ck.metrics.get("test_acc"), "defense": ck.record.get("defense")}  # fmt: skip
    return ck.model, record


def rebuild(info: ModelInfo, build_classifier: Any) -> Denoised:
    """An untrained :class:`Denoised` shaped like the checkpoint ``info`` describes (weights next)."""
    extra = info.extra
    try:
        den = extra["denoiser"]
        cls_extra = extra["classifier"]
        cinfo = dataclasses.replace(info, arch=str(cls_extra["arch"]), extra=dict(cls_extra.get("extra", {})))
    except (KeyError, TypeError) as exc:
        raise LabError(f"the denoised model's metadata is incomplete ({exc})") from None
    cfg = denoiser_config(str(den["name"]), dict(den.get("settings", {})))
    classifier = build_classifier(cinfo)
    denoiser = DENOISERS.get(cfg.name)(cfg, tuple(cinfo.input_shape))  # type: ignore[arg-type]
    return Denoised(classifier, denoiser, info)


__all__ = [
    "DENOISERS", "EOT_SAMPLES", "BPDAView", "Denoised", "Denoiser", "EOTView", "ThreatRow", "check_denoiser_config",
    "denoiser_config", "load_classifier", "non_differentiable", "rebuild", "threat_rows", "wrap",
]  # fmt: skip
