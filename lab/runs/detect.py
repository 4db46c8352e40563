"""Judge a detector protecting a saved model on its own test set: what ``lab detect`` calls; and
guard a model with one (:func:`guard`, :func:`verdicts`: what the dashboard shows).

The evaluated images are the first ``n`` test images from ``offset``; the threshold is calibrated
on the last ``calib_n`` test images, which must not overlap them; a detector that learns
(Mahalanobis) is fitted on the first ``fit_n`` training images. MagNet takes its autoencoder from
a DAE run (``autoencoder``: a ``[denoiser] name = "dae"`` run folder).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from defenses.denoisers import DENOISERS, Denoised
from defenses.detectors import DETECTORS, Detected, Detector, build_detector, calibrate, scores_of
from defenses.detectors.magnet import autoencoder_of, reconstructs
from defenses.detectors.saved import GuardedModel
from lab.core.epsilon import check_eps, default_eps
from lab.core.errors import LabError
from lab.core.io import file_sha256
from lab.data import load_dataset
from lab.data.pixels import to_float
from lab.evaluation.detection import DetectionReport, evaluate_detection
from lab.models.base import frozen_eval
from lab.runs.certify import model_meta
from lab.runs.samples import from_test_set
from lab.training.checkpoint import Checkpoint, load_model


def check_request(detector: str, eps: Sequence[float] | None, fpr: float) -> None:
    """LabError for an unknown detector, a radius out of range or a false-positive rate outside (0, 1)."""
    DETECTORS.get(detector)
    if eps is not None:
        check_eps(list(eps), "linf")
    if not 0 < fpr < 1:
        raise LabError(f"the false-positive rate must be in (0, 1), got {fpr}")


def saved_detector(checkpoint: Checkpoint, detector: str | None, settings: Mapping[str, Any] | None = None,
                   autoencoder: str | os.PathLike[str] | None = None) -> str:  # fmt: skip
    """The detector to judge: ``detector`` in front of a plain classifier, or the one a
    ``[detector]`` recipe's run saved (then ``detector``, ``settings`` and ``autoencoder`` must not
    ask for another). LabError otherwise, in one sentence."""
    model = checkpoint.model
    if not isinstance(model, GuardedModel):
        if detector is None:
            raise LabError(f"{str(checkpoint.path)!r} is a plain classifier: choose a detector with --detector "
                           f"({', '.join(DETECTORS.names())})")  # fmt: skip
        return detector
    saved = str(model.record["name"])
    if (detector is not None and detector != saved) or settings or autoencoder is not None:
        raise LabError(f"{str(checkpoint.path)!r} holds a {saved} detector with its settings and threshold; judge it "
                       "without --detector/--param/--autoencoder, or name its classifier's run "
                       f"({model.info.extra['classifier'].get('path')}) for another detector")  # fmt: skip
    return saved


def build_for(checkpoint: Checkpoint, detector: str, *, settings: Mapping[str, Any] | None = None,
              autoencoder: str | os.PathLike[str] | None = None, fit_n: int = 10_000,
              data_dir: str | os.PathLike[str] | None = None) -> Detector:  # fmt: skip
    """The detector ``detector`` (with ``settings``) in front of ``checkpoint``'s model, on its
    device: MagNet's autoencoder taken from the DAE run ``autoencoder``; a detector that learns
    fitted on the first ``fit_n`` training images."""
    DETECTORS.get(detector)
    model = checkpoint.model
    device = next(model.parameters()).device
    if isinstance(model, (Denoised, GuardedModel)):
        kind = "a denoised model" if isinstance(model, Denoised) else "a detector's run"
        raise LabError(f"a detector protects a plain classifier; this run is {kind} (use its classifier run)")
    parts: dict[str, Any] = {}
    if detector == "magnet":
        if autoencoder is None:
            raise LabError("the magnet detector needs --autoencoder RUN, a DAE run (e.g. runs/demo_dae)")
        parts["autoencoder"] = autoencoder_of(load_model(autoencoder, device).model, repr(str(autoencoder)))
    det = build_detector(detector, settings, **parts)
    det.to(device)
    if fit_n > 0:
        ds = load_dataset(checkpoint.info.dataset, data_dir)
        fx = to_float(ds.train_x[:fit_n], device)
        det.fit(model, fx, torch.from_numpy(ds.train_y[:fit_n].astype("int64")).to(device))
    return det


def calibration_images(checkpoint: Checkpoint, calib_n: int = 1000,
                       data_dir: str | os.PathLike[str] | None = None) -> tuple[torch.Tensor, int]:  # fmt: skip
    """The last ``calib_n`` test images (float, on the model's device) and the index of the first."""
    ds = load_dataset(checkpoint.info.dataset, data_dir)
    start = ds.held_out_start(calib_n)
    return to_float(ds.test_x[start:], next(checkpoint.model.parameters()).device), start


def guard(checkpoint: Checkpoint, detector: str, *, settings: Mapping[str, Any] | None = None,
          autoencoder: str | os.PathLike[str] | None = None, fpr: float = 0.05, calib_n: int = 1000,
          fit_n: int = 10_000, data_dir: str | os.PathLike[str] | None = None) -> Detected:  # fmt: skip
    """``checkpoint``'s model guarded by ``detector`` (:func:`build_for`), its threshold set for the
    false-positive rate ``fpr`` on the last ``calib_n`` test images (:func:`calibration_images`)."""
    check_request(detector, None, fpr)
    det = build_for(checkpoint, detector, settings=settings, autoencoder=autoencoder, fit_n=fit_n, data_dir=data_dir)
    x_calib, _ = calibration_images(checkpoint, calib_n, data_dir)
    return Detected(checkpoint.model, det, calibrate(checkpoint.model, det, x_calib, fpr))


def weights_sha256(checkpoint: Checkpoint) -> str:
    """The SHA-256 of the checkpoint's weights file (what a detection report names it by)."""
    return file_sha256(checkpoint.path)


def guard_from_report(checkpoint: Checkpoint, report: Mapping[str, Any],
                      data_dir: str | os.PathLike[str] | None = None) -> Detected:  # fmt: skip
    """The guarded model a ``lab detect`` report judged, rebuilt: its detector with its settings
    (MagNet's autoencoder run, a learning detector fitted on the same training images) and the
    threshold the report saved, not calibrated again. LabError when the report judged other
    weights than ``checkpoint``'s (retrained since)."""
    meta = report.get("meta") or {}
    if meta.get("weights_sha256") != weights_sha256(checkpoint):
        raise LabError(f"this detection report judged other weights than {str(checkpoint.path)!r} (retrained since?): "
                       "run lab detect again")  # fmt: skip
    det_rec = report["detector"]
    fit = meta.get("fit") or {}
    det = build_for(checkpoint, str(det_rec["name"]), settings=det_rec.get("settings") or {},
                    autoencoder=meta.get("autoencoder"), fit_n=int(fit.get("index_stop", 0)),
                    data_dir=data_dir)  # fmt: skip
    return Detected(checkpoint.model, det, float(report["threshold"]))


@dataclass
class Verdict:
    """What a guarded model answers for one image."""

    score: float
    threshold: float
    rejected: bool
    prediction: int  # the classifier's class (also when rejected)


def verdicts(detected: Detected, images: torch.Tensor) -> list[Verdict]:
    """The detector's verdict on each image of ``images`` [N, C, H, W] (float in [0, 1])."""
    x = images.to(next(detected.model.parameters()).device)
    scores = scores_of(detected.model, detected.detector, x)
    with frozen_eval(detected.model), torch.no_grad():
        preds = detected.model(x).argmax(1)
    return [Verdict(float(s), detected.threshold, bool(s > detected.threshold), int(p)) for s, p in zip(scores, preds)]


def holds_autoencoder(defense: Mapping[str, Any] | None) -> bool:
    """Whether a checkpoint's ``defense`` record is a denoiser with a reconstruction error (a DAE
    run), which MagNet can take its autoencoder from."""
    if not isinstance(defense, Mapping) or defense.get("kind") != "denoiser":
        return False
    name = str(defense.get("name"))
    return name in DENOISERS.names() and reconstructs(DENOISERS.get(name))


def detect_checkpoint(checkpoint: Checkpoint, detector: str, *, settings: Mapping[str, Any] | None = None,
                      autoencoder: str | os.PathLike[str] | None = None, eps: Sequence[float] | None = None,
                      n: int = 500, offset: int = 0, calib_n: int = 1000, fit_n: int = 10_000, fpr: float = 0.05,
                      steps: int = 100, restarts: int = 1, batch_size: int = 250,
                      data_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> DetectionReport:  # fmt: skip
    """:func:`lab.evaluation.detection.evaluate_detection` of ``detector`` (with ``settings``) in
    front of ``checkpoint``'s model; see the module docstring for the images each step uses. A
    ``[detector]`` recipe's run is judged with the detector, threshold, false-positive rate and
    images it saved (``calib_n``, ``fit_n``, ``fpr``, ``autoencoder`` are then its own)."""
    guarded = checkpoint.model if isinstance(checkpoint.model, GuardedModel) else None
    if guarded is not None:  # a [detector] recipe's run: its detector, fitted, and its threshold
        saved = guarded.record
        calib_n = int(saved["calibration"]["index_stop"]) - int(saved["calibration"]["index_start"])
        fit_n, fpr, autoencoder = int(saved["fit"]["index_stop"]), float(saved["fpr"]), None
    check_request(detector, eps, fpr)
    eps_list = list(eps) if eps is not None else [default_eps(checkpoint.info, "linf")]
    samples = from_test_set(checkpoint.info, n, offset, data_dir)
    x_calib, start = calibration_images(checkpoint, calib_n, data_dir)
    if offset + n > start:
        raise LabError(f"the threshold is calibrated on the last {calib_n} test images ({start}.."
                       f"{start + calib_n - 1}), which the evaluated images {offset}..{offset + n - 1} must not reach")  # fmt: skip
    if guarded is not None:
        model, det, threshold = guarded.model, guarded.detector, guarded.threshold
    else:
        det = build_for(checkpoint, detector, settings=settings, autoencoder=autoencoder, fit_n=fit_n,
                        data_dir=data_dir)  # fmt: skip
        model, threshold = checkpoint.model, None
    device = next(model.parameters()).device
    x = to_float(samples.x, device)
    assert samples.y is not None
    y = torch.from_numpy(samples.y).to(device)
    report = evaluate_detection(model, det, x, y, eps_list, x_calib=x_calib, fpr=fpr, steps=steps, restarts=restarts,
                                batch_size=batch_size, progress=progress, model_meta=model_meta(checkpoint),
                                threshold=threshold)  # fmt: skip
    report.meta["data"] = {k: v for k, v in samples.source.items() if k != "from"}
    report.meta["calibration"] = {"split": "test", "index_start": start, "index_stop": start + calib_n}
    report.meta["fit"] = {"split": "train", "index_start": 0, "index_stop": fit_n}
    report.meta["weights_sha256"] = weights_sha256(checkpoint)
    if autoencoder is not None:
        report.meta["autoencoder"] = str(autoencoder)
    if guarded is not None:
        report.meta["saved_detector"] = {"threshold": guarded.threshold, "classifier": guarded.info.extra["classifier"],
                                         **({"autoencoder": saved["autoencoder"]} if "autoencoder" in saved else {})}  # fmt: skip
    return report


def detect_dir(run: str | os.PathLike[str], detector: str) -> Path:
    """``RUN/detect/<detector>``: where ``lab detect`` writes its report by default, and where the
    dashboard looks for the guarded model it saved."""
    return Path(run) / "detect" / detector


def default_detect_dir(checkpoint: Checkpoint, detector: str) -> Path:
    """:func:`detect_dir` of the checkpoint's run folder."""
    return detect_dir(Path(checkpoint.path).parent, detector)
